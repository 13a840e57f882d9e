"""Where an evaluation gets its labels: an imported EvaluationSet, or an export's `pairs.jsonl`.

A command names them NAME (an EvaluationSet's name) or ``pairs:/path/to/export_dir`` (or the `pairs.jsonl`
itself).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from datasets.models import BenchmarkKind, EvaluationSet
from training.evaluation import readers
from training.evaluation.metrics import ALL_SPLITS
from training.evaluation.protocols import LabelledPair, RankedItem
from training.evaluation.run import Benchmark

EXPORT_PREFIX = "pairs:"


def _ranking_label(where: str, ranking: list) -> tuple[float, float]:
    """A two-image ranking as a pair label: the better rank gets 1, equal ranks are a tie."""
    if len(ranking) != 2:
        raise ValueError(f"{where}: a pair set item has two images, this one has {len(ranking)}")
    first, second = ranking
    if first == second:
        return 0.5, 0.5
    return (1.0, 0.0) if first < second else (0.0, 1.0)


def evaluation_set_target(name: str) -> EvaluationSet:
    evaluation_set = EvaluationSet.objects.filter(name=name).first()
    if evaluation_set is None:
        raise ValueError(f"no evaluation set named {name!r}; import one with import_benchmark or use pairs:DIR")
    return evaluation_set


def evaluation_set_benchmark(
    evaluation_set: EvaluationSet, dimensions: Sequence[str], *, images: Path | None = None
) -> Benchmark:
    """The set's items, its images under `images` when given, else under its own image root."""
    root = images or Path(evaluation_set.image_root)
    benchmark = Benchmark(name=evaluation_set.name, kind=evaluation_set.kind, image_root=root)
    rows = evaluation_set.items.order_by("id").values_list("external_id", "prompt", "images", "ranking")
    if evaluation_set.kind in (BenchmarkKind.IMAGEREWARD, BenchmarkKind.HPDV2):
        benchmark.items = [RankedItem(prompt, images_, ranking) for _, prompt, images_, ranking in rows.iterator()]
        return benchmark
    pairs = [
        LabelledPair(images_[0], images_[1], _ranking_label(f"{evaluation_set.name}/{external_id}", ranking), prompt)
        for external_id, prompt, images_, ranking in rows.iterator()
    ]
    # One human label per pair: every dimension's condition is scored against it.
    benchmark.pairs = dict.fromkeys(dimensions, pairs)
    return benchmark


def export_benchmark(
    path: Path, dimensions: Sequence[str], *, name: str, images: Path, split: str = "test", tune_on_val: bool = True
) -> Benchmark:
    """The pairs of an export's split (`path`: the folder or its pairs.jsonl), plus its val split to tune
    the tie threshold on."""
    wanted = None if split == ALL_SPLITS else split
    pairs = readers.read_export_pairs(path, dimensions=dimensions, split=wanted)
    if not any(pairs.values()):
        raise ValueError(f"{readers.export_file(path)}: no pairs in split {split!r}")
    benchmark = Benchmark(name=name, kind=BenchmarkKind.PAIRS, image_root=images, pairs=pairs)
    if tune_on_val and split not in ("val", ALL_SPLITS):
        benchmark.val_pairs = readers.read_export_pairs(path, dimensions=dimensions, split="val")
    return benchmark
