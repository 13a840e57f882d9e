"""Storing generated images: decoded and checked with Pillow before anything is written."""

import hashlib
import io
import struct
import zlib
from dataclasses import dataclass

from django.conf import settings
from django.core.files.base import ContentFile
from PIL import Image as PILImage
from PIL import UnidentifiedImageError

from annotation.models import Generator, Image, Prompt
from annotation.unique import get_or_create_unique

ACCEPTED_FORMATS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}
THUMBNAIL_SIZE = (384, 384)


class ImageRejected(ValueError):
    """The bytes cannot be stored as an image; the message says why."""


@dataclass(frozen=True)
class DecodedImage:
    format: str
    width: int
    height: int
    thumbnail: bytes


def image_decode(data: bytes) -> DecodedImage:
    """Fully decode the bytes (catching truncation), enforce format and pixel limit, make a thumbnail."""
    try:
        with PILImage.open(io.BytesIO(data)) as probe:
            image_format, (width, height) = probe.format, probe.size
            if image_format not in ACCEPTED_FORMATS:
                raise ImageRejected(f"format {image_format} is not one of png, jpeg, webp")
            if width * height > settings.IMAGE_MAX_PIXELS:
                raise ImageRejected(f"{width}x{height} exceeds the limit of {settings.IMAGE_MAX_PIXELS} pixels")
            probe.load()
            thumbnail = _thumbnail_bytes(probe)
    except UnidentifiedImageError:
        raise ImageRejected("not an image (unrecognised data)") from None
    except PILImage.DecompressionBombError as error:
        raise ImageRejected(f"decompression bomb: {error}") from None
    except (OSError, SyntaxError, EOFError, struct.error, zlib.error) as error:
        # Pillow reports truncated or corrupt data as any of these while decoding.
        raise ImageRejected(f"corrupt or truncated image: {error}") from None
    except ValueError as error:
        # A chunk Pillow refuses to read (a PNG text chunk that inflates past its limit...).
        raise ImageRejected(f"image metadata refused: {error}") from None
    return DecodedImage(image_format, width, height, thumbnail)


def _thumbnail_bytes(image: PILImage.Image) -> bytes:
    thumb = image.convert("RGB")
    thumb.thumbnail(THUMBNAIL_SIZE)
    buffer = io.BytesIO()
    thumb.save(buffer, "WEBP", quality=80)
    return buffer.getvalue()


def image_store(
    *,
    prompt: Prompt,
    generator: Generator,
    data: bytes,
    seed: int | None = None,
    generation_settings: dict | None = None,
    source_path: str = "",
) -> tuple[Image, bool]:
    """Store image bytes for a prompt; an image whose sha256 is known is returned, not stored twice.

    The files are written before the row; when the row is not saved (another import won the race, or the
    database refused it) they are deleted again, so no file is left on disk without its row."""
    digest = hashlib.sha256(data).hexdigest()
    built: list[Image] = []

    def build() -> Image:
        decoded = image_decode(data)
        image = Image(
            prompt=prompt,
            generator=generator,
            sha256=digest,
            width=decoded.width,
            height=decoded.height,
            seed=seed,
            settings=generation_settings or {},
            source_path=source_path,
        )
        image.file.save(f"{digest}.{ACCEPTED_FORMATS[decoded.format]}", ContentFile(data), save=False)
        built.append(image)
        image.thumbnail.save(f"{digest}.webp", ContentFile(decoded.thumbnail), save=False)
        return image

    try:
        image, created = get_or_create_unique(Image.objects.filter(sha256=digest), build)
    except BaseException:
        _files_delete(built)
        raise
    if not created:
        _files_delete(built)
    return image, created


def _files_delete(images: list[Image]) -> None:
    for image in images:
        for stored in (image.file, image.thumbnail):
            if stored.name:
                stored.storage.delete(stored.name)
