"""Two people judging at once through the labeling API get no 500 (the demo on SQLite answered
"database is locked" before WAL, a busy timeout and immediate transactions)."""

import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from annotation import roles
from annotation.labeling.tests.labeling_factories import ANSWERS_LEFT, make_pairs
from annotation.models import Judgement, Pair
from annotation.tests.factories import make_user

ANNOTATORS = 3
PAIRS = 24


def _judge_everything(user) -> list[int]:
    """The labeling page's loop: claim a pair, then submit it and claim the next in the same call.
    Returns the status of every answer; an exception reaches the test through the pool."""
    client = Client(raise_request_exception=False)  # a failure must show as the status a browser gets
    client.force_login(user)
    try:
        response = client.post(reverse("label-api:next"), {"exclude": []}, content_type="application/json")
        statuses = [response.status_code]
        while response.status_code in (200, 201) and (pair := _pair_of(response)) is not None:
            body = {"pair_id": pair, "answers": ANSWERS_LEFT, "client_token": str(uuid.uuid4()), "next": {}}
            response = client.post(reverse("label-api:submit"), body, content_type="application/json")
            statuses.append(response.status_code)
        return statuses
    finally:
        connection.close()


def _pair_of(response) -> int | None:
    body = response.json()
    return body["pair_id"] if "client_token" not in body else (body["next"] or {}).get("pair_id")


@pytest.mark.django_db(transaction=True)
def test_annotators_judging_at_once_get_no_server_error():
    make_pairs(PAIRS, required=ANNOTATORS)
    users = [make_user(roles.ANNOTATOR) for _ in range(ANNOTATORS)]
    with ThreadPoolExecutor(max_workers=ANNOTATORS) as pool:
        counts = Counter(status for statuses in pool.map(_judge_everything, users) for status in statuses)

    assert set(counts) <= {200, 201, 204}, counts
    # Every pair judged by every annotator, each judgement answered 201 exactly once.
    assert counts[201] == PAIRS * ANNOTATORS == Judgement.objects.count()
    assert set(Pair.objects.values_list("judgements_done", flat=True)) == {ANNOTATORS}
