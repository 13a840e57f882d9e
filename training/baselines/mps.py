"""An MPS checkpoint behind the baselines' interface: per dimension, so tables can hold MPS rows."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from training.mps import MPSScorer

from .base import ImageInput


class MPSBaseline:
    """``score`` answers for ``dimension``; ``score_dimensions`` scores every dimension asked for, with the
    vision tower once per image (MPSScorer shares it across dimensions). A dimension the checkpoint was not
    trained on is refused unless the scorer allows it (``allow_untrained_dimensions``)."""

    name = "mps"

    def __init__(self, scorer: MPSScorer, dimension: str = "overall") -> None:
        self.scorer = scorer
        self.dimension = scorer.checked_dimensions(dimension)[0]

    @classmethod
    def from_path(cls, path: str | os.PathLike, *, dimension: str = "overall", **options: Any) -> MPSBaseline:
        return cls(MPSScorer.from_checkpoint(path, **options), dimension)

    def score(self, prompt: str, images: Sequence[ImageInput]) -> list[float]:
        return self.score_dimensions(prompt, images, [self.dimension])[self.dimension]

    def score_dimensions(
        self, prompt: str, images: Sequence[ImageInput], dimensions: Sequence[str]
    ) -> dict[str, list[float]]:
        if not images:
            return {dimension: [] for dimension in self.scorer.checked_dimensions(dimensions)}
        return self.scorer.score(prompt, list(images), dimensions)["scores"]
