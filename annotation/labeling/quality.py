"""Agreement and quality arithmetic, free of the database (labeling/selectors.py feeds it).

A "unit" is one pair on one dimension; its ratings are given as counts per category, e.g.
(first, second, tie) = (2, 0, 1) for three judgements. Only units with at least two ratings say
anything about agreement; the functions below ignore the others.
"""

import statistics
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from annotation.dimensions import DIMENSION_KEYS

CATEGORIES = ("first", "second", "tie")


Rows = Iterable[Sequence[int]] | Mapping[tuple[int, ...], int]


def _pairable(rows: Rows) -> Counter:
    """Units as a Counter of count rows (a million pairs have only a handful of distinct rows)."""
    items = rows.items() if isinstance(rows, Mapping) else ((tuple(row), 1) for row in rows)
    pairable: Counter = Counter()
    for row, weight in items:
        if sum(row) >= 2:
            pairable[tuple(row)] += weight
    return pairable


def percent_agreement(rows: Rows) -> float | None:
    """Mean over units of the share of rater pairs that agree (Fleiss' P_i, for any number of raters)."""
    units = _pairable(rows)
    total = sum(units.values())
    if not total:
        return None
    agreeing = sum(w * sum(n * (n - 1) for n in row) / (sum(row) * (sum(row) - 1)) for row, w in units.items())
    return agreeing / total


def modal_rater_count(rows: Rows) -> int | None:
    """The most common number of ratings per unit (the larger one on a tie), among units with two or more."""
    counts: Counter = Counter()
    for row, weight in _pairable(rows).items():
        counts[sum(row)] += weight
    if not counts:
        return None
    return max(counts, key=lambda m: (counts[m], m))


def fleiss_kappa(rows: Rows) -> float | None:
    """Fleiss' kappa (1971) for units that all have the same number of ratings.

    Fleiss' formula assumes a fixed number of raters per unit, so units with another count are
    left out: callers pass the units with the modal count (see `modal_rater_count`). None when
    undefined (no units, or every rating in one category so chance agreement is 1).
    """
    units = _pairable(rows)
    if not units:
        return None
    raters = {sum(row) for row in units}
    if len(raters) > 1:
        raise ValueError("Fleiss' kappa needs the same number of ratings in every unit")
    m = raters.pop()
    n_units = sum(units.values())
    columns = [0] * len(next(iter(units)))
    for row, weight in units.items():
        for index, n in enumerate(row):
            columns[index] += weight * n
    p_e = sum((column / (m * n_units)) ** 2 for column in columns)
    p_bar = sum(w * sum(n * (n - 1) for n in row) for row, w in units.items()) / (n_units * m * (m - 1))
    if p_e == 1:
        return None
    return (p_bar - p_e) / (1 - p_e)


def krippendorff_alpha_counts(rows: Rows) -> float | None:
    """Krippendorff's alpha, nominal metric, from per-unit category counts (any number of raters per unit).

    alpha = 1 - D_o / D_e with the coincidence matrix o_ck = sum_u n_uc * n_uk / (m_u - 1) (c != k),
    o_cc = sum_u n_uc * (n_uc - 1) / (m_u - 1); n_c its margins, n the pairable values:
    D_o = sum_{c != k} o_ck / n, D_e = sum_{c != k} n_c * n_k / (n * (n - 1)).
    """
    units = _pairable(rows)
    if not units:
        return None
    margins = [0] * len(next(iter(units)))
    disagreement = 0.0  # sum of o_ck over c != k
    for row, weight in units.items():
        m = sum(row)
        disagreement += weight * (m * m - sum(n * n for n in row)) / (m - 1)
        for index, n in enumerate(row):
            margins[index] += weight * n
    n_total = sum(margins)
    expected = (n_total * n_total - sum(n * n for n in margins)) / (n_total - 1)
    if expected == 0:
        return None  # one category only: alpha is undefined
    return 1 - disagreement / expected


def krippendorff_alpha_nominal(units: Iterable[Sequence[Hashable | None]]) -> float | None:
    """Krippendorff's alpha, nominal, from each unit's values (None marks a missing value)."""
    units = [[value for value in unit if value is not None] for unit in units]
    categories = sorted({value for unit in units for value in unit}, key=str)
    rows = [[Counter(unit)[category] for category in categories] for unit in units]
    return krippendorff_alpha_counts(rows)


def majority_share(rows: Iterable[Sequence[int]]) -> float:
    """Share of the ratings that went to each unit's largest category (1.0 = everyone agreed)."""
    rows = list(rows)
    total = sum(sum(row) for row in rows)
    return sum(max(row) for row in rows) / total if total else 1.0


@dataclass
class DimensionFigures:
    units: int = 0
    percent_agreement: float | None = None
    fleiss_kappa: float | None = None
    fleiss_raters: int | None = None
    fleiss_units: int = 0
    krippendorff_alpha: float | None = None


def dimension_figures(rows: Rows) -> DimensionFigures:
    units = _pairable(rows)
    raters = modal_rater_count(units)
    modal = Counter({row: w for row, w in units.items() if sum(row) == raters})
    return DimensionFigures(
        units=sum(units.values()),
        percent_agreement=percent_agreement(units),
        fleiss_kappa=fleiss_kappa(modal),
        fleiss_raters=raters,
        fleiss_units=sum(modal.values()),
        krippendorff_alpha=krippendorff_alpha_counts(units),
    )


@dataclass
class _Ratio:
    hits: int = 0
    total: int = 0

    def add(self, hits: int, total: int) -> None:
        self.hits += hits
        self.total += total

    @property
    def value(self) -> float | None:
        return self.hits / self.total if self.total else None


@dataclass
class AnnotatorTally:
    judgements: int = 0
    durations: list[int] = field(default_factory=list)
    gold: dict[str, _Ratio] = field(default_factory=lambda: defaultdict(_Ratio))
    agreement: dict[str, _Ratio] = field(default_factory=lambda: defaultdict(_Ratio))
    ties: dict[str, _Ratio] = field(default_factory=lambda: defaultdict(_Ratio))

    def figures(self) -> dict:
        return {
            "judgements": self.judgements,
            "median_ms": statistics.median(self.durations) if self.durations else None,
            "dimensions": {
                key: {
                    "gold_accuracy": self.gold[key].value,
                    "gold_judged": self.gold[key].total,
                    "agreement": self.agreement[key].value,
                    "agreement_comparisons": self.agreement[key].total,
                    "tie_rate": self.ties[key].value,
                }
                for key in DIMENSION_KEYS
            },
        }


@dataclass(frozen=True)
class Rating:
    """One judgement as the tally needs it."""

    annotator: Hashable
    choices: dict[str, str]
    duration_ms: int


class QualityTally:
    """Fed one pair at a time (all its judgements), in one pass over the judgements table."""

    def __init__(self) -> None:
        self.annotators: dict[Hashable, AnnotatorTally] = defaultdict(AnnotatorTally)
        self.units: dict[str, Counter] = {key: Counter() for key in DIMENSION_KEYS}

    def add_pair(self, ratings: Sequence[Rating], gold_answers: dict[str, str] | None = None) -> None:
        for key in DIMENSION_KEYS:
            counts = Counter(rating.choices[key] for rating in ratings)
            if len(ratings) >= 2:
                self.units[key][tuple(counts[category] for category in CATEGORIES)] += 1
            for rating in ratings:
                self._rate(rating, key, counts, len(ratings), (gold_answers or {}).get(key))
        for rating in ratings:
            tally = self.annotators[rating.annotator]
            tally.judgements += 1
            tally.durations.append(rating.duration_ms)

    def _rate(self, rating: Rating, key: str, counts: Counter, raters: int, gold: str | None) -> None:
        tally = self.annotators[rating.annotator]
        choice = rating.choices[key]
        # Each other judgement of the pair is one (this annotator, other annotator) comparison.
        tally.agreement[key].add(counts[choice] - 1, raters - 1)
        tally.ties[key].add(choice == "tie", 1)
        if gold:
            tally.gold[key].add(choice == gold, 1)

    def figures(self) -> dict:
        return {
            "dimensions": {key: dimension_figures(rows).__dict__ for key, rows in self.units.items()},
            "annotators": {annotator: tally.figures() for annotator, tally in self.annotators.items()},
        }
