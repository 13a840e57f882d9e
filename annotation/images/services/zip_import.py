"""Import images from an uploaded zip: `manifest.jsonl` plus the images at the paths it names.

The request stores the upload and queues an ImportJob (kind images); a worker runs it through
`images_import_from`, the code the `import_images` command runs, reading the manifest and each image
straight from the archive as streams (nothing is unpacked to disk). What makes the whole archive
unusable (not a zip, no manifest, a member path that is absolute or climbs out, too many members or
bytes, encryption) is found from the zip's directory before a single image is stored, so a refused
archive stores nothing; the upload form runs the same check to answer at once. A bad image inside a
good archive (a damaged member too) is refused on its own line, as with the command.
"""

import zipfile
from dataclasses import asdict
from pathlib import PurePosixPath
from typing import BinaryIO

from django.contrib.auth.models import AbstractBaseUser
from django.core.files.uploadedfile import UploadedFile

from annotation.images.services.imports import images_import_from
from annotation.images.services.sources import ZipSource
from annotation.models import ImportJob, ImportKind
from annotation.uploads import import_job_create
from mhp.jobs import JobFailed, job_progress, job_retry, job_run

IMAGE_IMPORT_TASK = "annotation.image_import_job"
MANIFEST_NAME = "manifest.jsonl"
# Zip bombs: a few kilobytes of archive can claim (and really inflate to) gigabytes. zipfile never
# inflates a member past its declared size, so capping the declared sizes caps the work.
MAX_MEMBERS = 20_000
MAX_UNCOMPRESSED_BYTES = 2 * 1024**3
# The job row is written at most this often (a fraction of the manifest's lines).
_PROGRESS_STEP = 0.01


class ZipImportError(ValueError):
    """The archive as a whole is refused; the message says why and nothing was stored."""


def zip_open_checked(
    archive: BinaryIO, *, max_members: int = MAX_MEMBERS, max_bytes: int = MAX_UNCOMPRESSED_BYTES
) -> tuple[zipfile.ZipFile, zipfile.ZipInfo]:
    """The open zip and its manifest member; raises ZipImportError when the archive is unusable."""
    try:
        bundle = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, EOFError, ValueError) as error:
        raise ZipImportError(f"not a zip file, or its directory is damaged ({error})") from None
    try:
        infos = bundle.infolist()
        _members_check(infos, max_members=max_members, max_bytes=max_bytes)
        return bundle, _manifest_member(infos)
    except ZipImportError:
        bundle.close()
        raise


def _members_check(infos: list[zipfile.ZipInfo], *, max_members: int, max_bytes: int) -> None:
    if len(infos) > max_members:
        raise ZipImportError(f"the zip holds {len(infos)} members; at most {max_members} are accepted")
    declared = sum(info.file_size for info in infos)
    if declared > max_bytes:
        raise ZipImportError(
            f"the zip unpacks to more than {max_bytes:,} bytes; split it or run `manage.py import_images` on the server"
        )
    seen = set()
    for info in infos:
        _name_check(info.filename)
        if info.flag_bits & 0x1:
            raise ZipImportError(f"member {info.filename!r} is encrypted; encrypted zips are not supported")
        if info.filename in seen:
            raise ZipImportError(f"member {info.filename!r} appears twice")
        seen.add(info.filename)


def _name_check(name: str) -> None:
    """Refuses member names that point outside the archive's root (zip slip), though nothing is unpacked:
    such an archive was made to attack, or by a tool whose paths mean something else."""
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or (path.parts and ":" in path.parts[0]):
        raise ZipImportError(f"member {name!r} has an absolute path; paths must be relative to the zip's root")
    if ".." in path.parts:
        raise ZipImportError(f"member {name!r} climbs out of the zip's root ('..')")


def _manifest_member(infos: list[zipfile.ZipInfo]) -> zipfile.ZipInfo:
    """The manifest at the zip's root or, for a zip of one folder, at that folder's root."""
    candidates = [info for info in infos if PurePosixPath(info.filename).name == MANIFEST_NAME]
    for depth in (1, 2):
        found = [info for info in candidates if len(PurePosixPath(info.filename).parts) == depth]
        if len(found) > 1:
            raise ZipImportError(f"the zip holds {len(found)} {MANIFEST_NAME} files at the same level; keep one")
        if found:
            return found[0]
    raise ZipImportError(f"no {MANIFEST_NAME} at the root of the zip (or of its one top-level folder)")


def images_import_zip(
    *, archive: BinaryIO, name: str = "upload.zip", progress=None, create_generators: bool = False, **limits
):
    """Import the manifest of the zip `archive`; raises ZipImportError (nothing stored) when it is unusable."""
    bundle, manifest = zip_open_checked(archive, **limits)
    with bundle:
        return images_import_from(
            source=ZipSource(bundle, manifest),
            label=f"{name}: {manifest.filename}",
            progress=progress,
            create_generators=create_generators,
        )


def image_zip_import_job_create(
    *, upload: UploadedFile, created_by: AbstractBaseUser | None, create_generators: bool = False
) -> ImportJob:
    """Store the upload and queue its import (the request does no more, so any size answers at once)."""
    config = {"create_generators": create_generators}
    return import_job_create(
        kind=ImportKind.IMAGES, upload=upload, created_by=created_by, task=IMAGE_IMPORT_TASK, config=config
    )


def image_zip_import_job_run(*, job_id: int) -> ImportJob:
    """Run a queued zip import; safe to call twice (a finished or running job is left alone)."""
    return job_run(ImportJob.objects.filter(kind=ImportKind.IMAGES), job_id, _import)


def image_zip_import_job_retry(*, job_id: int) -> ImportJob:
    return job_retry(ImportJob.objects.filter(kind=ImportKind.IMAGES), job_id, IMAGE_IMPORT_TASK)


def _import(job: ImportJob) -> dict:
    try:
        with job.upload.open("rb") as archive:
            summary = images_import_zip(
                archive=archive,
                name=job.original_name,
                progress=_progress_writer(job),
                create_generators=job.config.get("create_generators", False),
            )
    except ZipImportError as error:
        raise JobFailed(f"{error}; nothing was imported") from error
    except FileNotFoundError:
        raise JobFailed("the uploaded zip is gone from storage; upload it again") from None
    return {"summary": asdict(summary)}


def _progress_writer(job: ImportJob):
    last = [0.0]

    def write(done: int, total: int) -> None:
        fraction = min(done / total, 1.0) if total else 1.0
        if fraction - last[0] >= _PROGRESS_STEP:
            last[0] = fraction
            job_progress(job, fraction * 0.99)  # full only when the job has finished

    return write
