"""Adaptive redundancy in the database: how many judgements a pair asks for, after each judgement it gets.

Under `PAIR_REDUNDANCY = "adaptive"` a new pair asks for `PAIR_JUDGEMENTS_MIN` judgements. Each time a
non-gold pair reaches the count it asks for, its label posterior on every dimension (from its judges'
fitted confusion matrices) decides, by `consensus.judgements_wanted`, whether it closes there or asks for
one more, up to `PAIR_JUDGEMENTS_MAX`. Both queue paths (the ORM and the PostgreSQL function) call
`pair_redundancy_apply` in the submit's transaction, under the pair's row lock, so the count a claim
sees is decided by one submit at a time.

Gold pairs keep their fixed count: their answers are known, their judgements measure the judges. A pair
that closed is never reopened when the reliabilities are fitted again later: its label is aggregated
from all its judgements at freeze time anyway, and reopening closed pairs by the thousand after every fit
would pull annotators back to old work. Only a revision of one of its judgements re-applies the rule.
"""

import functools
import json

import numpy as np
from django.conf import settings
from django.db import connection

from annotation.dimensions import DIMENSION_KEYS
from annotation.labeling import consensus
from annotation.models import DimensionPrior, Pair


def redundancy_adaptive() -> bool:
    return settings.PAIR_REDUNDANCY == "adaptive"


def judgements_required_default() -> int:
    """What a new pair asks for when its creator names no count: the policy's first step."""
    return settings.PAIR_JUDGEMENTS_MIN if redundancy_adaptive() else settings.PAIR_JUDGEMENTS_REQUIRED


def redundancy_policy() -> consensus.RedundancyPolicy:
    return consensus.RedundancyPolicy(
        minimum=settings.PAIR_JUDGEMENTS_MIN,
        maximum=settings.PAIR_JUDGEMENTS_MAX,
        settled_posterior=settings.PAIR_SETTLED_POSTERIOR,
    )


def pair_redundancy_apply(*, pair_id: int, rows: list[tuple] | None = None) -> int | None:
    """Raise the pair's `judgements_required` if its judgements leave a label unsettled; returns the new
    count, or None when nothing changed.

    Call it in the transaction that changed the pair's judgements, holding the pair's row lock taken by an
    earlier statement (a submit's first): the count is then decided by one change of the pair at a time, on
    every judgement committed before. (A `FOR UPDATE` in this query would not do: a statement that waits
    for the lock sees the pair's new row but the judgements of its snapshot from before the wait, and a
    revision racing a submit read two judgements and a count of three.) Only a pair
    whose judgements reached its count is decided on: a pair still collecting its count keeps it, so the
    count never drops under the leases already handed out. The pair, its judgements and their judges'
    fits come in one query (a few rows), `pair_redundancy_sql()`: a caller that ran it in the same round trip
    as its own statement, in this transaction, passes its `rows`.
    """
    if not redundancy_adaptive():
        return None
    rows = _rows("pair", [pair_id]) if rows is None else rows
    if not rows:
        return None
    done, required, is_gold = rows[0][:3]
    if is_gold or done < required:
        return None
    # A count named below the policy's minimum at creation is the creator's choice: it is kept, and only
    # a disagreement adds to it.
    policy = redundancy_policy()
    policy = consensus.RedundancyPolicy(min(policy.minimum, required), policy.maximum, policy.settled_posterior)
    answers, fitted = _answers_and_fits(rows)
    wanted = consensus.judgements_wanted(done, label_posteriors(answers=answers, fitted=fitted), policy)
    if wanted <= required:
        return None
    Pair.objects.filter(pk=pair_id).update(judgements_required=wanted)
    return wanted


_PAIR_WITH_JUDGEMENTS = (
    "judgements_done",
    "judgements_required",
    "is_gold",
    "judgements__annotator_id",
    *(f"judgements__{key}" for key in DIMENSION_KEYS),
    "judgements__annotator__reliabilities__dimension",
    "judgements__annotator__reliabilities__confusion",
)


def pair_redundancy_sql() -> str:
    """The pair's query (one placeholder: its id), for a caller that sends it with its own statement. Rows:
    (done, required, is_gold, judge, answers..., fitted dimension, confusion), one per judgement and fitted
    dimension of its judge; a pair with no judgement still gives its one row."""
    return _compiled("pair", connection.vendor)


# The two queries of every decision, as the ORM writes them (the pair's id a placeholder).
_QUERIES = {
    "pair": lambda: Pair.objects.filter(pk=0).values_list(*_PAIR_WITH_JUDGEMENTS),
    "priors": lambda: DimensionPrior.objects.values_list("dimension", "prior", "default_confusion"),
}


def _rows(name: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(_compiled(name, connection.vendor), params)
        return cursor.fetchall()


@functools.cache
def _compiled(name: str, vendor: str) -> str:
    """The ORM's SQL of a query in `_QUERIES`, built once per process and database vendor: building it
    took a millisecond of CPU on every submit, ten times what running it costs PostgreSQL."""
    sql, _ = _QUERIES[name]().query.sql_with_params()
    return sql


def _answers_and_fits(rows: list[tuple]) -> tuple[dict[int, tuple[str, ...]], dict[tuple[int, str], np.ndarray]]:
    answers: dict[int, tuple[str, ...]] = {}
    fitted: dict[tuple[int, str], np.ndarray] = {}
    for row in rows:
        judge, dimension, confusion = row[3], row[-2], row[-1]
        if judge is None:
            continue
        answers[judge] = row[4 : 4 + len(DIMENSION_KEYS)]
        if dimension is not None and (matrix := _stochastic(_json(confusion), (3, 3))) is not None:
            fitted[judge, dimension] = matrix
    return answers, fitted


def label_posteriors(
    *, answers: dict[int, tuple[str, ...]], fitted: dict[tuple[int, str], np.ndarray]
) -> list[np.ndarray]:
    """P(true label) on each dimension (DIMENSION_KEYS order) given each judge's canonical answers (by
    judge, in DIMENSION_KEYS order) and the judges' fitted confusions (by judge and dimension)."""
    priors, unknown = _dimension_priors()
    posteriors = []
    for index, dimension in enumerate(DIMENSION_KEYS):
        classes = [consensus.CLASS_INDEX[given[index]] for given in answers.values()]
        confusions = [fitted.get((judge, dimension), unknown[dimension]) for judge in answers]
        posteriors.append(consensus.label_posterior(classes, confusions, priors[dimension]))
    return posteriors


def _dimension_priors() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Each dimension's class prior and the confusion assumed for a judge with no fit yet; where the
    reliability job has not run, a uniform prior and a judge right UNKNOWN_ACCURACY of the time."""
    priors = {key: consensus.uniform_prior() for key in DIMENSION_KEYS}
    unknown = {key: consensus.confusion_from_accuracy(consensus.UNKNOWN_ACCURACY) for key in DIMENSION_KEYS}
    for dimension, prior, default in _rows("priors", []):
        if (vector := _stochastic(_json(prior), (3,))) is not None:
            priors[dimension] = vector
        if (matrix := _stochastic(_json(default), (3, 3))) is not None:
            unknown[dimension] = matrix
    return priors, unknown


def _json(value):
    # Raw rows carry JSON as text (PostgreSQL's jsonb as Django reads it, SQLite's text).
    return json.loads(value) if isinstance(value, str) else value


def _stochastic(value, shape: tuple[int, ...]) -> np.ndarray | None:
    """The stored matrix (or vector) if it is a usable one: the right shape, positive, rows summing to 1.

    A malformed row written by hand must not break every submit of its annotator: it counts as missing.
    """
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return None
    if array.shape != shape or not np.all(np.isfinite(array)) or np.any(array <= 0):
        return None
    if not np.allclose(array.sum(axis=-1), 1.0, atol=1e-3):
        return None
    return array
