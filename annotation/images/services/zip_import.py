"""Import images from an uploaded zip: `manifest.jsonl` plus the images at the paths it names.

The zip is checked and unpacked into a temporary folder that is always removed, then the folder goes
through `images_import`, the same code the `import_images` command runs. Everything that makes the
whole archive unusable (not a zip, corrupt data, no manifest, a member that would land outside the
folder, too many members or bytes) is found before a single image is stored, so a refused archive
stores nothing. A bad image inside a good archive is refused on its own line, as with the command.
"""

import shutil
import tempfile
import zipfile
import zlib
from dataclasses import asdict
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from django.contrib.auth.models import AbstractBaseUser
from django.core.files.uploadedfile import UploadedFile
from django.utils import timezone

from annotation.images.services.imports import ImageImportSummary, images_import
from annotation.models import ImportJob, ImportKind
from mhp.jobs import JobStatus

MANIFEST_NAME = "manifest.jsonl"
# Zip bombs: a few kilobytes of archive can claim (and really inflate to) gigabytes, so both the
# member count and the bytes actually written while unpacking are capped.
MAX_MEMBERS = 20_000
MAX_UNCOMPRESSED_BYTES = 2 * 1024**3
_COPY_CHUNK = 1024 * 1024


class ZipImportError(ValueError):
    """The archive as a whole is refused; the message says why and nothing was stored."""


class _OverBudget(Exception):
    """Unpacking went past the byte cap (turned into a ZipImportError naming the cap)."""


def images_import_zip(
    *,
    archive: BinaryIO,
    name: str = "upload.zip",
    max_members: int = MAX_MEMBERS,
    max_bytes: int = MAX_UNCOMPRESSED_BYTES,
) -> ImageImportSummary:
    """Unpack `archive` safely and import its manifest; raises ZipImportError when the archive is unusable."""
    folder = Path(tempfile.mkdtemp(prefix="mhp-image-zip-"))
    try:
        manifest = _unpack(archive, folder, max_members=max_members, max_bytes=max_bytes)
        summary = images_import(manifest=manifest, root=manifest.parent)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    # The temporary path means nothing to the person who uploaded the zip.
    summary.manifest = f"{name}: {manifest.relative_to(folder)}"
    return summary


def image_zip_import_job_run(*, upload: UploadedFile, created_by: AbstractBaseUser | None) -> ImportJob:
    """Import an uploaded zip now and keep its report as a finished ImportJob; a refused zip leaves no row."""
    started = timezone.now()
    summary = images_import_zip(archive=upload, name=upload.name)
    job = ImportJob(
        kind=ImportKind.IMAGES,
        original_name=upload.name[:255],
        created_by=created_by,
        status=JobStatus.SUCCEEDED,
        progress=1.0,
        started_at=started,
        finished_at=timezone.now(),
        summary=asdict(summary),
    )
    job.full_clean()
    job.save()
    return job


def _unpack(archive: BinaryIO, folder: Path, *, max_members: int, max_bytes: int) -> Path:
    try:
        bundle = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as error:
        raise ZipImportError(f"not a zip file, or its directory is damaged ({error})") from None
    with bundle:
        members = _checked_members(bundle, folder, max_members=max_members)
        manifest = _manifest_member(members)
        _extract_all(bundle, members, max_bytes)
    return folder / manifest.filename


def _extract_all(bundle: zipfile.ZipFile, members: list[tuple[zipfile.ZipInfo, Path]], max_bytes: int) -> None:
    budget = max_bytes
    try:
        for member, target in members:
            budget -= _extract(bundle, member, target, budget)
    except _OverBudget:
        raise ZipImportError(
            f"the zip unpacks to more than {max_bytes:,} bytes; split it or run `manage.py import_images` on the server"
        ) from None
    except (zipfile.BadZipFile, zlib.error, EOFError) as error:
        raise ZipImportError(f"corrupt zip: {error}") from None
    except NotImplementedError as error:
        raise ZipImportError(f"unsupported zip: {error}") from None
    except (FileExistsError, NotADirectoryError, IsADirectoryError) as error:
        raise ZipImportError(f"member paths clash (a file and a folder of one name): {error.filename}") from None


def _checked_members(bundle: zipfile.ZipFile, folder: Path, *, max_members: int) -> list[tuple[zipfile.ZipInfo, Path]]:
    infos = bundle.infolist()
    if len(infos) > max_members:
        raise ZipImportError(f"the zip holds {len(infos)} members; at most {max_members} are accepted")
    members, seen = [], set()
    for info in infos:
        target = _target_inside(folder, info.filename)
        if info.flag_bits & 0x1:
            raise ZipImportError(f"member {info.filename!r} is encrypted; encrypted zips are not supported")
        if target in seen:
            raise ZipImportError(f"member {info.filename!r} appears twice")
        seen.add(target)
        members.append((info, target))
    return members


def _target_inside(folder: Path, name: str) -> Path:
    """Where a member would be written; refuses names that would leave the folder (zip slip)."""
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or (path.parts and ":" in path.parts[0]):
        raise ZipImportError(f"member {name!r} has an absolute path; paths must be relative to the zip's root")
    if ".." in path.parts:
        raise ZipImportError(f"member {name!r} climbs out of the zip's root ('..')")
    target = (folder / path).resolve()
    if not target.is_relative_to(folder.resolve()):
        raise ZipImportError(f"member {name!r} would be written outside the zip's root")
    return target


def _manifest_member(members: list[tuple[zipfile.ZipInfo, Path]]) -> zipfile.ZipInfo:
    """The manifest at the zip's root or, for a zip of one folder, at that folder's root."""
    candidates = [info for info, _ in members if PurePosixPath(info.filename).name == MANIFEST_NAME]
    for depth in (1, 2):
        found = [info for info in candidates if len(PurePosixPath(info.filename).parts) == depth]
        if len(found) > 1:
            raise ZipImportError(f"the zip holds {len(found)} {MANIFEST_NAME} files at the same level; keep one")
        if found:
            return found[0]
    raise ZipImportError(f"no {MANIFEST_NAME} at the root of the zip (or of its one top-level folder)")


def _extract(bundle: zipfile.ZipFile, member: zipfile.ZipInfo, target: Path, budget: int) -> int:
    """Write one member, counting the bytes really inflated (headers can lie); returns how many."""
    if member.is_dir():
        target.mkdir(parents=True, exist_ok=True)
        return 0
    if member.file_size > budget:
        raise _OverBudget
    target.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with bundle.open(member) as source, target.open("wb") as sink:
        while chunk := source.read(_COPY_CHUNK):
            written += len(chunk)
            if written > budget:
                raise _OverBudget
            sink.write(chunk)
    return written
