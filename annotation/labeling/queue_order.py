"""The order fresh pairs are served in: plain id order, or guided by a pair scoring run's uncertainties.

A guided order ranks the fresh open pairs (nobody judged them yet, not gold) that the run scored, with
consecutive ranks in `guided.guided_order`'s serving order: the most uncertain across the four dimensions
first, with a share of pairs drawn at random (round-robin over the prompts' categories) that keeps the
collected labels an unbiased sample. Fresh pairs the run did not score, and pairs created later, keep
`QUEUE_RANK_LAST` and come after the ranked ones, in id order: a model chose the ranked ones, and a new
import should not jump ahead of them. A reset gives every pair `QUEUE_RANK_LAST` back: plain id order.
Partly judged pairs come first in either order (the claim's head, annotation.labeling.queue).

An order is a job (`QueueOrder`): the page queues it, a Celery task applies it. The ranks are written in
short transactions of `_RANK_CHUNK` pairs, because every rank written locks its pair row until commit and
claims step over locked rows: one transaction over 1,000,000 pairs made claims wait seconds while it ran.
A new order's ranks lie below every rank in use (`_rank_base`) and are written from its first pair on, each
chunk moving the fresh fronts as it commits: from the first chunk on, the new order's best pairs are served
first, then the pairs the order in force ranked and the new one has not reached yet, in their old order.
Once all are written the old ranks are cleared (also in chunks). An order that fails half-way leaves the
chunks it wrote first and the order in force after them; the next order or reset clears them. (After some
2,000 orders of 1,000,000 pairs the ranks would run out: the ranks in use are then cleared first.)
"""

import secrets
import threading
from contextlib import contextmanager

import numpy as np
from django.contrib.auth.models import AbstractBaseUser
from django.db import DatabaseError, connection, transaction
from django.db.models import Min, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from annotation.dimensions import DIMENSION_KEYS
from annotation.labeling import guided
from annotation.labeling.queue import sql
from annotation.models import Pair
from annotation.models.labeling import QUEUE_RANK_LAST, QueueOrder
from mhp.jobs import JobFailed, JobStatus, job_enqueue, job_progress, job_run

_BULK_ROWS = 2000
# Pairs whose rank one transaction writes: their rows stay locked until it commits (claims skip them).
_RANK_CHUNK = 10_000
# The session advisory lock that makes orders apply one at a time (the claims' front lock is 8460001).
_APPLY_LOCK = 8460002
_APPLY_IN_PROCESS = threading.Lock()
APPLY_TASK = "annotation.queue_order_apply"
_SEED_BITS = 62


class QueueOrderError(ValueError):
    """An order that cannot be applied (a run that did not succeed, a share outside 0..1)."""


def queue_order_request(
    *,
    run=None,
    random_share: float | None = None,
    seed: int | None = None,
    created_by: AbstractBaseUser | None = None,
) -> QueueOrder:
    """Queue the job that applies an order: guided by `run` (a succeeded training.PairScoringRun) with
    `random_share` of the slots given to random pairs, or, without a run, plain id order. At 1,000,000 pairs
    writing the ranks takes longer than a web request may; the page shows the job until it is done."""
    order = _order_create(run=run, random_share=random_share, seed=seed, created_by=created_by)
    job_enqueue(APPLY_TASK, order.pk)
    return order


def queue_order_apply(order_id: int) -> QueueOrder:
    """Run a queued order's job (the Celery task's body): see the module's docstring for what a claim sees
    meanwhile, and what a failure leaves."""
    return job_run(QueueOrder.objects, order_id, _apply)


def queue_order_from_run(
    run, *, random_share: float, seed: int | None = None, created_by: AbstractBaseUser | None = None
) -> QueueOrder:
    """Order the queue by `run` now, in this process (commands, benchmarks, tests)."""
    order = _order_create(run=run, random_share=random_share, seed=seed, created_by=created_by)
    return queue_order_apply(order.pk)


def queue_order_reset(*, created_by: AbstractBaseUser | None = None) -> QueueOrder:
    """Serve fresh pairs in plain id order again, now, in this process."""
    return queue_order_apply(_order_create(created_by=created_by).pk)


def queue_order_current() -> QueueOrder | None:
    """The order in force; None: id order, never changed."""
    return QueueOrder.objects.filter(status=JobStatus.SUCCEEDED).select_related("created_by").first()


def queue_orders_pending():
    return QueueOrder.objects.filter(status__in=(JobStatus.QUEUED, JobStatus.RUNNING))


def _order_create(*, run=None, random_share=None, seed=None, created_by=None) -> QueueOrder:
    if run is None:
        return QueueOrder.objects.create(guided=False, created_by=created_by)
    if random_share is None or not 0.0 <= random_share <= 1.0:
        raise QueueOrderError(f"the random share must lie between 0 and 1, got {random_share}")
    if run.status != JobStatus.SUCCEEDED:
        raise QueueOrderError(f"scoring run {run.pk} has not succeeded ({run.status})")
    seed = secrets.randbits(_SEED_BITS) if seed is None else seed
    return QueueOrder.objects.create(
        guided=True, scoring_run_id=run.pk, random_share=random_share, seed=seed, created_by=created_by
    )


def _apply(order: QueueOrder) -> dict:
    with _one_apply_at_a_time():
        ids = _serving_ids(order) if order.guided else np.empty(0, dtype=np.int64)
        last = _ranks_write(order, ids)
        try:
            _ranks_clear(above=last)
        except DatabaseError as error:
            raise JobFailed(
                f"the new ranks are written and served first, but clearing the previous order's failed ({error}):"
                " apply the order again"
            ) from error
        with transaction.atomic():
            _fronts_move()
    return {"pairs_ranked": len(ids)}


def _serving_ids(order: QueueOrder) -> np.ndarray:
    """The ids of the fresh pairs the run scored, in the order they are to be served."""
    if order.scoring_run is None:
        raise JobFailed("the scoring run was deleted before the order was applied")
    ids, probabilities, groups = _fresh_scores(order.scoring_run)
    rng = np.random.default_rng(order.seed)
    serving = guided.guided_order(
        guided.uncertainty(probabilities), random_share=order.random_share, rng=rng, groups=groups
    )
    return ids[serving]


def _fresh_scores(run) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids (n,), P(first preferred) (n, 4), category ids (n,)) of the fresh open pairs the run scored,
    in id order (guided_order keeps it among equal uncertainties)."""
    rows = (
        run.scores.filter(pair__judgements_done=0, pair__is_gold=False)
        .annotate(category=Coalesce("pair__prompt__category_id", Value(0)))
        .order_by("pair_id")
        .values_list("pair_id", *DIMENSION_KEYS, "category")
    )
    # Row by row into one array: at 1,000,000 pairs a list of tuples first would take a few hundred MB.
    width = 2 + len(DIMENSION_KEYS)
    table = np.fromiter(rows.iterator(chunk_size=10_000), dtype=np.dtype((float, width))).reshape(-1, width)
    return table[:, 0].astype(np.int64), table[:, 1:-1], table[:, -1].astype(np.int64)


@contextmanager
def _one_apply_at_a_time():
    # Two orders written at once would interleave their ranks; the apply is many transactions, so a session
    # lock on PostgreSQL, and a process lock where Celery runs in the web process (SQLite, the demo).
    if connection.vendor != "postgresql":
        with _APPLY_IN_PROCESS:
            yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [_APPLY_LOCK])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [_APPLY_LOCK])


def _rank_base(count: int) -> int:
    """The first rank of a new order of `count` pairs: its ranks lie just below every rank in use. When they
    would run out (ranks are positive), the ranks in use are cleared first and the order starts from the top."""
    lowest = Pair.objects.filter(queue_rank__lt=QUEUE_RANK_LAST).aggregate(low=Min("queue_rank"))["low"]
    base = (QUEUE_RANK_LAST if lowest is None else lowest) - count
    if base < 1:
        _ranks_clear(above=0)
        return QUEUE_RANK_LAST - count
    return base


def _ranks_write(order: QueueOrder, ids_in_order: np.ndarray) -> int:
    """Consecutive ranks in serving order, a short transaction per chunk that also moves the fresh fronts to the
    new first pairs (progress after each). Returns the last rank written (0: none)."""
    ids = ids_in_order.tolist()
    if not ids:
        return 0
    base = _rank_base(len(ids))
    for start in range(0, len(ids), _RANK_CHUNK):
        chunk = ids[start : start + _RANK_CHUNK]
        with transaction.atomic():
            _ranks_set(chunk, list(range(base + start, base + start + len(chunk))))
            _fronts_move()
        job_progress(order, (start + len(chunk)) / len(ids))
    return base + len(ids) - 1


def _ranks_set(ids: list[int], ranks: list[int]) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {Pair._meta.db_table} p SET queue_rank = v.rank"
                " FROM unnest(%s::bigint[], %s::integer[]) AS v(id, rank) WHERE p.id = v.id",
                [ids, ranks],
            )
        return
    pairs = [Pair(pk=pk, queue_rank=rank) for pk, rank in zip(ids, ranks, strict=True)]
    Pair.objects.bulk_update(pairs, ["queue_rank"], batch_size=_BULK_ROWS)


def _ranks_clear(*, above: int) -> None:
    """Every rank above `above` back to QUEUE_RANK_LAST, a short transaction per chunk of pairs in id order."""
    stale = Pair.objects.filter(queue_rank__gt=above, queue_rank__lt=QUEUE_RANK_LAST)
    after = 0
    while chunk := list(stale.filter(pk__gt=after).order_by("pk").values_list("pk", flat=True)[:_RANK_CHUNK]):
        # By id range, not a list of ids: the stale pairs in it are exactly the chunk's.
        stale.filter(pk__gte=chunk[0], pk__lte=chunk[-1]).update(queue_rank=QUEUE_RANK_LAST)
        after = chunk[-1]


def _fronts_move() -> None:
    """Each kind's fresh front to its first pair in the order as it now is (call in a transaction). Under the
    claims' own front lock (sql/pair_claim.sql): no claim moves a front meanwhile. The ORM claim path (SQLite)
    keeps no front: it walks the fresh pairs from the start."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT pg_advisory_xact_lock({sql.FRONT_LOCK}, 0), pg_advisory_xact_lock({sql.FRONT_LOCK}, 1)")
        for gold in (False, True):
            cursor.execute("SELECT * FROM mhp_fresh_front_move(%s, %s)", [gold, timezone.now()])
