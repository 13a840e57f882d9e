"""ImageReward (BLIP-based reward model) through its own package, when installed (``pip install image-reward``).

Loaded strictly: the package's own ``ImageReward.load`` calls ``load_state_dict(strict=False)``, so a
wrong or empty file silently gives a randomly initialised model. Here the file is read first (the
bounded reader of every weights file), must hold ImageReward's ``blip.*`` and ``mlp.*`` tensors, and then
fills the package's model class exactly: a missing, extra or misshapen tensor is refused, naming a few
(only ``position_ids``, a buffer that transformers versions save or not, may differ).

The package pins old ``timm``/``transformers`` and cannot share an environment with open_clip; where it
cannot be installed, score with it in its own environment and evaluate the score file with
``evaluate_scores`` (README, "Baselines"). Nothing of the model is downloaded: ``med_config.json`` must
lie beside the checkpoint (BLIP's BERT tokenizer must be in the Hugging Face cache; set
``HF_HUB_OFFLINE=1`` on machines without internet). Images go through the package's own BLIP transform.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .base import BaselineError, ImageInput
from .weights import SHOWN, read_tensors

CHECKPOINT_NAME = "ImageReward.pt"
MED_CONFIG_NAME = "med_config.json"
WHAT = "ImageReward"
_REQUIRED_PREFIXES = ("blip.visual_encoder.", "blip.text_encoder.", "mlp.layers.")
_MAY_DIFFER = re.compile(r"(^|\.)position_ids$")


def image_reward_module():
    """The ``ImageReward`` package, or a BaselineError saying how to install it."""
    try:
        return importlib.import_module("ImageReward")
    except ImportError as error:
        raise BaselineError(
            f"ImageReward is not installed ({error}): install image-reward (pip install image-reward) in an "
            "environment of its own, or score there and evaluate the score file with evaluate_scores"
        ) from error


def image_reward_state(checkpoint: Path) -> dict[str, Any]:
    """The checkpoint's tensors, refused unless it has every part of an ImageReward model."""
    state = read_tensors(checkpoint, WHAT)
    absent = [prefix for prefix in _REQUIRED_PREFIXES if not any(key.startswith(prefix) for key in state)]
    if absent:
        raise BaselineError(
            f"{WHAT}: {checkpoint} is not an ImageReward checkpoint: no {', '.join(p + '*' for p in absent)} "
            f"tensors (found e.g. {sorted(state)[:SHOWN]})"
        )
    return state


def load_strictly(model: Any, state: dict[str, Any]) -> None:
    """Fill ``model`` with ``state``, refusing any tensor missing, extra or of another shape."""
    expected = model.state_dict()
    missing = [key for key in expected if key not in state and not _MAY_DIFFER.search(key)]
    unexpected = [key for key in state if key not in expected and not _MAY_DIFFER.search(key)]
    mismatched = [
        f"{key} {tuple(state[key].shape)} vs {tuple(tensor.shape)}"
        for key, tensor in expected.items()
        if key in state and state[key].shape != tensor.shape
    ]
    if missing or unexpected or mismatched:
        problems = [
            f"{len(items)} {kind}, e.g. {items[:SHOWN]}"
            for kind, items in (("missing", missing), ("unknown", unexpected), ("of another shape", mismatched))
            if items
        ]
        raise BaselineError(f"{WHAT}: the checkpoint does not fit the model: tensors " + "; ".join(problems))
    model.load_state_dict({key: value for key, value in state.items() if key in expected}, strict=False)


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
        path = Path(path)
        checkpoint = path / CHECKPOINT_NAME if path.is_dir() else path
        if not checkpoint.is_file():
            raise BaselineError(f"{WHAT}: no checkpoint at {checkpoint}")
        med = Path(med_config) if med_config else checkpoint.parent / MED_CONFIG_NAME
        if not med.is_file():
            raise BaselineError(f"{WHAT}: no {MED_CONFIG_NAME} at {med} (the loader would download it)")
        state = image_reward_state(checkpoint)  # before the package: a wrong file is refused anywhere
        image_reward_module()
        model_class = importlib.import_module("ImageReward.ImageReward").ImageReward
        device = device or ("cuda" if _cuda_available() else "cpu")
        model = model_class(device=device, med_config=str(med))
        load_strictly(model, state)
        return cls(model.to(device).eval())

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
