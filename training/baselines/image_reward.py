"""ImageReward (BLIP-based reward model) through its own package, when installed (``pip install image-reward``).

The package is optional: without it, loading this baseline is refused with how to install it. Its
loader is called with a local checkpoint (``ImageReward.pt``) and the ``med_config.json`` beside it, so
nothing of the model is downloaded (BLIP's BERT tokenizer must be in the Hugging Face cache; set
``HF_HUB_OFFLINE=1`` on machines without internet).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .base import BaselineError, ImageInput

CHECKPOINT_NAME = "ImageReward.pt"
MED_CONFIG_NAME = "med_config.json"


def image_reward_module():
    """The ``ImageReward`` package, or a BaselineError saying how to install it."""
    try:
        return importlib.import_module("ImageReward")
    except ImportError as error:
        raise BaselineError(
            f"ImageReward is not installed ({error}): install image-reward (pip install image-reward) to use it"
        ) from error


class ImageRewardBaseline:
    name = "imagereward"

    def __init__(self, model: Any) -> None:
        self.model = model

    @classmethod
    def from_path(
        cls,
        path: str | os.PathLike,
        *,
        med_config: str | os.PathLike | None = None,
        device: str | None = None,
        **_: Any,
    ) -> ImageRewardBaseline:
        """``path``: ``ImageReward.pt`` or a directory holding it; ``med_config.json`` is looked up beside it."""
        module = image_reward_module()
        path = Path(path)
        checkpoint = path / CHECKPOINT_NAME if path.is_dir() else path
        if not checkpoint.is_file():
            raise BaselineError(f"ImageReward: no checkpoint at {checkpoint}")
        med = Path(med_config) if med_config else checkpoint.parent / MED_CONFIG_NAME
        if not med.is_file():
            raise BaselineError(f"ImageReward: no {MED_CONFIG_NAME} at {med} (the loader would download it)")
        device = device or ("cuda" if _cuda_available() else "cpu")
        return cls(module.load(str(checkpoint), device=device, med_config=str(med)))

    def score(self, prompt: str, images: Sequence[ImageInput]) -> list[float]:
        if not images:
            return []
        items = [str(image) if isinstance(image, str | os.PathLike) else image for image in images]
        rewards = self.model.score(prompt, items)
        # The package returns a float for a one-image list (it squeezes the batch dimension).
        return [float(rewards)] if isinstance(rewards, int | float) else [float(value) for value in rewards]


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()
