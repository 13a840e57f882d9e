"""The interface every reward model offers to the evaluation: ``score(prompt, images) -> [float]``.

Torch-free: ``training.evaluation.run`` uses it without importing a model.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

ImageInput = str | os.PathLike | Any  # a path, or a PIL image


class BaselineError(ValueError):
    """A baseline cannot be loaded or used: a missing package, a wrong or mismatched weights file."""


@runtime_checkable
class Scorer(Protocol):
    """One score per image for a prompt, higher = better.

    Baselines are dimension-agnostic: the same score stands for every MHP dimension. A scorer that
    judges per dimension (MPS) also offers ``score_dimensions(prompt, images, dimensions)``
    returning ``{dimension: [float per image]}``, and ``score`` then answers for its own dimension.
    """

    name: str

    def score(self, prompt: str, images: Sequence[ImageInput]) -> list[float]: ...


def scores_per_dimension(
    scorer: Scorer, prompt: str, images: Sequence[ImageInput], dimensions: Sequence[str]
) -> dict[str, list[float]]:
    """``{dimension: scores}``: one call for a dimension-aware scorer, otherwise one ``score`` call whose
    scores are repeated for every dimension (each image is encoded once either way)."""
    per_dimension = getattr(scorer, "score_dimensions", None)
    if per_dimension is not None:
        return per_dimension(prompt, images, dimensions)
    scores = list(scorer.score(prompt, images))
    if len(scores) != len(images):
        raise BaselineError(f"{scorer.name} gave {len(scores)} scores for {len(images)} images")
    return dict.fromkeys(dimensions, scores)
