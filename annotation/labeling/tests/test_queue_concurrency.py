"""20 annotators, each on its own PostgreSQL connection, empty the queue at once: under the fixed policy
(exactly N judgements per pair) and under adaptive redundancy (as many as the rule asks, no more)."""

import threading
import time
import uuid
from collections import Counter

import pytest
from django.db import connection
from django.db.models import F

from annotation import roles
from annotation.dimensions import DIMENSION_KEYS
from annotation.labeling import consensus, queue
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


def _annotate_until_empty(
    user, stored: list, errors: list, answer=lambda user, lease: ANSWERS_LEFT, revise: bool = False
) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    try:
        while time.monotonic() < deadline:
            lease = queue.pair_claim(annotator=user)
            if lease is None:
                if not _queue_has_work_for(user):
                    return
                time.sleep(0.01)
                continue
            token, answers = uuid.uuid4(), answer(user, lease)
            judgement, created = queue.judgement_submit(
                annotator=user, pair_id=lease.pair_id, answers=answers, client_token=token, duration_ms=10
            )
            # The client retries every submission once, as a flaky network would make it.
            retried, created_again = queue.judgement_submit(
                annotator=user, pair_id=lease.pair_id, answers=answers, client_token=token, duration_ms=10
            )
            assert created and not created_again and retried.pk == judgement.pk
            if revise:
                # Backspace on the page, then the same answers again: the revision re-applies the rule
                # under the pair's lock while others submit to the pair.
                queue.judgement_revise(annotator=user, pair_id=lease.pair_id, answers=answers)
            stored.append((judgement.pk, lease.pair_id, user.pk))
        errors.append(f"{user.username} ran past the deadline")
    except Exception as error:  # noqa: BLE001 - a thread's failure must reach the test, whatever it is
        errors.append(f"{user.username}: {error!r}")
    finally:
        connection.close()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_workers_empty_the_queue_with_exactly_n_judgements_per_pair(settings):
    settings.PAIR_REDUNDANCY = "fixed"
    pairs = make_pairs(PAIRS, required=REQUIRED)
    users = [make_user(roles.ANNOTATOR) for _ in range(WORKERS)]
    stored, errors = _run_workers(users)

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


def _run_workers(users, **options) -> tuple[list[tuple[int, int, int]], list[str]]:
    stored: list[tuple[int, int, int]] = []
    errors: list[str] = []
    threads = [
        threading.Thread(target=_annotate_until_empty, args=(user, stored, errors), kwargs=options) for user in users
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return stored, errors


# How each pair of the adaptive pool is answered (canonical, on `overall`; the other dimensions agree):
# everyone alike, by the annotator's parity (first/second), or by the annotator's index mod 3.
_SCHEMES = {
    "agree": lambda index: "first",
    "parity": lambda index: ("first", "second")[index % 2],
    "cycle": lambda index: consensus.CLASSES[index % 3],
}
_TO_SCREEN = {
    side: {canonical: screen for screen, canonical in mapping.items()} for side, mapping in queue._TO_CANONICAL.items()
}


def _canonical(scheme: str, index: int) -> dict[str, str]:
    return {**dict.fromkeys(DIMENSION_KEYS, "first"), "overall": _SCHEMES[scheme](index)}


def _settled_after(overall_answers: list[str], policy: consensus.RedundancyPolicy) -> bool:
    """The rule's verdict on a pair after these judgements (no reliabilities fitted: unknown judges)."""
    judges = len(overall_answers)
    unknown = [consensus.confusion_from_accuracy(consensus.UNKNOWN_ACCURACY)] * judges
    prior = consensus.uniform_prior()
    agreed = consensus.label_posterior([consensus.CLASS_INDEX["first"]] * judges, unknown, prior)
    overall = consensus.label_posterior([consensus.CLASS_INDEX[answer] for answer in overall_answers], unknown, prior)
    return consensus.judgements_wanted(judges, [agreed, agreed, agreed, overall], policy) == judges


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_workers_under_adaptive_redundancy_judge_each_pair_as_far_as_the_rule_asks(settings):
    settings.PAIR_REDUNDANCY, settings.PAIR_JUDGEMENTS_MIN, settings.PAIR_JUDGEMENTS_MAX = "adaptive", 2, 5
    settings.PAIR_SETTLED_POSTERIOR, settings.GOLD_PAIR_RATE = 0.75, 0.0
    policy = consensus.RedundancyPolicy(2, 5, 0.75)
    pairs = make_pairs(PAIRS, required=None)
    scheme = {pair.pk: tuple(_SCHEMES)[index % len(_SCHEMES)] for index, pair in enumerate(pairs)}
    users = [make_user(roles.ANNOTATOR) for _ in range(WORKERS)]
    index_of = {user.pk: index for index, user in enumerate(users)}

    def answer(user, lease):
        canonical = _canonical(scheme[lease.pair_id], index_of[user.pk])
        return {key: _TO_SCREEN[lease.left_side][value] for key, value in canonical.items()}

    stored, errors = _run_workers(users, answer=answer, revise=True)

    assert errors == []
    judgements = list(Judgement.objects.values_list("pk", "pair_id", "annotator_id", "overall"))
    assert sorted(judgements) == sorted((*row, _SCHEMES[scheme[row[1]]](index_of[row[2]])) for row in stored)
    assert len({(pair_id, annotator_id) for _, pair_id, annotator_id, _ in judgements}) == len(judgements)
    by_pair: dict[int, list[str]] = {pair.pk: [] for pair in pairs}
    for _, pair_id, _, overall in sorted(judgements):  # id order: the order the pair's lock let them in
        by_pair[pair_id].append(overall)
    for pair_id, done, required in Pair.objects.values_list("pk", "judgements_done", "judgements_required"):
        answers = by_pair[pair_id]
        # Exact counters, every pair closed within the bounds, each extra judgement asked for by the rule.
        assert done == required == len(answers), (pair_id, done, required, answers)
        assert 2 <= done <= 5
        assert all(not _settled_after(answers[:k], policy) for k in range(2, done)), (pair_id, answers)
        assert done == 5 or _settled_after(answers, policy), (pair_id, answers)
        if scheme[pair_id] == "agree":
            assert done == 2
    assert sum(len(answers) for answers in by_pair.values()) > 2 * PAIRS
    assert not PairLease.objects.exists()
