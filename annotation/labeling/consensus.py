"""Labels from several judges: how sure a pair's label is given who judged it, whether the pair needs
another judgement, and the Dawid-Skene fit that estimates each judge's reliability.

Pure numbers, no database: the queue (adaptive redundancy), the reliability job, the freeze's
`--labels dawid-skene` and benchmarks/bench_active.py all call these same functions.

Classes and answers are indexed in CLASSES order, in the pair's canonical order (first = the image with
the smaller id), whatever side each judge saw it on. A judge is described per dimension by a confusion
matrix: `confusion[t, a]` is the probability of answer `a` when the true label is `t`.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

CLASSES: tuple[str, ...] = ("first", "tie", "second")
CLASS_INDEX: dict[str, int] = {name: index for index, name in enumerate(CLASSES)}
_K = len(CLASSES)

# A judge nobody has measured yet is assumed right this often (wrong answers split evenly).
UNKNOWN_ACCURACY = 0.7
# Pseudo-judgements per true class that pull a fitted confusion matrix toward the unknown judge's: a
# judge with three judgements is not declared perfect (or useless) on three answers.
_CONFUSION_PSEUDO_COUNTS = 2.0
_PRIOR_PSEUDO_COUNTS = 1.0


def confusion_from_accuracy(accuracy: float) -> np.ndarray:
    """A one-coin judge: right with probability `accuracy`, otherwise either other answer alike."""
    wrong = (1.0 - accuracy) / (_K - 1)
    return np.full((_K, _K), wrong) + np.eye(_K) * (accuracy - wrong)


def uniform_prior() -> np.ndarray:
    return np.full(_K, 1.0 / _K)


def label_posterior(answers: Sequence[int], confusions: Sequence[np.ndarray], prior: np.ndarray) -> np.ndarray:
    """P(true label) over CLASSES given each judge's answer and confusion matrix (judges independent)."""
    log_posterior = np.log(np.asarray(prior, dtype=float))
    for answer, confusion in zip(answers, confusions, strict=True):
        log_posterior = log_posterior + np.log(np.asarray(confusion, dtype=float)[:, answer])
    log_posterior -= log_posterior.max()
    posterior = np.exp(log_posterior)
    return posterior / posterior.sum()


@dataclass(frozen=True)
class RedundancyPolicy:
    """Adaptive redundancy: `minimum` judgements, then one more at a time up to `maximum` while some
    dimension's most likely label has a posterior under `settled_posterior`."""

    minimum: int = 2
    maximum: int = 5
    settled_posterior: float = 0.75

    def __post_init__(self):
        if not 1 <= self.minimum <= self.maximum:
            raise ValueError(f"need 1 <= minimum <= maximum, got {self.minimum} and {self.maximum}")


def label_settled(posteriors: Sequence[np.ndarray], policy: RedundancyPolicy) -> bool:
    """Whether every dimension's most likely label is sure enough (`posteriors`: one per dimension)."""
    return all(float(np.max(posterior)) >= policy.settled_posterior for posterior in posteriors)


def judgements_wanted(done: int, posteriors: Sequence[np.ndarray], policy: RedundancyPolicy) -> int:
    """How many judgements a pair with `done` judgements (and these per-dimension posteriors) asks for now."""
    if done < policy.minimum:
        return policy.minimum
    if done >= policy.maximum or label_settled(posteriors, policy):
        return done
    return done + 1


@dataclass(frozen=True)
class DawidSkeneFit:
    posteriors: np.ndarray  # (items, 3): P(true label) of each item
    confusions: np.ndarray  # (judges, 3, 3)
    prior: np.ndarray  # (3,)
    judgements: np.ndarray  # (judges,): how many answers each judge gave
    iterations: int
    converged: bool


def dawid_skene(
    items: np.ndarray,
    judges: np.ndarray,
    answers: np.ndarray,
    *,
    n_items: int | None = None,
    n_judges: int | None = None,
    confusions: np.ndarray | None = None,
    prior: np.ndarray | None = None,
    max_iterations: int = 100,
    tolerance: float = 1e-5,
) -> DawidSkeneFit:
    """Dawid and Skene's EM (1979) on one dimension: answer j is `answers[j]` of judge `judges[j]` on item
    `items[j]` (all integer arrays). Starts from vote shares, or from `confusions`/`prior` of an earlier
    fit (a warm start converges in a few iterations when few judgements are new)."""
    items, judges, answers = (np.asarray(a, dtype=np.int64) for a in (items, judges, answers))
    n_items = int(n_items if n_items is not None else (items.max() + 1 if items.size else 0))
    n_judges = int(n_judges if n_judges is not None else (judges.max() + 1 if judges.size else 0))
    counts = np.bincount(judges, minlength=n_judges).astype(float)
    if confusions is not None and prior is not None:
        posteriors = _expectation(items, judges, answers, n_items, np.asarray(confusions), np.asarray(prior))
    else:
        posteriors = _vote_shares(items, answers, n_items)
    converged, iterations = False, 0
    while iterations < max_iterations:
        iterations += 1
        confusions, prior = _maximisation(items, judges, answers, posteriors, n_judges)
        updated = _expectation(items, judges, answers, n_items, confusions, prior)
        change = float(np.abs(updated - posteriors).max()) if n_items else 0.0
        posteriors = updated
        if change < tolerance:
            converged = True
            break
    if confusions is None or prior is None:
        confusions, prior = _maximisation(items, judges, answers, posteriors, n_judges)
    return DawidSkeneFit(posteriors, confusions, prior, counts, iterations, converged)


def _vote_shares(items: np.ndarray, answers: np.ndarray, n_items: int) -> np.ndarray:
    shares = np.zeros((n_items, _K))
    np.add.at(shares, (items, answers), 1.0)
    totals = shares.sum(axis=1, keepdims=True)
    return np.where(totals > 0, shares / np.maximum(totals, 1.0), 1.0 / _K)


def _maximisation(items, judges, answers, posteriors, n_judges) -> tuple[np.ndarray, np.ndarray]:
    # (3, judgements): the weight of each true class behind each answer, one contiguous row per class.
    soft = np.ascontiguousarray(posteriors.T)[:, items]
    # One weighted bincount per true class over (judge, answer) cells: a pass per class, not per cell.
    cells = judges * _K + answers
    by_true = [np.bincount(cells, weights=soft[true], minlength=n_judges * _K) for true in range(_K)]
    counts = np.stack([column.reshape(n_judges, _K) for column in by_true], axis=1)  # (judges, true, answer)
    counts += _CONFUSION_PSEUDO_COUNTS * confusion_from_accuracy(UNKNOWN_ACCURACY)
    confusions = counts / counts.sum(axis=2, keepdims=True)
    judged = np.bincount(items, minlength=len(posteriors)) > 0
    prior = posteriors[judged].sum(axis=0) + _PRIOR_PSEUDO_COUNTS
    return confusions, prior / prior.sum()


def _expectation(items, judges, answers, n_items, confusions, prior) -> np.ndarray:
    # log P(answer | true class) per true class and (judge, answer) cell, gathered as (3, judgements) rows
    # and summed per item with a bincount per class (np.add.at is several times slower on a million rows).
    by_cell = np.log(confusions).transpose(1, 0, 2).reshape(_K, -1)
    terms = by_cell[:, judges * _K + answers]
    sums = [np.bincount(items, weights=terms[true], minlength=n_items) for true in range(_K)]
    log_posteriors = np.log(prior) + np.stack(sums, axis=1)
    log_posteriors -= log_posteriors.max(axis=1, keepdims=True)
    posteriors = np.exp(log_posteriors)
    return posteriors / posteriors.sum(axis=1, keepdims=True)


def accuracy(confusion: np.ndarray, prior: np.ndarray) -> float:
    """How often the judge's answer is the true label, with true labels drawn from `prior`."""
    return float(np.dot(prior, np.diag(confusion)))


def informativeness(confusion: np.ndarray, prior: np.ndarray) -> float:
    """How much a judge's answer depends on the truth: the prior-weighted mean total-variation distance
    between the answer distributions of two different true labels. 0 when the answer ignores the images
    (random, or always the same side), 1 when it always tells the truth."""
    confusion, prior = np.asarray(confusion, dtype=float), np.asarray(prior, dtype=float)
    total = weight = 0.0
    for t in range(_K):
        for u in range(t + 1, _K):
            pair_weight = prior[t] * prior[u]
            total += pair_weight * 0.5 * float(np.abs(confusion[t] - confusion[u]).sum())
            weight += pair_weight
    return total / weight if weight > 0 else 0.0


def looks_like_spammer(informativeness_by_dimension: Sequence[float], threshold: float) -> bool:
    """A judge whose answers, on average over the dimensions, barely depend on the truth."""
    return float(np.mean(informativeness_by_dimension)) < threshold
