"""Model-guided queue order, as pure numbers: which fresh pairs to serve first given a model's preference
probabilities. The queue order job (annotation/labeling/queue_order.py) and benchmarks/bench_active.py
both call `guided_order`.
"""

import numpy as np


def uncertainty(probabilities: np.ndarray) -> np.ndarray:
    """(pairs, dimensions) P(first preferred) -> (pairs,): 1 where the model cannot tell on any dimension
    (p = 0.5), 0 where it is sure of every one (p = 0 or 1); the mean over dimensions."""
    probabilities = np.asarray(probabilities, dtype=float)
    return (1.0 - np.abs(2.0 * probabilities - 1.0)).mean(axis=1)


def guided_order(
    uncertainties: np.ndarray, *, random_share: float, rng: np.random.Generator, groups: np.ndarray | None = None
) -> np.ndarray:
    """Indices of the pairs in serving order: the most uncertain first, with every slot whose turn comes
    at rate `random_share` given to a pair drawn at random instead (round-robin over `groups`, e.g. the
    prompts' categories, so that rare groups are covered). The random pairs keep the collected labels an
    unbiased sample for evaluation; the others are where a judgement teaches the model the most."""
    uncertainties = np.asarray(uncertainties, dtype=float)
    n = len(uncertainties)
    if not 0.0 <= random_share <= 1.0:
        raise ValueError(f"random_share must lie in [0, 1], got {random_share}")
    slots = np.arange(n)
    is_random_slot = np.floor((slots + 1) * random_share) > np.floor(slots * random_share)
    randoms = _random_draw(int(is_random_slot.sum()), rng, groups if groups is not None else np.zeros(n, int))
    chosen = np.zeros(n, dtype=bool)
    chosen[randoms] = True
    # Stable, so equal uncertainties keep id order (pairs are given here in id order).
    by_uncertainty = np.argsort(-uncertainties, kind="stable")
    order = np.empty(n, dtype=np.int64)
    order[is_random_slot] = randoms
    order[~is_random_slot] = by_uncertainty[~chosen[by_uncertainty]]
    return order


def _random_draw(count: int, rng: np.random.Generator, groups: np.ndarray) -> np.ndarray:
    """`count` distinct indices at random, taking one from each group in turn (groups in random order)."""
    members = [rng.permutation(np.flatnonzero(groups == group)) for group in rng.permutation(np.unique(groups))]
    drawn, depth = [], 0
    while len(drawn) < count:
        drawn.extend(int(m[depth]) for m in members if depth < len(m))
        depth += 1
    return np.asarray(drawn[:count], dtype=np.int64)
