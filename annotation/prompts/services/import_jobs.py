"""ImportJob rows for prompt uploads: create one (the task is queued on commit), run one with progress."""

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.contrib.auth.models import AbstractBaseUser
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models.fields.files import FieldFile
from django.utils import timezone

from annotation.models import ImportJob, ImportKind
from annotation.prompts.services.import_readers import format_for_name
from annotation.prompts.services.imports import ImportFileError, prompts_import
from mhp.jobs import JobStatus

# The job row is written at most this often (in rows read), so progress costs nothing noticeable.
_PROGRESS_STEP = 0.02


def prompt_import_job_create(
    *, upload: UploadedFile, created_by: AbstractBaseUser | None, source: str = "", category_slug: str = ""
) -> ImportJob:
    """Store the upload and queue its import; raises ImportFileError when the name gives no known format."""
    file_format = format_for_name(upload.name)
    from annotation.prompts.tasks import prompt_import_job_task  # tasks import services, not the reverse

    with transaction.atomic():
        job = ImportJob(
            kind=ImportKind.PROMPTS,
            original_name=upload.name[:255],
            created_by=created_by,
            config={"source": source, "category": category_slug, "format": file_format},
        )
        job.upload.save(Path(upload.name).name, upload, save=False)
        job.full_clean()
        job.save()
        transaction.on_commit(lambda: prompt_import_job_task.delay(job.pk))
    return job


def prompt_import_job_run(*, job_id: int) -> ImportJob:
    """Run a queued prompt import; safe to call twice (a finished or running job is left alone)."""
    with transaction.atomic():
        job = ImportJob.objects.select_for_update().get(pk=job_id)
        if job.status != JobStatus.QUEUED:
            return job
        job.status, job.started_at = JobStatus.RUNNING, timezone.now()
        job.save(update_fields=["status", "started_at"])
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
        return _job_finish(job, status=JobStatus.FAILED, error=f"{error}; nothing was imported")
    return _job_finish(job, status=JobStatus.SUCCEEDED, summary=summary.as_dict())


def _progress_writer(job_id: int):
    last = [0.0]

    def write(done: int, total: int) -> None:
        fraction = min(done / total, 1.0) if total else 1.0
        if fraction - last[0] >= _PROGRESS_STEP or fraction == 1.0:
            last[0] = fraction
            # The dedupe pass runs after the rows: keep the bar short of full until the job ends.
            ImportJob.objects.filter(pk=job_id).update(progress=round(fraction * 0.95, 3))

    return write


def _job_finish(job: ImportJob, *, status: str, error: str = "", summary: dict | None = None) -> ImportJob:
    job.status, job.error, job.finished_at = status, error, timezone.now()
    job.summary = summary or {}
    if status == JobStatus.SUCCEEDED:
        job.progress = 1.0
    job.save(update_fields=["status", "error", "finished_at", "summary", "progress"])
    return job


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
