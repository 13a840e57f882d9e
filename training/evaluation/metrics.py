"""One benchmark's metrics from labels and scores: which protocol applies, and the tie threshold's origin.

Shared by `evaluate_scores` (scores from a file) and `evaluate_mps` (scores from a checkpoint), so
both report the same keys: accuracy, pairs, prompts (HPD v2) and, for pair sets, the tie-aware
accuracy with the threshold used and where it came from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from training.evaluation import readers
from training.evaluation.protocols import (
    LabelledPair,
    MissingScoresError,
    RankedItem,
    check_scores,
    hpdv2_accuracy,
    imagereward_accuracy,
    pair_accuracy,
    pair_accuracy_tie_aware,
    pickscore_tie_aware_accuracy,
    pickscore_tune_threshold,
    tune_tie_threshold,
)

RANKING_PROTOCOLS = {"imagereward": imagereward_accuracy, "hpdv2": hpdv2_accuracy}
PAIR_BENCHMARKS = ("pickapic", "pairs")
BENCHMARKS = (*RANKING_PROTOCOLS, *PAIR_BENCHMARKS)
ALL_SPLITS = "all"


def ranking_metrics(benchmark: str, items: Sequence[RankedItem], scores: Mapping[str, float]) -> dict:
    return RANKING_PROTOCOLS[benchmark](items, scores).as_dict()


def tie_threshold_checked(value: float | str | None) -> float | None:
    """A given tie threshold as a float: a gap between two probabilities, so in 0-1. None stays None."""
    if value is None:
        return None
    threshold = float(value)
    if not 0 <= threshold <= 1:
        raise ValueError(f"the tie threshold is a probability gap in 0-1, got {threshold}")
    return threshold


def _tie_threshold(
    tie_threshold: float | None, val_pairs: Sequence[LabelledPair], val_scores: Mapping[str, float]
) -> tuple[float | None, str]:
    if tie_threshold is not None:
        return tie_threshold, "given"
    if not val_pairs:
        return None, "no --tie-threshold and no validation pairs"
    try:
        check_scores((key for pair in val_pairs for key in (pair.image_a, pair.image_b)), val_scores)
    except MissingScoresError as error:
        return None, f"validation pairs not scored ({error})"
    return tune_tie_threshold(val_pairs, val_scores), f"tuned on {len(val_pairs)} validation pairs"


def pair_metrics(
    pairs: Sequence[LabelledPair],
    scores: Mapping[str, float],
    *,
    tie_threshold: float | None = None,
    val_pairs: Sequence[LabelledPair] = (),
    val_scores: Mapping[str, float] | None = None,
) -> dict:
    """Accuracy on non-tie labels, and tie-aware accuracy when a threshold is given or can be tuned."""
    metrics = pair_accuracy(pairs, scores).as_dict()
    threshold, source = _tie_threshold(tie_threshold, val_pairs, val_scores if val_scores is not None else scores)
    metrics.update(tie_threshold=threshold, tie_threshold_source=source, tie_aware_accuracy=None, tie_aware_pairs=0)
    if threshold is not None:
        tie_aware = pair_accuracy_tie_aware(pairs, scores, threshold)
        metrics.update(tie_aware_accuracy=tie_aware.accuracy, tie_aware_pairs=tie_aware.pairs)
    val_scores = val_scores if val_scores is not None else scores
    return metrics | pickscore_metrics(pairs, scores, tie_threshold, val_pairs, val_scores)


def pickscore_metrics(
    pairs: Sequence[LabelledPair],
    scores: Mapping[str, float],
    tie_threshold: float | None,
    val_pairs: Sequence[LabelledPair],
    val_scores: Mapping[str, float],
) -> dict:
    """PickScore's own tie-aware accuracy (``pickscore_*`` keys): the threshold given, else the first best
    of its grid on the validation pairs, else none."""
    threshold, source = tie_threshold, "given"
    if threshold is None and val_pairs:
        try:
            threshold = pickscore_tune_threshold(val_pairs, val_scores)
            source = f"PickScore's grid, tuned on {len(val_pairs)} validation pairs"
        except MissingScoresError as error:
            source = f"validation pairs not scored ({error})"
    elif threshold is None:
        source = "no --tie-threshold and no validation pairs"
    accuracy = None if threshold is None else pickscore_tie_aware_accuracy(pairs, scores, threshold).accuracy
    return {
        "pickscore_tie_aware_accuracy": accuracy,
        "pickscore_tie_threshold": threshold,
        "pickscore_tie_threshold_source": source,
    }


def _export_split(path: Path, dimension: str, split: str) -> list[LabelledPair]:
    return readers.read_export_pairs(path, dimensions=[dimension], split=None if split == ALL_SPLITS else split)[
        dimension
    ]


def _validation_pairs(benchmark: str, annotations: Path, validation: Path | None, dimension: str, split: str):
    if benchmark == "pickapic":
        return readers.read_pickapic(validation) if validation else []
    if validation is None and split in ("val", ALL_SPLITS):
        return []  # tuning on the pairs being measured would flatter the tie-aware accuracy
    return _export_split(validation or annotations, dimension, "val")


def score_file_metrics(
    *,
    benchmark: str,
    annotations: Path,
    scores: Path,
    dimension: str = "overall",
    split: str = "test",
    tie_threshold: float | None = None,
    validation: Path | None = None,
) -> dict:
    """Metrics of precomputed scores (image key -> score) on one benchmark's annotation file."""
    if benchmark not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {benchmark!r}; choose one of {', '.join(BENCHMARKS)}")
    tie_threshold = tie_threshold_checked(tie_threshold)
    score_map = readers.read_scores(scores)
    header = {"benchmark": benchmark, "dimension": dimension}
    if benchmark == "imagereward":
        return header | ranking_metrics(benchmark, readers.read_imagereward(annotations), score_map)
    if benchmark == "hpdv2":
        return header | ranking_metrics(benchmark, readers.read_hpdv2(annotations), score_map)
    if benchmark == "pickapic":
        pairs = readers.read_pickapic(annotations)
    else:
        pairs = _export_split(annotations, dimension, split)
        header["split"] = split
    if not pairs:
        raise ValueError(f"{annotations}: no pairs to evaluate" + (f" in split {split!r}" if "split" in header else ""))
    val_pairs = _validation_pairs(benchmark, annotations, validation, dimension, split)
    return header | pair_metrics(pairs, score_map, tie_threshold=tie_threshold, val_pairs=val_pairs)


def format_metrics_table(rows: Mapping[str, Mapping]) -> str:
    """A fixed-width table: one row per dimension (or benchmark), accuracy, pairs, tie-aware accuracy."""
    header = f"{'dimension':<12}  {'accuracy':>8}  {'pairs':>8}  {'prompts':>7}  {'tie-aware':>9}  {'threshold':>9}"
    lines = [header, "-" * len(header)]
    for name, metrics in rows.items():
        prompts = metrics.get("prompts")
        tie_aware, threshold = metrics.get("tie_aware_accuracy"), metrics.get("tie_threshold")
        lines.append(
            f"{name:<12}  {metrics['accuracy']:>8.4f}  {metrics['pairs']:>8}  "
            f"{'-' if prompts is None else prompts:>7}  "
            f"{'-' if tie_aware is None else f'{tie_aware:.4f}':>9}  "
            f"{'-' if threshold is None else f'{threshold:.4f}':>9}"
        )
    return "\n".join(lines)
