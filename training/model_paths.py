"""Where scoring and evaluation jobs may open checkpoints and weights: under ARTIFACTS_ROOT or one of
MODEL_ROOTS, nowhere else. Torch-free, so the web doors refuse a path before queueing anything.

A path outside the roots is refused with one message that says nothing about it (whether it exists,
is a file, is readable), so the scoring API cannot be used to probe the workers' file system.
"""

from __future__ import annotations

import os
from pathlib import Path

from django.conf import settings


class OutsideModelRoots(ValueError):
    """A checkpoint or weights path lies outside the configured roots (or is not a usable path at all)."""


def model_roots() -> list[Path]:
    return [Path(settings.ARTIFACTS_ROOT).resolve(), *(Path(root).resolve() for root in settings.MODEL_ROOTS)]


def model_path_allowed(path: str | os.PathLike, *, what: str = "checkpoint") -> Path:
    """``path`` resolved (symbolic links followed, so a link cannot lead out) when it lies under a root."""
    refusal = OutsideModelRoots(
        f"{what}: only paths under ARTIFACTS_ROOT or MODEL_ROOTS are read (the settings of the GPU workers)"
    )
    try:
        resolved = Path(path).resolve()
    except (OSError, ValueError, RuntimeError, TypeError):  # NUL, a name too long, a link loop, not a path
        raise refusal from None
    if not any(resolved.is_relative_to(root) for root in model_roots()):
        raise refusal
    return resolved
