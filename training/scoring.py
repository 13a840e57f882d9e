"""Scoring images stored in the platform with an MPS checkpoint (runs on GPU workers)."""

from contextlib import ExitStack

from PIL import Image as PILImage

from annotation.models import Image


def stored_images_score(*, prompt: str, image_ids: list[int], dimensions: list[str], checkpoint: str) -> dict:
    from training.mps import score_images  # torch: only on the worker that runs this

    images = Image.objects.in_bulk(image_ids)
    missing = sorted(set(image_ids) - set(images))
    if missing:
        raise ValueError(f"unknown image ids: {missing}")
    with ExitStack() as stack:
        pictures = [_open(stack, images[image_id]) for image_id in image_ids]
        result = score_images(checkpoint, prompt, pictures, dimensions)
    result["images"] = image_ids
    return result


def _open(stack: ExitStack, image: Image) -> PILImage.Image:
    # Through the storage API, so S3-backed media works the same as local files.
    handle = stack.enter_context(image.file.open("rb"))
    picture = PILImage.open(handle)
    picture.load()
    return picture
