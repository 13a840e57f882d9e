"""Where an image import reads from: a folder on disk (`import_images`) or an uploaded zip (the admin).

A source opens its manifest as a byte stream and hands out one image's bytes at a time, never more
than MAX_IMAGE_FILE_BYTES of them: a member or file that is larger (a zip member of 1.5 GB of zeros)
is refused on its line without being read.
"""

import posixpath
import zipfile
import zlib
from contextlib import AbstractContextManager
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Protocol

# Far above any generated image (a 64-megapixel PNG of noise is about 190 MB; real outputs are a few MB):
# the bound on what one line may make the worker hold in memory.
MAX_IMAGE_FILE_BYTES = 256 * 1024**2


class ManifestLineError(ValueError):
    """A manifest line is unusable; the message says why."""


class ImageSource(Protocol):
    def manifest(self) -> AbstractContextManager[BinaryIO]: ...

    def image_bytes(self, relative: str) -> bytes: ...


def _too_large(size: int) -> ManifestLineError:
    return ManifestLineError(f"the file is {size:,} bytes; at most {MAX_IMAGE_FILE_BYTES:,} are accepted")


class FolderSource:
    def __init__(self, manifest: Path, root: Path):
        self.manifest_path, self.root = manifest, root.resolve()

    def manifest(self) -> AbstractContextManager[BinaryIO]:
        return open(self.manifest_path, "rb")

    def image_bytes(self, relative: str) -> bytes:
        path = (self.root / relative).resolve()
        # A manifest must not reach files outside its root (../../etc/passwd).
        if not path.is_relative_to(self.root):
            raise ManifestLineError("path leaves the root folder")
        if not path.is_file():
            raise ManifestLineError("file not found")
        with path.open("rb") as handle:
            data = handle.read(MAX_IMAGE_FILE_BYTES + 1)
        if len(data) > MAX_IMAGE_FILE_BYTES:
            raise _too_large(path.stat().st_size)
        return data


class ZipSource:
    """Members of an open zip, named relative to the manifest's folder; read as streams, never unpacked."""

    def __init__(self, bundle: zipfile.ZipFile, manifest: zipfile.ZipInfo):
        self.bundle, self.manifest_info = bundle, manifest
        self.folder = posixpath.dirname(manifest.filename)
        self.members = {info.filename: info for info in bundle.infolist() if not info.is_dir()}

    def manifest(self) -> AbstractContextManager[BinaryIO]:
        return self.bundle.open(self.manifest_info)

    def image_bytes(self, relative: str) -> bytes:
        relative = relative.replace("\\", "/")
        name = posixpath.normpath(posixpath.join(self.folder, relative))
        inside = not self.folder or name.startswith(f"{self.folder}/")
        # As with a folder: the manifest's paths stay under the manifest's own folder.
        if PurePosixPath(relative).is_absolute() or name.startswith("../") or name == ".." or not inside:
            raise ManifestLineError("path leaves the root folder")
        info = self.members.get(name)
        if info is None:
            raise ManifestLineError("file not found")
        # zipfile never inflates past the declared size, so checking the header bounds the read.
        if info.file_size > MAX_IMAGE_FILE_BYTES:
            raise _too_large(info.file_size)
        try:
            with self.bundle.open(info) as member:
                return member.read()
        except (zipfile.BadZipFile, zlib.error, EOFError) as error:
            raise ManifestLineError(f"corrupt zip member: {error}") from None
        except NotImplementedError as error:
            raise ManifestLineError(f"unsupported zip member: {error}") from None
