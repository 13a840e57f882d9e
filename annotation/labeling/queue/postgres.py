"""PostgreSQL fast path of the labeling queue: claim and submit are one function call each.

The functions (`mhp_pair_claim`, `mhp_judgement_submit`; their source is `sql/`) follow the same
rules as the portable ORM path in `annotation.labeling.queue`; a function runs every statement of
the claim or submit inside the database, so the web process pays one round trip and no ORM query
building for each (that was most of the cost per request). Migration 0004's docstring says why the
counts made there are exact under concurrency.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction

from annotation.dimensions import DIMENSION_KEYS
from annotation.labeling import redundancy
from annotation.labeling.queue.errors import AlreadyJudged, LabelingDisabled, LeaseMissing, PairFull, QueueError
from annotation.models import AnnotatorProfile, Image, Judgement, Pair, PairLease, Prompt

_CLAIM_SQL = "SELECT * FROM mhp_pair_claim(%s, %s::bigint[], %s, %s, %s, %s, %s, %s, %s)"
_SUBMIT_SQL = "SELECT * FROM mhp_judgement_submit(%s, %s, %s, %s, %s, %s, %s)"

_LEASE_FIELDS = ("id", "pair_id", "annotator_id", "left_side", "expires_at", "created_at")
_PAIR_FIELDS = (
    "id",
    "prompt_id",
    "image_first_id",
    "image_second_id",
    "kind",
    "judgements_required",
    "judgements_done",
    "is_gold",
)
_IMAGE_FIELDS = ("id", "prompt_id", "file", "thumbnail", "width", "height")
_SUBMIT_REFUSALS = {
    "no-lease": (LeaseMissing, "this pair is not leased to you (it may have been released or judged)"),
    "full": (PairFull, "this pair already has all its judgements"),
    "expired-full": (PairFull, "your lease expired and the pair was given to someone else"),
}


# A claim that leased nothing while a pair the annotator could judge was locked by someone else's transaction.
BUSY = "busy"


def claim(
    *,
    annotator: AbstractBaseUser,
    exclude_pair_ids: tuple[int, ...],
    now: datetime,
    gold_first: bool,
    side: str,
    lease_seconds: int,
    max_held: int,
    max_stale: int,
) -> PairLease | str | None:
    """`pair_claim` on PostgreSQL: `gold_first` and `side` apply only if a new lease is made. BUSY when
    nothing was leased although an eligible pair exists (its row was locked)."""
    if not annotator.is_active:
        raise LabelingDisabled("labeling is disabled for this account")
    # Only when the claim is its own transaction may its commit skip the wait for the disk: a
    # caller's enclosing transaction keeps the durable commit.
    async_commit = not connection.in_atomic_block
    params = [annotator.pk, list(exclude_pair_ids), now, lease_seconds, max_held, gold_first, side, max_stale]
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM_SQL, [*params, async_commit])
        row = cursor.fetchone()
        if row is not None and row[0] == "no-profile":
            AnnotatorProfile.objects.get_or_create(user=annotator)
            cursor.execute(_CLAIM_SQL, [*params, async_commit])
            row = cursor.fetchone()
    if row is None:
        return None
    if row[0] == "disabled":
        raise LabelingDisabled("labeling is disabled for this account")
    if row[0] == "busy":
        return BUSY
    return _lease_from_row(row[1:])


def _lease_from_row(row: tuple) -> PairLease:
    """The lease with its pair, prompt and images, as the claim function returns them."""
    at = 0

    def take(model, fields):
        nonlocal at
        values = row[at : at + len(fields)]
        at += len(fields)
        return model.from_db(connection.alias, fields, values)

    lease = take(PairLease, _LEASE_FIELDS)
    pair = take(Pair, _PAIR_FIELDS)
    pair.prompt = Prompt.from_db(connection.alias, ("id", "text"), (pair.prompt_id, row[at]))
    at += 1
    pair.image_first = take(Image, _IMAGE_FIELDS)
    pair.image_second = take(Image, _IMAGE_FIELDS)
    lease.pair = pair
    return lease


def submit(
    *,
    annotator: AbstractBaseUser,
    pair_id: int,
    canonical: Mapping[str, Mapping[str, str]],
    answers: Mapping[str, str],
    client_token: uuid.UUID,
    duration_ms: int | None,
    now: datetime,
) -> tuple[Judgement, bool]:
    """`judgement_submit` on PostgreSQL; `canonical[left_side]` maps screen answers to canonical ones."""
    # The function picks one of the two by the lease's left side, which only it reads.
    by_side = {side: [mapping[answers[key]] for key in DIMENSION_KEYS] for side, mapping in canonical.items()}
    params = [annotator.pk, pair_id, client_token, by_side["first"], by_side["second"], duration_ms, now]
    if redundancy.redundancy_adaptive():
        status, judgement_id, left_side, stored_duration = _submit_adaptive(params, pair_id)
    else:
        with connection.cursor() as cursor:
            cursor.execute(_SUBMIT_SQL, params)
            status, judgement_id, left_side, stored_duration = cursor.fetchone()
    if status == "existing":
        # A retry of this very submission (returned as stored), or a new answer to a pair they judged.
        judgement = _existing(annotator, client_token, pair_id)
        if judgement.client_token != client_token:
            raise AlreadyJudged(judgement)
        return judgement, False
    if status != "stored":
        error, message = _SUBMIT_REFUSALS[status]
        raise error(message)
    values = {
        "id": judgement_id,
        "pair_id": pair_id,
        "annotator_id": annotator.pk,
        **dict(zip(DIMENSION_KEYS, by_side[left_side], strict=True)),
        "left_side": left_side,
        "duration_ms": stored_duration,
        "client_token": client_token,
        "created_at": now,
    }
    return Judgement.from_db(connection.alias, tuple(values), tuple(values.values())), True


def _submit_adaptive(params: list, pair_id: int) -> tuple:
    """The submit function, then the pair's new count decided in its transaction while the row lock it took
    is held. The pair's rows come back in the same round trip as the function's (the second statement
    runs after the first and sees what it wrote): BEGIN, the two, COMMIT. Two statements in one call need
    psycopg's client-side binding, Django's default (`server_side_binding` would refuse them)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"{_SUBMIT_SQL}; {redundancy.pair_redundancy_sql()}", [*params, pair_id])
        result = cursor.fetchone()
        cursor.nextset()
        rows = cursor.fetchall()
        if result[0] == "stored":
            redundancy.pair_redundancy_apply(pair_id=pair_id, rows=rows)
    return result


def _existing(annotator: AbstractBaseUser, client_token: uuid.UUID, pair_id: int) -> Judgement:
    """The judgement stored with this token, else theirs of this pair (the caller saw one of them)."""
    judgement = (
        Judgement.objects.filter(client_token=client_token).first()
        or Judgement.objects.filter(pair_id=pair_id, annotator=annotator).first()
    )
    if judgement is None:
        raise QueueError("the judgement could not be stored; try again")
    if judgement.annotator_id != annotator.pk:
        # A token is a secret of one client; someone else's token must not reveal their judgement.
        raise QueueError("this client token was used by another account")
    return judgement
