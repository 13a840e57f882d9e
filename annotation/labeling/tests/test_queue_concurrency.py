"""20 annotators, each on its own PostgreSQL connection, empty the queue at once."""

import threading
import time
import uuid
from collections import Counter

import pytest
from django.db import connection
from django.db.models import F

from annotation import roles
from annotation.labeling import queue
from annotation.labeling.tests.labeling_factories import ANSWERS_LEFT, make_pairs
from annotation.models import Judgement, Pair, PairLease
from annotation.tests.factories import make_user

WORKERS = 20
PAIRS = 30
REQUIRED = 3
DEADLINE_SECONDS = 60


def _queue_has_work_for(user) -> bool:
    # Open pairs this annotator has not judged: others hold leases on them that will soon be judged.
    return (
        Pair.objects.filter(judgements_done__lt=F("judgements_required")).exclude(judgements__annotator=user).exists()
    )


def _annotate_until_empty(user, stored: list, errors: list) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    try:
        while time.monotonic() < deadline:
            lease = queue.pair_claim(annotator=user)
            if lease is None:
                if not _queue_has_work_for(user):
                    return
                time.sleep(0.01)
                continue
            token = uuid.uuid4()
            judgement, created = queue.judgement_submit(
                annotator=user, pair_id=lease.pair_id, answers=ANSWERS_LEFT, client_token=token, duration_ms=10
            )
            # The client retries every submission once, as a flaky network would make it.
            retried, created_again = queue.judgement_submit(
                annotator=user, pair_id=lease.pair_id, answers=ANSWERS_LEFT, client_token=token, duration_ms=10
            )
            assert created and not created_again and retried.pk == judgement.pk
            stored.append((judgement.pk, lease.pair_id, user.pk))
        errors.append(f"{user.username} ran past the deadline")
    except Exception as error:  # noqa: BLE001 - a thread's failure must reach the test, whatever it is
        errors.append(f"{user.username}: {error!r}")
    finally:
        connection.close()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_workers_empty_the_queue_with_exactly_n_judgements_per_pair():
    pairs = make_pairs(PAIRS, required=REQUIRED)
    users = [make_user(roles.ANNOTATOR) for _ in range(WORKERS)]
    stored: list[tuple[int, int, int]] = []
    errors: list[str] = []
    threads = [threading.Thread(target=_annotate_until_empty, args=(user, stored, errors)) for user in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    judgements = list(Judgement.objects.values_list("pk", "pair_id", "annotator_id"))
    # Nothing lost: every judgement a worker was told it stored is in the table, and nothing else.
    assert sorted(judgements) == sorted(stored)
    assert len(judgements) == PAIRS * REQUIRED
    per_pair = Counter(pair_id for _, pair_id, _ in judgements)
    assert per_pair == {pair.pk: REQUIRED for pair in pairs}
    assert len({(pair_id, annotator_id) for _, pair_id, annotator_id in judgements}) == len(judgements)
    assert set(Pair.objects.values_list("judgements_done", flat=True)) == {REQUIRED}
    assert not PairLease.objects.exists()
