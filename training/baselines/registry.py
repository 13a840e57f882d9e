"""Method names (as in ``--method NAME=PATH`` and ``EvaluationRun.method``) -> loaded scorers.

Torch-free at import (the results page reads ``LABELS``); each loader imports its model module when called.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .base import BaselineError, Scorer

METHODS = ("clip", "aesthetic", "hpsv2", "pickscore", "imagereward", "mps")
LABELS = {
    "clip": "CLIP score",
    "aesthetic": "Aesthetic score",
    "hpsv2": "HPS v2",
    "pickscore": "PickScore",
    "imagereward": "ImageReward",
    "mps": "MPS",
}


def load_method(
    method: str,
    path: str | os.PathLike,
    *,
    architecture: str | dict | None = None,
    aesthetic_clip: str | os.PathLike | None = None,
    aesthetic_architecture: str | dict | None = None,
    device: str | None = None,
    batch_size: int = 16,
    allow_untrained_dimensions: bool = False,
) -> Scorer:
    """Load one method from local weights. ``architecture`` (an open_clip name, JSON or dict) applies to
    the CLIP-H methods (clip, hpsv2, pickscore); the aesthetic predictor needs its CLIP's weights
    (``aesthetic_clip``) and takes ``aesthetic_architecture``; ``allow_untrained_dimensions`` lets MPS score
    dimensions its checkpoint was not trained on."""
    if method not in METHODS:
        raise BaselineError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
    if not Path(path).exists():
        raise BaselineError(f"{method}: nothing at {path}")
    options: dict[str, Any] = {"device": device, "batch_size": batch_size}
    if method == "clip":
        from .clip_models import ClipScore

        return ClipScore.from_path(path, architecture, **options)
    if method == "hpsv2":
        from .clip_models import HPSv2

        return HPSv2.from_path(path, architecture, **options)
    if method == "pickscore":
        from .clip_models import PickScore

        return PickScore.from_path(path, architecture, **options)
    if method == "aesthetic":
        from .aesthetic import LaionAesthetic

        if aesthetic_clip is None:
            raise BaselineError("aesthetic: give the CLIP ViT-L/14 weights it runs on (--aesthetic-clip PATH)")
        return LaionAesthetic.from_path(path, aesthetic_clip, aesthetic_architecture, **options)
    if method == "imagereward":
        from .image_reward import ImageRewardBaseline

        return ImageRewardBaseline.from_path(path, device=device)
    from .mps import MPSBaseline

    return MPSBaseline.from_path(
        path, device=device, batch_size=batch_size, allow_untrained_dimensions=allow_untrained_dimensions
    )
