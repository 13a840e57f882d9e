"""Scoring images stored in the platform with an MPS checkpoint (runs on GPU workers).

A scoring job is a Celery result, not a row: it ends SUCCESS with the scores or FAILURE with a
`ScoringFailed` whose message a person can read (the API shows it), whatever went wrong.

The worker keeps the models it loaded between tasks, keyed by checkpoint path and modification time: a
ViT-H checkpoint takes seconds to read, and a scoring request takes milliseconds. A checkpoint written
again (a new modification time) is read again; the least recently used model leaves past
``SCORER_CACHE_SIZE``.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from PIL import Image as PILImage

from annotation.models import Image
from mhp.jobs import unexpected_error_message
from training.model_paths import OutsideModelRoots, model_path_allowed

logger = logging.getLogger(__name__)

# Two ViT-H models (about 4 GB each in fp32) fit on a GPU worker beside their activations.
SCORER_CACHE_SIZE = 2
_scorers: OrderedDict[tuple[str, int], Any] = OrderedDict()


class ScoringFailed(Exception):
    """The scoring job failed; the message says why (it is what the status endpoint shows)."""


def stored_images_score_job(*, prompt: str, image_ids: list[int], dimensions: list[str], checkpoint: str) -> dict:
    """`stored_images_score` for a Celery task: any error becomes a ScoringFailed with a readable message."""
    try:
        return stored_images_score(prompt=prompt, image_ids=image_ids, dimensions=dimensions, checkpoint=checkpoint)
    except ScoringFailed:
        raise
    except Exception as error:  # like mhp.jobs.job_run: the one place a scoring job catches everything
        logger.exception("scoring images %s with %s failed", image_ids, checkpoint)
        raise ScoringFailed(unexpected_error_message(error)) from None


def checkpoint_version(path: Path) -> int:
    """The latest modification time (ns) of the checkpoint's files: a directory's files (the project
    format's weights and config), or a file and the config beside it."""
    if path.is_dir():
        files = [child for child in path.iterdir() if child.is_file()]
    else:
        files = [path, *(sibling for sibling in (path.with_suffix(".json"),) if sibling.is_file())]
    return max((file.stat().st_mtime_ns for file in files), default=path.stat().st_mtime_ns)


def cached_scorer(checkpoint: Path):
    """The worker's MPSScorer of ``checkpoint``, loaded once per path and modification time."""
    from training.mps import MPSScorer  # torch: only on the worker that runs this

    if not checkpoint.exists():
        raise ValueError(f"no checkpoint at {checkpoint}")
    key = (str(checkpoint), checkpoint_version(checkpoint))
    if key in _scorers:
        _scorers.move_to_end(key)
        return _scorers[key]
    for stale in [cached for cached in _scorers if cached[0] == key[0]]:
        del _scorers[stale]  # an older version of the same file
    _scorers[key] = MPSScorer.from_checkpoint(checkpoint)
    while len(_scorers) > SCORER_CACHE_SIZE:
        _scorers.popitem(last=False)
    return _scorers[key]


def stored_images_score(*, prompt: str, image_ids: list[int], dimensions: list[str], checkpoint: str) -> dict:
    from training.mps.errors import CheckpointError

    try:  # again on the worker: a task can be queued by other doors
        checkpoint_path = model_path_allowed(checkpoint)
    except OutsideModelRoots as error:
        raise ScoringFailed(str(error)) from None
    images = Image.objects.in_bulk(image_ids)
    missing = sorted(set(image_ids) - set(images))
    if missing:
        raise ScoringFailed(f"unknown image ids: {missing}")
    try:
        scorer = cached_scorer(checkpoint_path)
    except (CheckpointError, ValueError) as error:
        raise ScoringFailed(f"cannot load the checkpoint: {error}") from None
    with ExitStack() as stack:
        pictures = [_open(stack, images[image_id]) for image_id in image_ids]
        result = scorer.score(prompt, pictures, dimensions)
    result["images"] = image_ids
    return result


def _open(stack: ExitStack, image: Image) -> PILImage.Image:
    # Through the storage API, so S3-backed media works the same as local files.
    try:
        handle = stack.enter_context(image.file.open("rb"))
        picture = PILImage.open(handle)
        picture.load()
    except (OSError, SyntaxError, ValueError) as error:
        raise ScoringFailed(f"image {image.pk} cannot be read ({type(error).__name__}: {error})") from None
    return picture
