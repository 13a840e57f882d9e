"""Reviewers settle prompts whose filter reviews disagree."""

import pytest
from django.core.exceptions import ValidationError

from annotation import roles
from annotation.models import Category, Prompt, PromptReview
from annotation.prompts.services.disagreements import prompt_disagreement_resolve
from annotation.prompts.services.filter import ReviewInput, prompt_lease_claim, prompt_review_submit
from annotation.tests.factories import make_prompt, make_user

pytestmark = pytest.mark.django_db

URL = "/prompts/disagreements/"


def _disputed(text: str = "a lighthouse knitted from wool, macro photo") -> Prompt:
    prompt = make_prompt(text)
    Prompt.objects.filter(pk=prompt.pk).update(reviews_required=2)
    for review in (ReviewInput(decision="accept"), ReviewInput(decision="reject", reasons=("incoherent",))):
        annotator = make_user(roles.ANNOTATOR)
        assert prompt_lease_claim(user=annotator) == prompt
        prompt_review_submit(user=annotator, prompt_id=prompt.pk, review=review)
    prompt.refresh_from_db()
    assert (prompt.needs_reviewer, prompt.status) == (True, "pending")
    return prompt


def test_the_page_lists_the_reviews_and_a_decision_settles_the_prompt(client):
    prompt = _disputed()
    objects = Category.objects.get(slug="objects")
    reviewer = make_user(roles.REVIEWER)
    client.force_login(reviewer)
    page = client.get(URL).content.decode()
    assert f'id="prompt-{prompt.pk}"' in page and "a lighthouse knitted from wool" in page
    assert page.count("<td>Accept</td>") == 1 and page.count("<td>Reject</td>") == 1 and "incoherent" in page
    response = client.post(URL, {"prompt_id": prompt.pk, "decision": "accept", "category": objects.pk})
    assert response.status_code == 302
    prompt.refresh_from_db()
    assert (prompt.status, prompt.needs_reviewer, prompt.category, prompt.rejection_reasons) == (
        "accepted",
        False,
        objects,
        [],
    )
    final = PromptReview.objects.get(is_final=True)
    assert (final.reviewer, final.decision, PromptReview.objects.count()) == (reviewer, "accept", 3)
    assert 'id="no-disagreements"' in client.get(URL).content.decode()


def test_a_final_rejection_records_its_reasons():
    prompt = _disputed()
    review = ReviewInput(decision="reject", reasons=("unsafe", "incoherent"))
    prompt_disagreement_resolve(reviewer=make_user(roles.REVIEWER), prompt_id=prompt.pk, review=review)
    prompt.refresh_from_db()
    assert (prompt.status, prompt.rejection_reasons, prompt.needs_reviewer) == (
        "rejected",
        ["incoherent", "unsafe"],
        False,
    )


def test_a_second_decision_on_a_settled_prompt_is_refused_and_changes_nothing():
    prompt = _disputed()
    prompt_disagreement_resolve(
        reviewer=make_user(roles.REVIEWER), prompt_id=prompt.pk, review=ReviewInput(decision="accept")
    )
    with pytest.raises(ValidationError, match="not waiting for a reviewer"):
        prompt_disagreement_resolve(
            reviewer=make_user(roles.REVIEWER),
            prompt_id=prompt.pk,
            review=ReviewInput(decision="reject", reasons=("unsafe",)),
        )
    prompt.refresh_from_db()
    assert (prompt.status, PromptReview.objects.filter(is_final=True).count()) == ("accepted", 1)


def test_a_reviewer_who_reviewed_the_prompt_cannot_settle_it():
    prompt = make_prompt("a violin made of ice on a glacier")
    Prompt.objects.filter(pk=prompt.pk).update(reviews_required=2)
    reviewer = make_user(roles.REVIEWER)
    prompt_lease_claim(user=reviewer)
    prompt_review_submit(user=reviewer, prompt_id=prompt.pk, review=ReviewInput(decision="accept"))
    other = make_user(roles.ANNOTATOR)
    prompt_lease_claim(user=other)
    prompt_review_submit(user=other, prompt_id=prompt.pk, review=ReviewInput(decision="reject", reasons=("unsafe",)))
    with pytest.raises(ValidationError, match="another reviewer settles it"):
        prompt_disagreement_resolve(reviewer=reviewer, prompt_id=prompt.pk, review=ReviewInput(decision="accept"))
    prompt.refresh_from_db()
    assert (prompt.status, prompt.needs_reviewer, PromptReview.objects.count()) == ("pending", True, 2)


def test_an_annotator_gets_403_and_changes_nothing(client):
    prompt = _disputed()
    client.force_login(make_user(roles.ANNOTATOR))
    assert client.get(URL).status_code == 403
    assert client.post(URL, {"prompt_id": prompt.pk, "decision": "accept"}).status_code == 403
    prompt.refresh_from_db()
    assert (prompt.status, prompt.needs_reviewer, PromptReview.objects.count()) == ("pending", True, 2)
