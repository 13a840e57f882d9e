"""Where the trainer reads an export's images: a local folder, or Django's default storage (S3 works).

An export names images relative to the storage they were uploaded to (`images/ab/cd.png`). A run started from
a dataset version reads them through `django.core.files.storage.default_storage`, so a worker needs no copy of
the media folder; `python -m training.trainer.main` on a plain machine gives a folder instead.
"""

import io
import os
from pathlib import Path
from typing import BinaryIO

# The `image_root` value that means "Django's default storage" (needs DJANGO_SETTINGS_MODULE).
STORAGE = "storage"


class ImageFiles:
    """Opens images by their export name. Holds only a string, so DataLoader workers share it cheaply; the
    storage object is looked up in each process on first use (storage clients are not fork-safe)."""

    def __init__(self, root: str) -> None:
        if not root:
            raise ValueError(f"give an image root: a folder, or {STORAGE!r} for Django's default storage")
        self.root = root
        self._storage = None

    def open(self, name: str) -> BinaryIO:
        if self.root != STORAGE:
            return (Path(self.root) / name).open("rb")
        if self._storage is None:
            self._storage = _default_storage()
        with self._storage.open(name, "rb") as handle:
            return io.BytesIO(handle.read())

    def __getstate__(self) -> dict:  # spawn-started workers get the root, never a live client
        return {"root": self.root, "_storage": None}


def _default_storage():
    from django.conf import settings

    if not settings.configured and "DJANGO_SETTINGS_MODULE" not in os.environ:
        raise ValueError(f"image_root {STORAGE!r} needs Django settings (DJANGO_SETTINGS_MODULE is not set)")
    from django.core.files.storage import default_storage

    return default_storage
