"""Turning one pair's judgements into labels: pure functions, no database.

A label is `[p_first, p_second]` in the pair's canonical order, per dimension.

- majority: the choice with the most votes wins: first -> [1, 0], second -> [0, 1], tie -> [0.5, 0.5];
  a draw for the most votes (first vs second, or either of them vs tie) is a tie too, because the
  annotators did not settle the question.
- soft: vote fractions, a tie vote counting half for each image:
  p_first = (first + tie / 2) / votes, p_second = 1 - p_first.
- dawid-skene: the pair's Dawid-Skene posterior over first/tie/second (fitted on every counted judgement
  of every pair, datasets/services/dawid_skene.py), folded like a soft label: p_first = P(first) + P(tie) / 2,
  p_second = P(second) + P(tie) / 2. Its hard label (the version's label counts) is the posterior's argmax.
- An adjudication (a reviewer's answer) replaces the votes of its dimension whatever the mode.

Agreement of a pair: for each dimension, the share of the n*(n-1)/2 pairs of judgements that chose
the same answer; then the mean over the dimensions. One judgement agrees with itself (1.0).
"""

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from annotation.dimensions import DIMENSION_KEYS
from annotation.labeling.consensus import CLASSES

FIRST, SECOND, TIE = "first", "second", "tie"
CHOICES = (FIRST, SECOND, TIE)
_ONE_HOT = {FIRST: (1.0, 0.0), SECOND: (0.0, 1.0), TIE: (0.5, 0.5)}


class LabelMode(StrEnum):
    MAJORITY = "majority"
    SOFT = "soft"
    DAWID_SKENE = "dawid-skene"


@dataclass(frozen=True)
class PairLabels:
    labels: dict[str, list[float]]
    annotator_count: int
    agreement: float
    classes: dict[str, str]  # dimension -> the hard label (first / second / tie) the version's stats count


def _check(choices: Sequence[str]) -> None:
    if not choices:
        raise ValueError("no votes to aggregate")
    unknown = set(choices) - set(CHOICES)
    if unknown:
        raise ValueError(f"unknown choices {sorted(unknown)}; expected first, second or tie")


def label_majority(choices: Sequence[str]) -> tuple[float, float]:
    _check(choices)
    ranked = Counter(choices).most_common()
    if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
        return _ONE_HOT[TIE]
    return _ONE_HOT[ranked[0][0]]


def label_soft(choices: Sequence[str]) -> tuple[float, float]:
    _check(choices)
    counts = Counter(choices)
    p_first = (counts[FIRST] + counts[TIE] / 2) / len(choices)
    return p_first, 1.0 - p_first


def agreement(choices: Sequence[str]) -> float:
    """Share of judgement pairs that chose the same answer (1.0 for a single judgement)."""
    _check(choices)
    n = len(choices)
    if n == 1:
        return 1.0
    agreeing = sum(count * (count - 1) for count in Counter(choices).values())
    return agreeing / (n * (n - 1))


def label_posterior(posterior: Sequence[float]) -> tuple[float, float]:
    """[p_first, p_second] of a posterior over CLASSES, a tie's mass shared like a soft label's tie vote."""
    p = dict(zip(CLASSES, map(float, posterior), strict=True))
    return p[FIRST] + p[TIE] / 2, p[SECOND] + p[TIE] / 2


def posterior_class(posterior: Sequence[float]) -> str:
    """The most probable class (the first in CLASSES order on equal probabilities)."""
    return CLASSES[max(range(len(CLASSES)), key=lambda index: posterior[index])]


_LABELLERS = {LabelMode.MAJORITY: label_majority, LabelMode.SOFT: label_soft}


def pair_labels(
    *,
    votes: Mapping[str, Sequence[str]],
    mode: LabelMode = LabelMode.MAJORITY,
    adjudication: Mapping[str, str] | None = None,
    posteriors: Mapping[str, Sequence[float]] | None = None,
) -> PairLabels:
    """Labels of every dimension from the votes (dimension -> choices, one per counted judgement), or in
    dawid-skene mode from `posteriors` (dimension -> posterior over CLASSES; the votes give the counts)."""
    counts = {len(votes[key]) for key in DIMENSION_KEYS}
    if len(counts) != 1:
        raise ValueError("every dimension needs one vote per judgement")
    mode = LabelMode(mode)
    if (mode == LabelMode.DAWID_SKENE) != (posteriors is not None):
        raise ValueError("posteriors are given in dawid-skene mode, and only then")
    labels, classes = {}, {}
    for key in DIMENSION_KEYS:
        decided = (adjudication or {}).get(key)
        if decided:
            labels[key], classes[key] = list(_ONE_HOT[decided]), decided
        elif posteriors is not None:
            labels[key], classes[key] = list(label_posterior(posteriors[key])), posterior_class(posteriors[key])
        else:
            labels[key] = list(_LABELLERS[mode](votes[key]))
            classes[key] = label_class(labels[key])
    mean_agreement = sum(agreement(votes[key]) for key in DIMENSION_KEYS) / len(DIMENSION_KEYS)
    return PairLabels(labels=labels, annotator_count=counts.pop(), agreement=round(mean_agreement, 6), classes=classes)


def label_class(label: Sequence[float]) -> str:
    """first / second / tie for a label, so soft labels can be counted in the version's stats."""
    if label[0] > label[1]:
        return FIRST
    if label[0] < label[1]:
        return SECOND
    return TIE
