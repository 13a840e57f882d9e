import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.urls import reverse

from annotation import roles
from annotation.models import Category, Prompt, PromptLease, PromptReview, PromptStatus
from annotation.prompts.services.filter import ReviewInput, prompt_lease_claim, prompt_review_submit
from annotation.tests.factories import make_prompt, make_user

ACCEPT = ReviewInput(decision="accept")
REJECT = ReviewInput(decision="reject", reasons=("incoherent",))


@pytest.mark.django_db
def test_two_annotators_never_get_the_same_prompt_and_a_held_prompt_comes_back():
    first, second = make_prompt(), make_prompt()
    ann1, ann2 = make_user(roles.ANNOTATOR), make_user(roles.ANNOTATOR)
    assert prompt_lease_claim(user=ann1) == first
    assert prompt_lease_claim(user=ann2) == second
    assert prompt_lease_claim(user=ann1) == first  # a reload shows the same prompt
    assert prompt_lease_claim(user=make_user(roles.ANNOTATOR)) is None


@pytest.mark.django_db
def test_accept_with_category_settles_the_prompt():
    prompt, annotator = make_prompt(), make_user(roles.ANNOTATOR)
    animals = Category.objects.get(slug="animals")
    sub = animals.children.first()
    prompt_lease_claim(user=annotator)
    review = ReviewInput(decision="accept", category=animals, subcategory=sub)
    prompt_review_submit(user=annotator, prompt_id=prompt.pk, review=review)
    prompt_review_submit(user=annotator, prompt_id=prompt.pk, review=review)  # a retried submission
    prompt.refresh_from_db()
    assert (prompt.status, prompt.category, prompt.subcategory, prompt.reviews_done) == ("accepted", animals, sub, 1)
    assert PromptReview.objects.count() == 1 and PromptLease.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    "review",
    [
        ReviewInput(decision="reject"),
        ReviewInput(decision="reject", reasons=("other",)),
        ReviewInput(decision="reject", reasons=("bogus",)),
        ReviewInput(decision="accept", reasons=("unsafe",)),
    ],
)
def test_invalid_reviews_are_refused_and_change_nothing(review):
    prompt, annotator = make_prompt(), make_user(roles.ANNOTATOR)
    prompt_lease_claim(user=annotator)
    with pytest.raises(ValidationError):
        prompt_review_submit(user=annotator, prompt_id=prompt.pk, review=review)
    prompt.refresh_from_db()
    assert (prompt.status, prompt.reviews_done, PromptReview.objects.count()) == ("pending", 0, 0)


@pytest.mark.django_db
def test_review_without_a_lease_is_refused():
    prompt = make_prompt()
    with pytest.raises(ValidationError, match="not handed to you"):
        prompt_review_submit(user=make_user(roles.ANNOTATOR), prompt_id=prompt.pk, review=ACCEPT)
    assert PromptReview.objects.count() == 0


@pytest.mark.django_db
def test_two_reviews_that_disagree_go_to_a_reviewer_and_agreeing_ones_settle():
    disputed, agreed = make_prompt(), make_prompt()
    Prompt.objects.update(reviews_required=2)
    ann1, ann2 = make_user(roles.ANNOTATOR), make_user(roles.ANNOTATOR)
    for user, first_review, second_review in ((ann1, ACCEPT, REJECT), (ann2, REJECT, REJECT)):
        assert prompt_lease_claim(user=user) == disputed
        prompt_review_submit(user=user, prompt_id=disputed.pk, review=first_review)
        assert prompt_lease_claim(user=user) == agreed
        prompt_review_submit(user=user, prompt_id=agreed.pk, review=second_review)
    disputed.refresh_from_db()
    agreed.refresh_from_db()
    assert (disputed.status, disputed.needs_reviewer, disputed.reviews_done) == ("pending", True, 2)
    assert (agreed.status, agreed.rejection_reasons, agreed.needs_reviewer) == ("rejected", ["incoherent"], False)
    assert prompt_lease_claim(user=make_user(roles.ANNOTATOR)) is None


@pytest.mark.django_db
def test_near_duplicates_and_settled_prompts_are_not_handed_out():
    kept = make_prompt()
    copy = make_prompt()
    Prompt.objects.filter(pk=copy.pk).update(near_duplicate_of=kept)
    Prompt.objects.filter(pk=kept.pk).update(status=PromptStatus.ACCEPTED)
    assert prompt_lease_claim(user=make_user(roles.ANNOTATOR)) is None


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_hand_out_distinct_prompts():
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    prompts = {make_prompt().pk for _ in range(6)}
    users = [make_user() for _ in range(6)]

    def claim(user):
        try:
            return prompt_lease_claim(user=user).pk
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=6) as pool:
        claimed = list(pool.map(claim, users))
    assert sorted(claimed) == sorted(prompts)


@pytest.mark.django_db
def test_filter_page_needs_the_permission(client):
    client.force_login(make_user())
    assert client.get(reverse("annotation:prompt-filter")).status_code == 403


@pytest.mark.django_db(transaction=True)
def test_annotator_accepts_and_rejects_by_keyboard_in_chromium(browser_login, live_server):
    accepted, rejected = make_prompt("a lantern floating on a dark lake"), make_prompt("purple the of sideways mug")
    # A flushed database (transactional test) has no role groups: give the annotator's permission directly.
    make_user(username="ann").user_permissions.add(Permission.objects.get(codename="filter_prompts"))
    Category.objects.get_or_create(slug="scenes", defaults={"name": "Scenes"})  # the flush removed the seeded ones
    page = browser_login("ann")
    page.goto(f"{live_server.url}{reverse('annotation:prompt-filter')}")
    assert page.text_content("#prompt-text") == accepted.text
    page.select_option("#category", label="Scenes")
    page.focus("body")
    page.keyboard.press("a")
    page.wait_for_function(f"document.querySelector('#prompt-text').textContent === {rejected.text!r}")
    page.keyboard.press("1")
    page.keyboard.press("2")
    page.keyboard.press("r")
    page.wait_for_selector("#queue-empty")
    accepted.refresh_from_db()
    rejected.refresh_from_db()
    assert (accepted.status, accepted.category.slug) == ("accepted", "scenes")
    assert (rejected.status, rejected.rejection_reasons) == ("rejected", ["incoherent", "incomprehensible"])
    reviewer = PromptReview.objects.get(prompt=rejected).reviewer
    assert reviewer.username == "ann"
