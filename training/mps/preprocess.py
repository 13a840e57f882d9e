"""Images -> pixel tensors with open_clip's evaluation transform for the backbone.

Shortest side resized to the tower's input size (bicubic), centre crop, RGB, CLIP mean/std.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError

from .torch_compat import import_open_clip

ImageInput = str | os.PathLike | Image.Image


@lru_cache(maxsize=8)
def image_transform(image_size: int) -> Callable[[Image.Image], torch.Tensor]:
    """open_clip's eval transform (bicubic resize, centre crop, OpenAI CLIP mean/std)."""
    open_clip = import_open_clip()
    return open_clip.image_transform(
        image_size,
        is_train=False,
        interpolation="bicubic",
        resize_mode="shortest",
    )


def image_name(image: ImageInput, index: int) -> str:
    """A label for reports: the file name of a path, a positional name for an in-memory image."""
    if isinstance(image, Image.Image):
        filename = getattr(image, "filename", "")  # set when the image was opened from a file
        return Path(filename).name if filename else f"image_{index}"
    return Path(image).name


def load_image(image: ImageInput) -> Image.Image:
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    try:
        with Image.open(image) as opened:
            return opened.convert("RGB")
    except (OSError, UnidentifiedImageError) as exc:
        raise ValueError(f"cannot read image {image}: {exc}") from exc


def preprocess_images(
    images: Sequence[ImageInput],
    image_size: int,
    transform: Callable[[Image.Image], torch.Tensor] | None = None,
) -> torch.Tensor:
    """[N, 3, image_size, image_size] float32 pixel values, through ``transform`` (default: the eval
    transform above; baselines pass their own, see ``training.baselines.preprocessing``)."""
    transform = transform or image_transform(image_size)
    return torch.stack([transform(load_image(image)) for image in images])
