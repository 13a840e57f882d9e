import uuid

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from annotation import roles
from annotation.dimensions import DIMENSION_KEYS
from annotation.labeling.api import AnswersIn
from annotation.labeling.tests.labeling_factories import ANSWERS_LEFT, make_pairs
from annotation.models import Judgement, Pair, PairLease, PairSkip
from annotation.tests.factories import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def api():
    client = APIClient()
    client.force_authenticate(make_user(roles.ANNOTATOR))
    return client


def _next(client, exclude=()):
    return client.post(reverse("label-api:next"), {"exclude": list(exclude)}, format="json")


def test_answers_serializer_covers_the_four_dimensions():
    assert set(AnswersIn().fields) == set(DIMENSION_KEYS)


def test_next_claims_a_lease_and_hides_gold_and_generators(api):
    (pair,) = make_pairs(1)
    Pair.objects.filter(pk=pair.pk).update(is_gold=True, gold_answers={"overall": "first"})
    response = _next(api)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"pair_id", "prompt", "left", "right", "lease_expires_at"}
    assert body["pair_id"] == pair.pk and body["prompt"] == pair.prompt.text
    assert "gold" not in response.content.decode() and "generator" not in response.content.decode()
    assert PairLease.objects.filter(pair=pair).count() == 1
    assert _next(api, exclude=[pair.pk]).status_code == 204


def test_submit_is_idempotent_by_client_token(api):
    (pair,) = make_pairs(1)
    _next(api)
    body = {"pair_id": pair.pk, "answers": ANSWERS_LEFT, "client_token": str(uuid.uuid4()), "duration_ms": 900}
    first = api.post(reverse("label-api:submit"), body, format="json")
    again = api.post(reverse("label-api:submit"), body, format="json")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"] and again.json()["created"] is False
    assert Judgement.objects.get().duration_ms == 900
    assert api.get(reverse("label-api:me")).json() == {"today": 1, "total": 1}


def test_submit_can_claim_the_next_pair_in_the_same_call(api):
    first, preloaded, third = make_pairs(3)
    assert _next(api).json()["pair_id"] == first.pk
    assert _next(api, exclude=[first.pk]).json()["pair_id"] == preloaded.pk
    body = {"pair_id": first.pk, "answers": ANSWERS_LEFT, "client_token": str(uuid.uuid4())}
    response = api.post(reverse("label-api:submit"), {**body, "next": {"exclude": [preloaded.pk]}}, format="json")
    assert response.status_code == 201
    claimed = response.json()["next"]
    assert claimed["pair_id"] == third.pk and set(claimed) == {"pair_id", "prompt", "left", "right", "lease_expires_at"}
    assert Judgement.objects.get().pair_id == first.pk
    assert set(PairLease.objects.values_list("pair_id", flat=True)) == {preloaded.pk, third.pk}
    # A retry returns the stored judgement and the pair it claimed, not a third lease.
    again = api.post(reverse("label-api:submit"), {**body, "next": {"exclude": [preloaded.pk]}}, format="json")
    assert again.status_code == 200 and again.json()["next"]["pair_id"] == third.pk
    assert PairLease.objects.count() == 2 and Judgement.objects.count() == 1
    # Without `next` the answer has no such key; with nothing left to claim it is null.
    plain = {"pair_id": preloaded.pk, "answers": ANSWERS_LEFT, "client_token": str(uuid.uuid4())}
    assert "next" not in api.post(reverse("label-api:submit"), plain, format="json").json()
    last = {"pair_id": third.pk, "answers": ANSWERS_LEFT, "client_token": str(uuid.uuid4()), "next": {}}
    assert api.post(reverse("label-api:submit"), last, format="json").json()["next"] is None


def test_submit_with_a_malformed_next_is_refused_and_stores_nothing(api):
    (pair,) = make_pairs(1)
    _next(api)
    body = {"pair_id": pair.pk, "answers": ANSWERS_LEFT, "client_token": str(uuid.uuid4())}
    response = api.post(reverse("label-api:submit"), {**body, "next": {"exclude": ["x"]}}, format="json")
    assert response.status_code == 400 and "next" in response.json()
    assert not Judgement.objects.exists() and PairLease.objects.count() == 1


def test_submit_refusals_change_nothing(api):
    (pair,) = make_pairs(1)
    body = {"pair_id": pair.pk, "answers": ANSWERS_LEFT, "client_token": str(uuid.uuid4())}
    assert api.post(reverse("label-api:submit"), body, format="json").status_code == 409  # no lease
    _next(api)
    bad = {**body, "answers": {**ANSWERS_LEFT, "overall": "first"}}
    assert api.post(reverse("label-api:submit"), bad, format="json").status_code == 400
    assert Judgement.objects.count() == 0 and Pair.objects.get(pk=pair.pk).judgements_done == 0


def test_release_and_skip(api):
    first, second = make_pairs(2)
    claimed = _next(api).json()["pair_id"]
    assert api.post(reverse("label-api:release"), {"pair_id": claimed}, format="json").status_code == 204
    assert not PairLease.objects.exists()
    claimed = _next(api).json()["pair_id"]
    response = api.post(reverse("label-api:skip"), {"pair_id": claimed, "reason": "broken image"}, format="json")
    assert response.status_code == 204 and PairSkip.objects.get().pair_id == claimed
    assert _next(api).json()["pair_id"] == ({first.pk, second.pk} - {claimed}).pop()


@pytest.mark.parametrize("role", [None, roles.REVIEWER])
def test_labeling_api_needs_the_label_permission(role):
    make_pairs(1)
    client = APIClient()
    if role is None:
        # No credentials: 401 with how to authenticate (token auth is offered first).
        response = _next(client)
        assert response.status_code == 401 and response.headers["WWW-Authenticate"] == "Token"
        assert not PairLease.objects.exists()
        return
    reviewer = make_user(role)  # reviewers may label too: their role includes it
    client.force_authenticate(reviewer)
    assert _next(client).status_code == 200


def test_a_user_without_a_role_cannot_label():
    make_pairs(1)
    client = APIClient()
    client.force_authenticate(make_user())
    assert _next(client).status_code == 403
    assert client.get(reverse("label-api:me")).status_code == 403
    assert not PairLease.objects.exists()


def test_openapi_schema_lists_the_labeling_endpoints(client):
    client.force_login(make_user(roles.ANNOTATOR))
    schema = client.get(reverse("api-schema")).content.decode()
    for path in ("/api/label/next/", "/api/label/submit/", "/api/label/release/", "/api/label/skip/", "/api/label/me/"):
        assert path in schema


def _submit(client, pair_id, token=None, **extra):
    body = {"pair_id": pair_id, "answers": ANSWERS_LEFT, "client_token": str(token or uuid.uuid4()), **extra}
    return client.post(reverse("label-api:submit"), body, format="json")


def test_a_second_answer_under_a_new_token_is_409_with_the_stored_judgement(api):
    (pair,) = make_pairs(1)
    _next(api)
    first = _submit(api, pair.pk)
    again = _submit(api, pair.pk)
    assert (first.status_code, again.status_code) == (201, 409)
    assert again.json()["code"] == "already_judged" and again.json()["judgement"]["id"] == first.json()["id"]
    assert Judgement.objects.count() == 1


def test_a_failed_claim_after_a_stored_judgement_is_named_not_a_500(api, monkeypatch):
    from django.db import OperationalError

    from annotation.labeling import queue

    first, second = make_pairs(2)
    _next(api)

    def connection_lost(**kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(queue, "pair_claim", connection_lost)
    response = _submit(api, first.pk, next={"exclude": []})
    assert response.status_code == 201 and response.json()["next"] is None
    assert "ask for it again" in response.json()["next_error"]
    assert Judgement.objects.get().pair_id == first.pk


ID_MAX = 2**63 - 1


@pytest.mark.parametrize(
    ("url", "body"),
    [
        ("label-api:submit", {"pair_id": ID_MAX + 1, "answers": ANSWERS_LEFT, "client_token": str(uuid.uuid4())}),
        ("label-api:submit", {"pair_id": 0, "answers": ANSWERS_LEFT, "client_token": str(uuid.uuid4())}),
        ("label-api:next", {"exclude": [ID_MAX + 1]}),
        ("label-api:release", {"pair_id": ID_MAX + 1}),
        ("label-api:skip", {"pair_id": ID_MAX + 1, "reason": "x"}),
        ("label-api:skip", {"pair_id": 1, "reason": "a\x00b"}),
    ],
)
def test_out_of_range_ids_and_nul_are_400_and_change_nothing(api, url, body):
    make_pairs(1)
    response = api.post(reverse(url), body, format="json")
    assert response.status_code == 400, response.content
    assert not PairLease.objects.exists() and not Judgement.objects.exists() and not PairSkip.objects.exists()


def test_deeply_nested_json_is_400(api):
    deep = "[" * 100_000 + "]" * 100_000
    response = api.post(reverse("label-api:next"), deep, content_type="application/json")
    assert response.status_code == 400 and "nested deeper" in response.json()["detail"]


def test_the_plain_form_refuses_out_of_range_numbers_without_a_500(client):
    (pair,) = make_pairs(1)
    client.force_login(make_user(roles.ANNOTATOR))
    client.get(reverse("annotation:label-form"))
    form = {"client_token": str(uuid.uuid4()), **ANSWERS_LEFT}
    for bad in ({"pair_id": ID_MAX + 1}, {"pair_id": pair.pk, "duration_ms": 2**31}):
        response = client.post(reverse("annotation:label-form"), {**form, **bad}, follow=True)
        assert response.status_code == 200 and "Answer all four rows" in response.content.decode()
    assert not Judgement.objects.exists()


def test_revise_changes_the_answers_in_place_until_the_pair_is_frozen(api):
    from django.utils import timezone

    from datasets.models import DatasetItem, DatasetStatus, DatasetVersion

    (pair,) = make_pairs(1)
    _next(api)
    stored = _submit(api, pair.pk).json()
    changed = {"pair_id": pair.pk, "answers": {**ANSWERS_LEFT, "overall": "left"}}
    revised = api.post(reverse("label-api:revise"), changed, format="json")
    assert revised.status_code == 200 and revised.json()["id"] == stored["id"]
    judgement = Judgement.objects.get()
    assert judgement.overall == ("first" if judgement.left_side == "first" else "second")

    # As a freeze writes it: items while freezing, then frozen (the database refuses items of a frozen version).
    version = DatasetVersion.objects.create(name="v1", status=DatasetStatus.FREEZING)
    DatasetItem.objects.create(version=version, pair=pair, split="train", labels={}, annotator_count=1, agreement=1)
    DatasetVersion.objects.filter(pk=version.pk).update(status=DatasetStatus.FROZEN, frozen_at=timezone.now())
    refused = api.post(reverse("label-api:revise"), {"pair_id": pair.pk, "answers": ANSWERS_LEFT}, format="json")
    assert refused.status_code == 409 and refused.json()["code"] == "frozen"
    assert Judgement.objects.get().overall == judgement.overall
    nothing = api.post(reverse("label-api:revise"), {"pair_id": pair.pk + 1, "answers": ANSWERS_LEFT}, format="json")
    assert nothing.status_code == 409 and nothing.json()["code"] == "lease_missing"
