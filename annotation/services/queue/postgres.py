"""PostgreSQL fast path of the labeling queue: claim and submit in a handful of plain SQL statements.

Same rules as the portable ORM path in `annotation.services.queue`, fewer round trips and no ORM
query compilation (which was most of the cost per request):

claim (one transaction): lock the annotator's profile row (their claims run one at a time) -> drop
their own expired leases and list the live ones -> one statement that picks the first eligible pair
with `FOR UPDATE OF p SKIP LOCKED` and inserts the lease -> one statement that re-counts the pair's
live leases (a fresh snapshot, taken after the lock) and reads what the form shows.

submit (one transaction): lock the pair row and read the lease and any judgement with this token ->
one statement that inserts the judgement (`ON CONFLICT DO NOTHING`), adds one to
`judgements_done` and deletes the lease.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.utils import timezone

from annotation.dimensions import DIMENSION_KEYS
from annotation.models import AnnotatorProfile, Image, Judgement, Pair, PairLease, PairSkip, Prompt
from annotation.services.queue.errors import LabelingDisabled, LeaseMissing, PairFull, QueueError

_LEASE = PairLease._meta.db_table
_PAIR = Pair._meta.db_table
_JUDGEMENT = Judgement._meta.db_table
_SKIP = PairSkip._meta.db_table
_PROFILE = AnnotatorProfile._meta.db_table
_PROMPT = Prompt._meta.db_table
_IMAGE = Image._meta.db_table

_PROFILE_SQL = f"SELECT labeling_enabled FROM {_PROFILE} WHERE user_id = %s FOR UPDATE"
# The same, plus `SET LOCAL synchronous_commit TO OFF` without a round trip of its own: the claim's
# commit does not wait for its WAL to reach the disk (about 3 ms here, on every claim). If the
# database crashes in that window the lease is lost, which only returns the pair to the queue (the
# annotator's submit then gets "not leased to you"). Only when the claim is its own transaction:
# a caller's enclosing transaction keeps the durable commit, as judgements always do.
_PROFILE_ASYNC_COMMIT_SQL = f"""
SELECT labeling_enabled, set_config('synchronous_commit', 'off', true)
FROM {_PROFILE} WHERE user_id = %s FOR UPDATE
"""

_HELD_SQL = f"""
WITH expired AS (DELETE FROM {_LEASE} WHERE annotator_id = %(user)s AND expires_at <= %(now)s)
SELECT id, pair_id FROM {_LEASE} WHERE annotator_id = %(user)s AND expires_at > %(now)s ORDER BY created_at, id
"""

# Free slots as this statement's snapshot sees them (the load statement counts again after the lock).
_PICK_SLOT_CHECK = """
      AND p.judgements_done
          + (SELECT count(*) FROM {lease} a WHERE a.pair_id = p.id AND a.expires_at > %(now)s)
          < p.judgements_required"""
# `is_gold` is a literal, not a parameter, so that a plan is never shared between the two kinds: the
# planner takes the is_gold index for the rare gold pairs and the open-queue index for the others.
_PICK_SQL = """
WITH candidate AS (
    SELECT p.id FROM {pair} p
    WHERE p.judgements_done < p.judgements_required
      AND p.is_gold = {gold}
      AND p.id <> ALL(%(stepped)s::bigint[]){slot_check}
      AND NOT EXISTS (SELECT 1 FROM {judgement} j WHERE j.pair_id = p.id AND j.annotator_id = %(user)s)
      AND NOT EXISTS (SELECT 1 FROM {skip} s WHERE s.pair_id = p.id AND s.annotator_id = %(user)s)
      AND NOT EXISTS (SELECT 1 FROM {lease} m WHERE m.pair_id = p.id AND m.annotator_id = %(user)s)
    ORDER BY p.judgements_done DESC, p.id
    LIMIT 1
    FOR UPDATE OF p SKIP LOCKED
)
INSERT INTO {lease} (pair_id, annotator_id, left_side, expires_at, created_at)
SELECT id, %(user)s, %(side)s, %(expires)s, %(now)s FROM candidate
RETURNING id
"""
_PICK_SLOT_CHECK = _PICK_SLOT_CHECK.format(lease=_LEASE)
_PICK = {
    gold: _PICK_SQL.format(
        pair=_PAIR,
        lease=_LEASE,
        judgement=_JUDGEMENT,
        skip=_SKIP,
        gold="true" if gold else "false",
        slot_check=_PICK_SLOT_CHECK,
    )
    for gold in (True, False)
}

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


def _columns(alias: str, fields: Sequence[str]) -> str:
    return ", ".join(f"{alias}.{name}" for name in fields)


# Read after the pair is locked, so the count sees every lease committed before the lock was granted.
_LOAD_SQL = f"""
SELECT {_columns("l", _LEASE_FIELDS)}, {_columns("p", _PAIR_FIELDS)}, pr.text,
       {_columns("f", _IMAGE_FIELDS)}, {_columns("s", _IMAGE_FIELDS)},
       (SELECT count(*) FROM {_LEASE} a WHERE a.pair_id = p.id AND a.expires_at > %(now)s)
FROM {_LEASE} l
JOIN {_PAIR} p ON p.id = l.pair_id
JOIN {_PROMPT} pr ON pr.id = p.prompt_id
JOIN {_IMAGE} f ON f.id = p.image_first_id
JOIN {_IMAGE} s ON s.id = p.image_second_id
WHERE l.id = %(lease)s
"""

_SUBMIT_LOCK_SQL = f"""
SELECT p.judgements_done, p.judgements_required, l.id, l.left_side, l.expires_at, l.created_at,
       (SELECT j.id FROM {_JUDGEMENT} j WHERE j.client_token = %(token)s),
       (SELECT j.id FROM {_JUDGEMENT} j WHERE j.pair_id = p.id AND j.annotator_id = %(user)s)
FROM {_PAIR} p
LEFT JOIN {_LEASE} l ON l.pair_id = p.id AND l.annotator_id = %(user)s
WHERE p.id = %(pair)s
FOR UPDATE OF p
"""

_STORED_SQL = f"""
SELECT 1 FROM {_JUDGEMENT} WHERE client_token = %(token)s OR (pair_id = %(pair)s AND annotator_id = %(user)s) LIMIT 1
"""

_OTHER_LIVE_LEASES_SQL = f"SELECT count(*) FROM {_LEASE} WHERE pair_id = %s AND expires_at > %s AND id <> %s"

_JUDGEMENT_COLUMNS = (
    "pair_id",
    "annotator_id",
    *DIMENSION_KEYS,
    "left_side",
    "duration_ms",
    "client_token",
    "created_at",
)
# Nothing is counted or deleted unless the judgement row went in: a conflict (a retry of this
# submission, or another judgement of this pair by this annotator) changes nothing.
_SUBMIT_SQL = f"""
WITH stored AS (
    INSERT INTO {_JUDGEMENT} ({", ".join(_JUDGEMENT_COLUMNS)})
    VALUES ({", ".join(f"%({name})s" for name in _JUDGEMENT_COLUMNS)})
    ON CONFLICT DO NOTHING
    RETURNING id
), counted AS (
    UPDATE {_PAIR} SET judgements_done = judgements_done + 1
    WHERE id = %(pair_id)s AND EXISTS (SELECT 1 FROM stored)
), released AS (
    DELETE FROM {_LEASE} WHERE id = %(lease_id)s AND EXISTS (SELECT 1 FROM stored)
)
SELECT id FROM stored
"""


def _lock_profile(cursor, annotator: AbstractBaseUser, *, sql: str) -> None:
    cursor.execute(sql, [annotator.pk])
    row = cursor.fetchone()
    if row is None:
        AnnotatorProfile.objects.get_or_create(user=annotator)
        cursor.execute(sql, [annotator.pk])
        row = cursor.fetchone()
    if not row[0] or not annotator.is_active:
        raise LabelingDisabled("labeling is disabled for this account")


def claim(
    *,
    annotator: AbstractBaseUser,
    exclude_pair_ids: tuple[int, ...],
    now: datetime,
    want_gold: Callable[[], bool],
    pick_side: Callable[[], str],
    lease_seconds: int,
    max_held: int,
    max_stale: int,
) -> PairLease | None:
    """`pair_claim` on PostgreSQL; `want_gold()` and `pick_side()` are asked only when a new lease is made."""
    profile_sql = _PROFILE_SQL if connection.in_atomic_block else _PROFILE_ASYNC_COMMIT_SQL
    with transaction.atomic(), connection.cursor() as cursor:
        _lock_profile(cursor, annotator, sql=profile_sql)
        cursor.execute(_HELD_SQL, {"user": annotator.pk, "now": now})
        held = cursor.fetchall()
        for lease_id, pair_id in held:
            if pair_id not in exclude_pair_ids:
                return _load(cursor, lease_id, now)[0]
        if len(held) >= max_held:
            return None
        params = {
            "user": annotator.pk,
            "now": now,
            "expires": now + timedelta(seconds=lease_seconds),
            "side": None,
        }
        # Gold pairs come at the configured rate; either kind falls back to the other when it runs out.
        gold_first = want_gold()
        for gold in (gold_first, not gold_first):
            lease = _claim_one(cursor, params, gold, pick_side, max_stale)
            if lease is not None:
                return lease
    return None


def _claim_one(cursor, params: dict, gold: bool, pick_side, max_stale: int) -> PairLease | None:
    """Lease the first eligible pair; step over one whose fresh count shows it full (see `_LOAD_SQL`).

    The pick's snapshot predates its row lock: a lease committed by someone who held that lock a
    moment earlier is invisible to it. The load statement, run after the lock, counts it; such a
    pair keeps its lock until commit (harmless), loses the lease just inserted, and is stepped over.
    """
    stepped: list[int] = []
    for _ in range(max_stale):
        if params["side"] is None:
            params["side"] = pick_side()
        cursor.execute(_PICK[gold], {**params, "stepped": stepped})
        row = cursor.fetchone()
        if row is None:
            return None
        lease, live = _load(cursor, row[0], params["now"])
        if lease.pair.judgements_done + live <= lease.pair.judgements_required:
            return lease
        cursor.execute(f"DELETE FROM {_LEASE} WHERE id = %s", [lease.pk])
        stepped.append(lease.pair_id)
    return None


def _load(cursor, lease_id: int, now: datetime) -> tuple[PairLease, int]:
    """The lease with its pair, prompt and images (what the form shows), and the pair's live leases."""
    cursor.execute(_LOAD_SQL, {"lease": lease_id, "now": now})
    row = cursor.fetchone()
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
    return lease, row[at]


def submit(
    *,
    annotator: AbstractBaseUser,
    pair_id: int,
    canonical: Mapping[str, Mapping[str, str]],
    answers: Mapping[str, str],
    client_token: uuid.UUID,
    duration_ms: int | None,
) -> tuple[Judgement, bool]:
    """`judgement_submit` on PostgreSQL; `canonical[left_side]` maps screen answers to canonical ones."""
    params = {"pair": pair_id, "user": annotator.pk, "token": client_token}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_SUBMIT_LOCK_SQL, params)
        row = cursor.fetchone() or (None,) * 8
        done, required, lease_id, left_side, expires_at, leased_at, by_token, by_pair = row
        # A retry of this very submission, or a second answer to a pair they judged: the stored one.
        if by_token is not None or by_pair is not None:
            return _existing(annotator, client_token, pair_id), False
        refusal = None
        now = timezone.now()
        if lease_id is None:
            refusal = LeaseMissing("this pair is not leased to you (it may have been released or judged)")
        elif done >= required:
            refusal = PairFull("this pair already has all its judgements")
        elif expires_at <= now:
            # A late submission is still welcome if nobody was handed the slot the expired lease freed.
            cursor.execute(_OTHER_LIVE_LEASES_SQL, [pair_id, now, lease_id])
            if done + cursor.fetchone()[0] >= required:
                refusal = PairFull("your lease expired and the pair was given to someone else")
        if refusal is not None:
            # The lock statement read the lease and judgements in its snapshot, taken before it waited
            # for the pair's lock: a retry of this submission may have committed meanwhile. Look again.
            cursor.execute(_STORED_SQL, params)
            if cursor.fetchone() is not None:
                return _existing(annotator, client_token, pair_id), False
            raise refusal
        if duration_ms is None:
            # A plain form post has no client clock: the lease's age is the best measure we have.
            duration_ms = int((now - leased_at).total_seconds() * 1000)
        mapping = canonical[left_side]
        values = {
            "pair_id": pair_id,
            "annotator_id": annotator.pk,
            **{key: mapping[answers[key]] for key in DIMENSION_KEYS},
            "left_side": left_side,
            "duration_ms": max(0, duration_ms),
            "client_token": client_token,
            "created_at": now,
        }
        cursor.execute(_SUBMIT_SQL, {**values, "lease_id": lease_id})
        stored = cursor.fetchone()
        if stored is None:
            # A concurrent retry committed while this one waited for the pair's lock: it won.
            return _existing(annotator, client_token, pair_id), False
    judgement = Judgement.from_db(connection.alias, ("id", *_JUDGEMENT_COLUMNS), (stored[0], *values.values()))
    return judgement, True


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
