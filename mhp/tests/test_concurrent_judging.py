"""Two people judging at once through the labeling API get no 500 (the demo on SQLite answered
"database is locked" before WAL, a busy timeout and immediate transactions)."""

import threading
import uuid
from collections import Counter

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from annotation import roles
from annotation.models import Judgement, Pair
from annotation.tests.factories import make_user
from annotation.tests.labeling_factories import ANSWERS_LEFT, make_pairs

ANNOTATORS = 3
PAIRS = 24


def _judge_everything(user, statuses: list, errors: list) -> None:
    """The labeling page's loop: claim a pair, then submit it and claim the next in the same call."""
    client = Client(raise_request_exception=False)  # a failure must show as the status a browser gets
    client.force_login(user)
    try:
        response = client.post(reverse("label-api:next"), {"exclude": []}, content_type="application/json")
        statuses.append(response.status_code)
        while response.status_code in (200, 201) and (pair := _pair_of(response)) is not None:
            body = {"pair_id": pair, "answers": ANSWERS_LEFT, "client_token": str(uuid.uuid4()), "next": {}}
            response = client.post(reverse("label-api:submit"), body, content_type="application/json")
            statuses.append(response.status_code)
    except Exception as error:  # noqa: BLE001 - a thread's failure must reach the test, whatever it is
        errors.append(repr(error))
    finally:
        connection.close()


def _pair_of(response) -> int | None:
    body = response.json()
    return body["pair_id"] if "client_token" not in body else (body["next"] or {}).get("pair_id")


@pytest.mark.django_db(transaction=True)
def test_annotators_judging_at_once_get_no_server_error():
    make_pairs(PAIRS, required=ANNOTATORS)
    users = [make_user(roles.ANNOTATOR) for _ in range(ANNOTATORS)]
    statuses: list[int] = []
    errors: list[str] = []
    threads = [threading.Thread(target=_judge_everything, args=(user, statuses, errors)) for user in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    counts = Counter(statuses)
    assert set(counts) <= {200, 201, 204}, counts
    # Every pair judged by every annotator, each judgement answered 201 exactly once.
    assert counts[201] == PAIRS * ANNOTATORS == Judgement.objects.count()
    assert set(Pair.objects.values_list("judgements_done", flat=True)) == {ANNOTATORS}
