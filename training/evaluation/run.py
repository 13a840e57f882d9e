"""Scoring a benchmark's images with a reward model (MPS or a baseline), then its protocol per dimension.

torch is imported inside the functions that need it: importing this module costs nothing, so the
command's argument parsing and the protocols stay usable where torch is absent. No Django here:
`sources` turns database rows or export files into a Benchmark, `jobs` records the job row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from training.baselines.base import Scorer, scores_per_dimension
from training.evaluation.metrics import RANKING_PROTOCOLS, pair_metrics, ranking_metrics
from training.evaluation.protocols import LabelledPair, RankedItem

MISSING_SHOWN = 5
Progress = Callable[[int, int], None]  # (prompts done, prompts in all)


@dataclass
class Benchmark:
    """What one evaluation needs: the protocol, where images live, and the labels.

    Ranking benchmarks (imagereward, hpdv2) have one ranking per item, the same for every dimension;
    pair sets have one label per pair and dimension (``pairs[dimension]``); ``val_pairs`` tunes the
    tie threshold of pair sets when none is given."""

    name: str
    kind: str
    image_root: Path
    items: list[RankedItem] = field(default_factory=list)
    pairs: dict[str, list[LabelledPair]] = field(default_factory=dict)
    val_pairs: dict[str, list[LabelledPair]] = field(default_factory=dict)

    @property
    def is_ranking(self) -> bool:
        return self.kind in RANKING_PROTOCOLS


def _units(benchmark: Benchmark) -> Iterable[tuple[str, Sequence[str]]]:
    """(prompt, image keys) of everything to score: items, or the pairs of every dimension and validation."""
    if benchmark.is_ranking:
        yield from ((item.prompt, item.images) for item in benchmark.items)
        return
    for pairs in (*benchmark.pairs.values(), *benchmark.val_pairs.values()):
        yield from ((pair.prompt, (pair.image_a, pair.image_b)) for pair in pairs)


def prompt_groups(benchmark: Benchmark) -> dict[str, list[str]]:
    """{prompt: its distinct image keys}, so each image is scored once, batched with its prompt's others.

    A score belongs to an (image, prompt) couple, while the protocols key scores by image alone: an
    image listed under two prompts would make that ambiguous, so it is refused."""
    groups: dict[str, dict[str, None]] = {}
    prompt_of: dict[str, str] = {}
    for prompt, keys in _units(benchmark):
        for key in keys:
            if prompt_of.setdefault(key, prompt) != prompt:
                raise ValueError(f"image {key} is listed under two prompts: {prompt_of[key]!r} and {prompt!r}")
            groups.setdefault(prompt, {})[key] = None
    return {prompt: list(keys) for prompt, keys in groups.items()}


def check_images(root: Path, groups: dict[str, list[str]]) -> None:
    """Fail before loading the model when image files are missing, naming a few."""
    missing = [key for keys in groups.values() for key in keys if not (root / key).is_file()]
    if missing:
        shown = ", ".join(missing[:MISSING_SHOWN])
        raise ValueError(f"{len(missing)} images are missing under {root}: {shown}")


def score_groups(
    scorer: Scorer,
    groups: dict[str, list[str]],
    root: Path,
    dimensions: Sequence[str],
    progress: Progress | None = None,
) -> dict[str, dict[str, float]]:
    """{dimension: {image key: score}} with any scorer of `training.baselines` (MPS through `MPSBaseline`):
    per prompt one call, each image encoded once; a dimension-agnostic baseline's scores stand for every
    dimension, MPS scores each (text tower once, vision tower once per image, cross model per dimension)."""
    scores: dict[str, dict[str, float]] = {dimension: {} for dimension in dimensions}
    for done, (prompt, keys) in enumerate(groups.items(), start=1):
        result = scores_per_dimension(scorer, prompt, [root / key for key in keys], dimensions)
        for dimension in dimensions:
            scores[dimension].update(zip(keys, result[dimension], strict=True))
        if progress is not None:
            progress(done, len(groups))
    return scores


def benchmark_metrics(
    benchmark: Benchmark, scores: dict[str, dict[str, float]], tie_threshold: float | None = None
) -> dict[str, dict]:
    """{dimension: metrics} from the scores of every dimension."""
    if benchmark.is_ranking:
        return {dimension: ranking_metrics(benchmark.kind, benchmark.items, s) for dimension, s in scores.items()}
    return {
        dimension: pair_metrics(
            benchmark.pairs[dimension],
            dimension_scores,
            tie_threshold=tie_threshold,
            val_pairs=benchmark.val_pairs.get(dimension, ()),
        )
        for dimension, dimension_scores in scores.items()
    }


def evaluate_scorer(
    benchmark: Benchmark,
    scorer: Scorer,
    dimensions: Sequence[str],
    *,
    tie_threshold: float | None = None,
    progress: Progress | None = None,
) -> dict:
    """Score the benchmark with ``scorer`` and apply its protocol per dimension (plain data)."""
    groups = prompt_groups(benchmark)
    if not groups:
        raise ValueError(f"benchmark {benchmark.name} has nothing to evaluate")
    check_images(benchmark.image_root, groups)
    scores = score_groups(scorer, groups, benchmark.image_root, dimensions, progress)
    return {
        "benchmark": benchmark.name,
        "kind": benchmark.kind,
        "images": sum(len(keys) for keys in groups.values()),
        "prompts": len(groups),
        "dimensions": benchmark_metrics(benchmark, scores, tie_threshold),
    }
