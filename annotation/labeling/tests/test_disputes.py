import uuid

import pytest
from django.urls import reverse

from annotation import roles
from annotation.labeling.tests.labeling_factories import make_pairs
from annotation.models import Adjudication, Judgement, Pair
from annotation.tests.factories import make_user

pytestmark = pytest.mark.django_db
ANSWERS = {"aesthetics": "first", "detail": "second", "alignment": "tie", "overall": "first"}


def _judge(pair, annotator, choice: str) -> None:
    Judgement.objects.create(
        pair=pair,
        annotator=annotator,
        aesthetics=choice,
        detail=choice,
        alignment=choice,
        overall=choice,
        left_side="first",
        duration_ms=1000,
        client_token=uuid.uuid4(),
    )
    Pair.objects.filter(pk=pair.pk).update(judgements_done=Judgement.objects.filter(pair=pair).count())


@pytest.fixture
def pairs():
    """A unanimous complete pair, a split complete pair, a split incomplete pair and an unjudged one."""
    unanimous, split, partial, fresh = make_pairs(4, required=3)
    people = [make_user(roles.ANNOTATOR) for _ in range(3)]
    for person in people:
        _judge(unanimous, person, "first")
    for person, choice in zip(people, ("first", "second", "tie"), strict=True):
        _judge(split, person, choice)
    for person, choice in zip(people[:2], ("first", "second"), strict=True):
        _judge(partial, person, choice)
    return unanimous, split, partial, fresh


def _post(client, pair, action="adjudicate", **answers):
    data = {"pair_id": pair.pk, "action": action, **ANSWERS, **answers, "note": "looked closely"}
    return client.post(reverse("annotation:label-adjudicate"), data)


def test_annotator_is_refused_the_disputes_page_and_adjudication(client, pairs):
    _, split, _, _ = pairs
    client.force_login(make_user(roles.ANNOTATOR))
    assert client.get(reverse("annotation:label-disputes")).status_code == 403
    assert _post(client, split).status_code == 403
    assert _post(client, split, action="gold").status_code == 403
    assert not Adjudication.objects.exists()
    assert not Pair.objects.filter(is_gold=True).exists()


def test_disputes_lists_the_most_disputed_complete_pairs_first(client, pairs):
    unanimous, split, partial, fresh = pairs
    client.force_login(make_user(roles.REVIEWER))
    response = client.get(reverse("annotation:label-disputes"))
    assert response.status_code == 200
    shown = [row["pair"].pk for row in response.context["rows"]]
    # Complete before incomplete; among complete ones the split (share 1/3) before the unanimous (1.0).
    assert shown == [split.pk, unanimous.pk, partial.pk]
    assert response.context["rows"][0]["pair"].majority_share == pytest.approx(1 / 3)
    assert response.context["rows"][0]["votes"][0] == {"key": "aesthetics", "first": 1, "second": 1, "tie": 1}


def test_reviewer_adjudicates_and_readjudicating_updates_the_one_row(client, pairs):
    unanimous, split, partial, _ = pairs
    reviewer = make_user(roles.REVIEWER)
    client.force_login(reviewer)
    assert _post(client, split).status_code == 302
    adjudication = Adjudication.objects.get()
    assert (adjudication.pair_id, adjudication.reviewer_id, adjudication.note) == (
        split.pk,
        reviewer.pk,
        "looked closely",
    )
    assert {key: getattr(adjudication, key) for key in ANSWERS} == ANSWERS
    _post(client, split, overall="tie")
    assert Adjudication.objects.count() == 1 and Adjudication.objects.get().overall == "tie"
    # Adjudicated pairs go to the end of the list.
    shown = [row["pair"].pk for row in client.get(reverse("annotation:label-disputes")).context["rows"]]
    assert shown == [unanimous.pk, partial.pk, split.pk]


def test_invalid_adjudication_changes_nothing(client, pairs):
    _, split, _, _ = pairs
    client.force_login(make_user(roles.REVIEWER))
    assert _post(client, split, overall="left").status_code == 302
    missing = client.post(reverse("annotation:label-adjudicate"), {"pair_id": split.pk, "action": "adjudicate"})
    assert missing.status_code == 302
    assert _post(client, Pair(pk=999999)).status_code == 302
    assert not Adjudication.objects.exists()


def test_reviewer_sets_gold_answers(client, pairs):
    _, split, _, _ = pairs
    client.force_login(make_user(roles.REVIEWER))
    assert _post(client, split, action="gold", detail="tie").status_code == 302
    pair = Pair.objects.get(pk=split.pk)
    assert pair.is_gold and pair.gold_answers == {**ANSWERS, "detail": "tie"}
    assert Pair.objects.filter(is_gold=True).count() == 1 and not Adjudication.objects.exists()
