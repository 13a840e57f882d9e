"""Scoring images stored in the platform with an MPS checkpoint (runs on GPU workers).

A scoring job is a Celery result, not a row: it ends SUCCESS with the scores or FAILURE with a
`ScoringFailed` whose message a person can read (the API shows it), whatever went wrong.
"""

import logging
from contextlib import ExitStack

from PIL import Image as PILImage

from annotation.models import Image
from mhp.jobs import unexpected_error_message

logger = logging.getLogger(__name__)


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


def stored_images_score(*, prompt: str, image_ids: list[int], dimensions: list[str], checkpoint: str) -> dict:
    from training.mps import score_images  # torch: only on the worker that runs this
    from training.mps.errors import CheckpointError

    images = Image.objects.in_bulk(image_ids)
    missing = sorted(set(image_ids) - set(images))
    if missing:
        raise ScoringFailed(f"unknown image ids: {missing}")
    with ExitStack() as stack:
        pictures = [_open(stack, images[image_id]) for image_id in image_ids]
        try:
            result = score_images(checkpoint, prompt, pictures, dimensions)
        except CheckpointError as error:
            raise ScoringFailed(f"cannot load the checkpoint: {error}") from None
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
