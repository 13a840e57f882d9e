"""Score images for a prompt on one or more dimensions; plain-data results for commands and tasks.

Work is shared across dimensions: the text tower runs once per distinct text (the prompt and each
condition), the vision tower once per image, and only the cross model runs per (image, dimension).
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from .checkpoints import load_checkpoint
from .config import DIMENSIONS, SCORING_THRESHOLD, dimension_condition
from .model import MPSModel, condition_keep_mask
from .preprocess import ImageInput, image_name, preprocess_images
from .tokenizer import tokenize

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """Autocast dtype (None = fp32). "auto": bf16 on CUDA where supported, else fp16; fp32 on CPU."""
    if precision == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of auto, {', '.join(PRECISIONS)}; got {precision!r}")
    if device.type != "cuda" and PRECISIONS[precision] is not None:
        raise ValueError("half-precision autocast is only used on CUDA; use fp32 on CPU")
    return PRECISIONS[precision]


class UntrainedDimensionError(ValueError):
    """A dimension the checkpoint was not trained on was asked for without allowing it."""


def normalize_dimensions(dimensions: str | Sequence[str]) -> list[str]:
    """Validated dimension identifiers, duplicates removed, order kept."""
    if isinstance(dimensions, str):
        dimensions = [dimensions]
    unique = list(dict.fromkeys(dimensions))
    if not unique:
        raise ValueError(f"give at least one dimension out of {', '.join(DIMENSIONS)}")
    for dimension in unique:
        dimension_condition(dimension)  # raises on an unknown identifier
    return unique


def check_trained(dimensions: Sequence[str], trained: Sequence[str], *, allow_untrained: bool) -> None:
    """Refuse dimensions outside ``trained`` unless ``allow_untrained``: the model would still answer (any
    condition string goes through the mask), but with a condition it never learnt to use."""
    untrained = [dimension for dimension in dimensions if dimension not in trained]
    if untrained and not allow_untrained:
        raise UntrainedDimensionError(
            f"this checkpoint was trained on {', '.join(trained)} only, not on {', '.join(untrained)}; its scores "
            "there are untested (allow them explicitly, e.g. --allow-untrained-dimensions, to score anyway)"
        )


def _sigmoid(x: float) -> float:
    # two branches so that a large score gap cannot overflow math.exp
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    return math.exp(x) / (1.0 + math.exp(x))


def preference_matrix(scores: Sequence[float]) -> list[list[float]]:
    """``P[i][j]``: probability image i is preferred to image j, the softmax over their two scores."""
    return [[_sigmoid(a - b) for b in scores] for a in scores]


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class MPSScorer:
    """An MPSModel on a device with its precision, batch size and mask threshold."""

    def __init__(
        self,
        model: MPSModel,
        *,
        device: str | torch.device | None = None,
        precision: str = "auto",
        batch_size: int = 16,
        threshold: float = SCORING_THRESHOLD,
        allow_untrained_dimensions: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.to(self.device).eval()
        self.autocast_dtype = resolve_precision(precision, self.device)
        self.batch_size = batch_size
        self.threshold = threshold
        self.allow_untrained_dimensions = allow_untrained_dimensions

    def checked_dimensions(self, dimensions: str | Sequence[str]) -> list[str]:
        """Validated dimensions, refused where the checkpoint was not trained unless allowed."""
        dimensions = normalize_dimensions(dimensions)
        trained = self.model.config.trained_dimensions
        check_trained(dimensions, trained, allow_untrained=self.allow_untrained_dimensions)
        return dimensions

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, **options: Any) -> MPSScorer:
        return cls(load_checkpoint(path), **options)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)

    @torch.no_grad()
    def encode_prompt(
        self, prompt: str, dimensions: Sequence[str]
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """(prompt tokens [1, L, D], pooled prompt [1, D], {dimension: keep mask [1, L]}).

        One text-tower run for the prompt and every condition."""
        conditions = [dimension_condition(dimension) for dimension in dimensions]
        texts = list(dict.fromkeys([prompt, *conditions]))
        config = self.model.config
        ids = tokenize(texts, config.context_length, pad_id=config.pad_id).to(self.device)
        with self._autocast():
            tokens, pooled = self.model.encode_text_tokens(ids)  # [T, L, D], [T, D]
        row = {text: index for index, text in enumerate(texts)}
        prompt_tokens = tokens[row[prompt]].unsqueeze(0)
        keeps = {
            dimension: condition_keep_mask(prompt_tokens, tokens[row[condition]].unsqueeze(0), self.threshold)
            for dimension, condition in zip(dimensions, conditions, strict=True)
        }
        return prompt_tokens, pooled[row[prompt]].unsqueeze(0), keeps

    @torch.no_grad()
    def score_pixels(
        self, prompt: str, pixel_values: torch.Tensor, dimensions: str | Sequence[str] = ("overall",)
    ) -> dict[str, torch.Tensor]:
        """{dimension: scores [N]} for preprocessed ``pixel_values`` [N, 3, H, W]."""
        dimensions = self.checked_dimensions(dimensions)
        encoded = self.encode_prompt(prompt, dimensions)
        batches = [self._score_batch(batch, *encoded) for batch in _chunks(pixel_values, self.batch_size)]
        return {dimension: torch.cat([batch[dimension] for batch in batches]) for dimension in dimensions}

    @torch.no_grad()
    def _score_batch(
        self,
        pixel_values: torch.Tensor,
        prompt_tokens: torch.Tensor,
        prompt_pooled: torch.Tensor,
        keeps: dict[str, torch.Tensor],
    ) -> dict[str, torch.Tensor]:
        count = pixel_values.shape[0]
        with self._autocast():
            image_tokens = self.model.encode_image_tokens(pixel_values.to(self.device))  # once per image
            return {
                dimension: self.model.score_features(
                    image_tokens,
                    prompt_tokens.expand(count, -1, -1),
                    prompt_pooled.expand(count, -1),
                    keep.expand(count, -1),
                )
                .float()
                .cpu()
                for dimension, keep in keeps.items()
            }

    def score(
        self, prompt: str, images: Sequence[ImageInput], dimensions: str | Sequence[str] = ("overall",)
    ) -> dict[str, Any]:
        """Scores and pairwise preference probabilities, as plain lists and dicts::

        {"prompt": str, "dimensions": [dim, ...], "images": [name, ...],
         "scores": {dim: [float per image]},
         "preferences": {dim: [[P(image i preferred to image j)]]}}
        """
        dimensions = self.checked_dimensions(dimensions)
        if not images:
            raise ValueError("give at least one image")
        encoded = self.encode_prompt(prompt, dimensions)
        per_dimension: dict[str, list[float]] = {dimension: [] for dimension in dimensions}
        for batch in _chunks(list(images), self.batch_size):  # decode images one batch at a time
            pixels = preprocess_images(batch, self.model.config.image_size)
            for dimension, values in self._score_batch(pixels, *encoded).items():
                per_dimension[dimension].extend(values.tolist())
        return {
            "prompt": prompt,
            "dimensions": dimensions,
            "images": [image_name(image, index) for index, image in enumerate(images)],
            "scores": per_dimension,
            "preferences": {name: preference_matrix(scores) for name, scores in per_dimension.items()},
        }


def score_images(
    checkpoint_path: str | os.PathLike,
    prompt: str,
    image_paths: Sequence[ImageInput],
    dimensions: str | Sequence[str] = ("overall",),
    *,
    device: str | None = None,
    precision: str = "auto",
    batch_size: int = 16,
    threshold: float = SCORING_THRESHOLD,
    allow_untrained_dimensions: bool = False,
) -> dict[str, Any]:
    """One call for a command: load ``checkpoint_path``, score, return plain data."""
    scorer = MPSScorer.from_checkpoint(
        checkpoint_path,
        device=device,
        precision=precision,
        batch_size=batch_size,
        threshold=threshold,
        allow_untrained_dimensions=allow_untrained_dimensions,
    )
    return scorer.score(prompt, image_paths, dimensions)


def format_scores_table(result: dict[str, Any], precision: int = 4) -> str:
    """A fixed-width text table of :meth:`MPSScorer.score`'s result: one row per image."""
    dimensions = result["dimensions"]
    name_width = max([len("image"), *(len(name) for name in result["images"])])
    column_width = max(precision + 6, *(len(dimension) for dimension in dimensions))
    header = "image".ljust(name_width) + "".join(f"  {dimension:>{column_width}}" for dimension in dimensions)
    rows = [header, "-" * len(header)]
    for index, name in enumerate(result["images"]):
        cells = "".join(
            f"  {result['scores'][dimension][index]:>{column_width}.{precision}f}" for dimension in dimensions
        )
        rows.append(name.ljust(name_width) + cells)
    return "\n".join(rows)
