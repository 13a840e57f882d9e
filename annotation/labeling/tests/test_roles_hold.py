"""Roles hold in labeling: a deactivated annotator's work stops at once, a reviewer does not settle their own
pairs, and the admin shows judgements, leases, skips and adjudications without letting anyone edit them."""

import uuid

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from annotation import roles
from annotation.labeling import queue
from annotation.labeling.queue.errors import LabelingDisabled, LeaseMissing
from annotation.labeling.services import ReviewError, annotator_deactivate, pair_adjudicate, pair_gold_set
from annotation.labeling.tests.labeling_factories import ANSWERS_LEFT, judged_by, make_pairs
from annotation.models import Adjudication, Judgement, Pair, PairLease, PairSkip
from annotation.tests.factories import make_user

pytestmark = pytest.mark.django_db
CANONICAL = {"aesthetics": "first", "detail": "second", "alignment": "tie", "overall": "first"}


@pytest.fixture(params=["postgres-functions", "orm"])
def queue_path(request, monkeypatch, settings):
    if request.param == "postgres-functions" and settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        pytest.skip("needs PostgreSQL")
    monkeypatch.setattr(queue, "USE_POSTGRES_SQL", request.param == "postgres-functions")
    return request.param


def test_deactivation_releases_leases_at_once_and_refuses_later_work(queue_path):
    first, second = make_pairs(2, required=1)
    annotator, other = make_user(roles.ANNOTATOR), make_user(roles.ANNOTATOR)
    held = queue.pair_claim(annotator=annotator).pair_id
    held = [held, queue.pair_claim(annotator=annotator, exclude_pair_ids=(held,)).pair_id]
    assert sorted(held) == sorted([first.pk, second.pk])

    annotator_deactivate(user=annotator)
    assert not PairLease.objects.filter(annotator=annotator).exists()
    with pytest.raises(LeaseMissing):
        queue.judgement_submit(annotator=annotator, pair_id=first.pk, answers=ANSWERS_LEFT, client_token=uuid.uuid4())
    with pytest.raises(LabelingDisabled):
        queue.pair_claim(annotator=annotator)
    assert not Judgement.objects.exists()
    # The released pairs are back in the queue for the others at once (no waiting for the leases to expire).
    taken = queue.pair_claim(annotator=other).pair_id
    assert {taken, queue.pair_claim(annotator=other, exclude_pair_ids=(taken,)).pair_id} == set(held)


def test_a_deactivated_annotators_submit_through_the_api_is_refused():
    (pair,) = make_pairs(1)
    annotator = make_user(roles.ANNOTATOR)
    api = APIClient()
    api.force_authenticate(annotator)
    assert api.post(reverse("label-api:next"), {}, format="json").status_code == 200
    annotator_deactivate(user=annotator)
    body = {"pair_id": pair.pk, "answers": ANSWERS_LEFT, "client_token": str(uuid.uuid4()), "duration_ms": 900}
    response = api.post(reverse("label-api:submit"), body, format="json")
    assert 400 <= response.status_code < 500
    assert not Judgement.objects.exists() and Pair.objects.get(pk=pair.pk).judgements_done == 0


@pytest.mark.parametrize("action", ["adjudicate", "gold"])
def test_a_reviewer_cannot_settle_a_pair_they_judged(client, action):
    mine, others = make_pairs(2)
    reviewer = make_user(roles.REVIEWER)
    judged_by(reviewer, [mine])
    client.force_login(reviewer)
    data = {"pair_id": mine.pk, "action": action, **CANONICAL, "note": ""}
    response = client.post(reverse("annotation:label-adjudicate"), data, follow=True)
    assert f"you judged pair {mine.pk} yourself; another reviewer settles it" in response.content.decode()
    assert not Adjudication.objects.exists() and not Pair.objects.filter(is_gold=True).exists()
    with pytest.raises(ReviewError, match="another reviewer settles it"):
        pair_adjudicate(reviewer=reviewer, pair_id=mine.pk, answers=CANONICAL)
    with pytest.raises(ReviewError, match="another reviewer settles it"):
        pair_gold_set(reviewer=reviewer, pair_id=mine.pk, answers=CANONICAL)
    assert not Adjudication.objects.exists() and not Pair.objects.filter(is_gold=True).exists()
    # A pair they did not judge is theirs to settle.
    client.post(reverse("annotation:label-adjudicate"), {**data, "pair_id": others.pk})
    settled = Adjudication.objects.filter(pair=others).exists(), Pair.objects.get(pk=others.pk).is_gold
    assert settled == ((True, False) if action == "adjudicate" else (False, True))


def _rows(model) -> list:
    return sorted(model.objects.values_list(*[f.attname for f in model._meta.concrete_fields]))


@pytest.fixture
def labeled():
    pair, _ = make_pairs(2)
    judged_by(make_user(roles.ANNOTATOR), [pair])
    queue.pair_claim(annotator=make_user(roles.ANNOTATOR))
    skipper = make_user(roles.ANNOTATOR)
    queue.pair_skip(annotator=skipper, pair_id=queue.pair_claim(annotator=skipper).pair_id, reason="broken")
    pair_adjudicate(reviewer=make_user(roles.REVIEWER), pair_id=pair.pk, answers=CANONICAL)
    return {model: model.objects.first() for model in (Judgement, PairLease, PairSkip, Adjudication)}


@pytest.mark.parametrize("model", [Judgement, PairLease, PairSkip, Adjudication], ids=lambda m: m.__name__)
def test_the_admin_shows_labeling_rows_but_edits_none(client, labeled, model):
    client.force_login(make_user(roles.ADMIN))
    row = labeled[model]
    name = f"admin:annotation_{model._meta.model_name}"
    before = {m: _rows(m) for m in (Judgement, PairLease, PairSkip, Adjudication, Pair)}
    assert client.get(reverse(f"{name}_changelist")).status_code == 200
    assert client.get(reverse(f"{name}_change", args=[row.pk])).status_code == 200
    assert client.get(reverse(f"{name}_add")).status_code == 403
    assert client.post(reverse(f"{name}_add"), {"pair": row.pair_id}).status_code == 403
    assert client.post(reverse(f"{name}_change", args=[row.pk]), {"pair": row.pair_id}).status_code == 403
    assert client.post(reverse(f"{name}_delete", args=[row.pk]), {"post": "yes"}).status_code == 403
    assert {m: _rows(m) for m in before} == before


def test_gold_answers_are_not_typed_into_the_pair_admin(client):
    (pair,) = make_pairs(1)
    client.force_login(make_user(roles.ADMIN))
    change = reverse("admin:annotation_pair_change", args=[pair.pk])
    response = client.post(change, {"is_gold": "on", "gold_answers": '{"overall": "first"}', "judgements_required": 4})
    assert response.status_code == 302
    assert Pair.objects.values_list("is_gold", "gold_answers", "judgements_required").get() == (False, {}, 4)
    assert client.get(reverse("admin:annotation_pair_add")).status_code == 403
