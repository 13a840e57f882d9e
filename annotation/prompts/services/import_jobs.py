"""ImportJob rows for prompt uploads: create one (the task is queued on commit), run one with progress."""

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.contrib.auth.models import AbstractBaseUser
from django.core.files.uploadedfile import UploadedFile
from django.db.models.fields.files import FieldFile

from annotation.models import ImportJob, ImportKind
from annotation.prompts.services.import_readers import format_for_name
from annotation.prompts.services.imports import ImportFileError, prompts_import
from annotation.uploads import import_job_create
from mhp.jobs import JobFailed, job_retry, job_run

PROMPT_IMPORT_TASK = "annotation.prompt_import_job"
# The job row is written at most this often (in rows read), so progress costs nothing noticeable.
_PROGRESS_STEP = 0.02


def prompt_import_job_create(
    *, upload: UploadedFile, created_by: AbstractBaseUser | None, source: str = "", category_slug: str = ""
) -> ImportJob:
    """Store the upload and queue its import; raises ImportFileError when the name gives no known format."""
    file_format = format_for_name(upload.name)
    config = {"source": source, "category": category_slug, "format": file_format}
    return import_job_create(
        kind=ImportKind.PROMPTS, upload=upload, created_by=created_by, task=PROMPT_IMPORT_TASK, config=config
    )


def prompt_import_job_run(*, job_id: int) -> ImportJob:
    """Run a queued prompt import; safe to call twice (a finished or running job is left alone)."""
    return job_run(ImportJob.objects.all(), job_id, _import)


def prompt_import_job_retry(*, job_id: int) -> ImportJob:
    return job_retry(ImportJob.objects.filter(kind=ImportKind.PROMPTS), job_id, PROMPT_IMPORT_TASK)


def _import(job: ImportJob) -> dict:
    try:
        with _local_path(job.upload) as path:
            summary = prompts_import(
                path=path,
                file_format=job.config.get("format"),
                source=job.config.get("source", ""),
                category_slug=job.config.get("category", ""),
                display_name=job.original_name,
                progress=_progress_writer(job.pk),
            )
    except ImportFileError as error:
        raise JobFailed(f"{error}; nothing was imported") from error
    return {"summary": summary.as_dict()}


def _progress_writer(job_id: int):
    last = [0.0]

    def write(done: int, total: int) -> None:
        fraction = min(done / total, 1.0) if total else 1.0
        if fraction - last[0] >= _PROGRESS_STEP or fraction == 1.0:
            last[0] = fraction
            # The dedupe pass runs after the rows: keep the bar short of full until the job ends.
            ImportJob.objects.filter(pk=job_id).update(progress=round(fraction * 0.95, 3))

    return write


@contextmanager
def _local_path(upload: FieldFile) -> Iterator[Path]:
    """A path on this machine for the upload: the file itself, or a temporary copy from remote storage."""
    try:
        local = Path(upload.path)
    except NotImplementedError:
        local = None  # remote storage (S3...) has no local path: copy it below
    if local is not None:
        yield local
        return
    suffix = Path(upload.name).suffix
    with tempfile.NamedTemporaryFile(suffix=suffix) as copy, upload.open("rb") as remote:
        shutil.copyfileobj(remote, copy)
        copy.flush()
        yield Path(copy.name)
