"""The MHP benchmark of text-to-image models: score every generator's stored images on a common prompt
set per dimension with MPS, and rank the generators by their mean score.

The prompt set is the prompts that have images from every ranked generator (ordered by id, the first
``prompts`` of them), so that no generator is ranked on prompts the others did not draw. A generator's
score on a dimension is the mean over all its images on that set. Images are read through the storage
API (file system or S3 alike) and scored per prompt: the text tower once per prompt, the vision tower
once per image, the cross model per dimension.

``rank_table`` and ``format_ranking`` are pure; ``rank_generators`` reads the database and scores.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from PIL import Image as PILImage

from .base import Scorer, scores_per_dimension
from .tables import GENERATOR_RANKING as BENCHMARK_NAME

Progress = Callable[[int, int], None]


def competition_ranks(values: Sequence[float]) -> list[int]:
    """1 for the highest value; equal values share a rank and the next rank skips (1, 2, 2, 4)."""
    return [1 + sum(other > value for other in values) for value in values]


def rank_table(scores: Mapping[str, Mapping[str, Sequence[float]]], dimensions: Sequence[str]) -> list[dict[str, Any]]:
    """``{generator: {dimension: [image scores]}}`` -> one row per generator with its image count, mean and
    rank per dimension; rows ordered by rank on ``overall`` (else the first dimension), then name."""
    names = sorted(scores)
    rows = [
        {"name": name, "images": len(scores[name][dimensions[0]]),
         "mean": {dimension: statistics.fmean(scores[name][dimension]) for dimension in dimensions}, "rank": {}}
        for name in names
    ]  # fmt: skip
    for dimension in dimensions:
        for row, rank in zip(rows, competition_ranks([row["mean"][dimension] for row in rows]), strict=True):
            row["rank"][dimension] = rank
    order_by = "overall" if "overall" in dimensions else dimensions[0]
    return sorted(rows, key=lambda row: (row["rank"][order_by], row["name"]))


def format_ranking(metrics: Mapping[str, Any], precision: int = 4) -> str:
    """A fixed-width table: generators by dimension, ``mean (rank)`` in each cell."""
    dimensions = metrics["dimensions"]
    rows = metrics["generators"]
    width = max([len("generator"), *(len(row["name"]) for row in rows)])
    cell = max(precision + 10, *(len(dimension) for dimension in dimensions))
    header = "generator".ljust(width) + f"  {'images':>6}" + "".join(f"  {d:>{cell}}" for d in dimensions)
    lines = [header, "-" * len(header)]
    for row in rows:
        texts = [f"{row['mean'][d]:.{precision}f} ({row['rank'][d]})" for d in dimensions]
        cells = "".join(f"  {text:>{cell}}" for text in texts)
        lines.append(row["name"].ljust(width) + f"  {row['images']:>6}" + cells)
    return "\n".join(lines)


def ranking_prompt_set(*, generators: Sequence[str] | None = None, prompts: int | None = None):
    """(generator names, prompt ids): the generators asked for (default every one with images) and the
    prompts that have images from all of them, by id, the first ``prompts``."""
    from django.db.models import Count

    from annotation.models import Generator, Image

    if generators:
        found = set(Generator.objects.filter(name__in=generators).values_list("name", flat=True))
        unknown = [name for name in generators if name not in found]
        if unknown:
            raise ValueError(f"no generator named {', '.join(map(repr, unknown))}")
        names = sorted(set(generators))
    else:
        names = sorted(set(Image.objects.values_list("generator__name", flat=True).distinct()))
    if len(names) < 2:
        raise ValueError(f"ranking needs images from at least two generators, found {len(names)}")
    shared = (
        Image.objects.filter(generator__name__in=names)
        .values("prompt_id")
        .annotate(generators=Count("generator", distinct=True))
        .filter(generators=len(names))
        .order_by("prompt_id")
        .values_list("prompt_id", flat=True)
    )
    prompt_ids = list(shared[:prompts] if prompts else shared)
    if not prompt_ids:
        raise ValueError(f"no prompt has images from every one of {', '.join(names)}")
    return names, prompt_ids


def _open(image) -> PILImage.Image:
    """An Image row's file through the storage API, decoded to RGB."""
    with image.file.storage.open(image.file.name, "rb") as handle, PILImage.open(handle) as opened:
        return opened.convert("RGB")


def rank_generators(
    scorer: Scorer,
    dimensions: Sequence[str],
    *,
    generators: Sequence[str] | None = None,
    prompts: int | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Score every ranked generator's images on the common prompt set and rank them (plain data)."""
    from annotation.models import Image

    names, prompt_ids = ranking_prompt_set(generators=generators, prompts=prompts)
    scores: dict[str, dict[str, list[float]]] = {name: {d: [] for d in dimensions} for name in names}
    images_scored = 0
    for done, prompt_id in enumerate(prompt_ids, start=1):
        rows = list(
            Image.objects.filter(prompt_id=prompt_id, generator__name__in=names)
            .select_related("prompt", "generator")
            .order_by("id")
        )
        per_dimension = scores_per_dimension(scorer, rows[0].prompt.text, [_open(row) for row in rows], dimensions)
        for dimension in dimensions:
            for row, value in zip(rows, per_dimension[dimension], strict=True):
                scores[row.generator.name][dimension].append(value)
        images_scored += len(rows)
        if progress is not None:
            progress(done, len(prompt_ids))
    return {
        "benchmark": BENCHMARK_NAME,
        "dimensions": list(dimensions),
        "prompts": len(prompt_ids),
        "images": images_scored,
        "generators": rank_table(scores, dimensions),
    }
