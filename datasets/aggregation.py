"""Turning one pair's judgements into labels: pure functions, no database.

A label is `[p_first, p_second]` in the pair's canonical order, per dimension.

- majority: the choice with the most votes wins: first -> [1, 0], second -> [0, 1], tie -> [0.5, 0.5];
  a draw for the most votes (first vs second, or either of them vs tie) is a tie too, because the
  annotators did not settle the question.
- soft: vote fractions, a tie vote counting half for each image:
  p_first = (first + tie / 2) / votes, p_second = 1 - p_first.
- An adjudication (a reviewer's answer) replaces the votes of its dimension whatever the mode.

Agreement of a pair: for each dimension, the share of the n*(n-1)/2 pairs of judgements that chose
the same answer; then the mean over the dimensions. One judgement agrees with itself (1.0).
"""

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from annotation.dimensions import DIMENSION_KEYS

FIRST, SECOND, TIE = "first", "second", "tie"
CHOICES = (FIRST, SECOND, TIE)
_ONE_HOT = {FIRST: (1.0, 0.0), SECOND: (0.0, 1.0), TIE: (0.5, 0.5)}


class LabelMode(StrEnum):
    MAJORITY = "majority"
    SOFT = "soft"


@dataclass(frozen=True)
class PairLabels:
    labels: dict[str, list[float]]
    annotator_count: int
    agreement: float


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


_LABELLERS = {LabelMode.MAJORITY: label_majority, LabelMode.SOFT: label_soft}


def pair_labels(
    *,
    votes: Mapping[str, Sequence[str]],
    mode: LabelMode = LabelMode.MAJORITY,
    adjudication: Mapping[str, str] | None = None,
) -> PairLabels:
    """Labels of every dimension from the votes (dimension -> choices, one per counted judgement)."""
    counts = {len(votes[key]) for key in DIMENSION_KEYS}
    if len(counts) != 1:
        raise ValueError("every dimension needs one vote per judgement")
    labeller = _LABELLERS[LabelMode(mode)]
    labels = {}
    for key in DIMENSION_KEYS:
        decided = (adjudication or {}).get(key)
        labels[key] = list(_ONE_HOT[decided] if decided else labeller(votes[key]))
    mean_agreement = sum(agreement(votes[key]) for key in DIMENSION_KEYS) / len(DIMENSION_KEYS)
    return PairLabels(labels=labels, annotator_count=counts.pop(), agreement=round(mean_agreement, 6))


def label_class(label: Sequence[float]) -> str:
    """first / second / tie for a label, so soft labels can be counted in the version's stats."""
    if label[0] > label[1]:
        return FIRST
    if label[0] < label[1]:
        return SECOND
    return TIE
