"""Baseline reward models scored with the same evaluation protocols as MPS.

This package's ``__init__`` and ``base`` are torch-free; each implementation lives in its own module
and imports torch (GPU workers and commands only):

- ``clip_models``: ``ClipScore`` (open_clip CLIP score), ``HPSv2``, ``PickScore``;
- ``aesthetic``: ``LaionAesthetic`` (the LAION improved aesthetic predictor);
- ``image_reward``: ``ImageRewardBaseline`` (needs the ``image-reward`` package);
- ``mps``: ``MPSBaseline``, an MPS checkpoint behind the same interface, per dimension;
- ``registry``: ``load_method(kind, path, ...)`` for commands.
"""

from .base import BaselineError, Scorer, scores_per_dimension

__all__ = ["BaselineError", "Scorer", "scores_per_dimension"]
