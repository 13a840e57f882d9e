"""ExportJob rows: create one (its Celery task is queued on commit), run one with progress.

The command and the task call the same `export_job_run`. A job found running is started again:
with acks_late, Celery delivers a task again only when the worker running it died, and the export
then clears what that worker left and writes afresh.
"""

from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import DatabaseError, transaction

from datasets.exporters.webdataset import DEFAULT_SHARD_SIZE, ImageMissing
from datasets.models import DatasetStatus, DatasetVersion, ExportJob
from datasets.services.export import ExportError, Progress, dataset_export, formats_parse
from mhp.jobs import JobFailed, JobStatus, job_enqueue, job_retry, job_run

EXPORT_TASK = "datasets.export_job"
# Celery delivers a task again only when the worker running it died: the export then starts afresh.
_RUNNABLE = (JobStatus.QUEUED, JobStatus.RUNNING)
# The job row is written when progress moved at least this much, so progress costs nothing noticeable.
_PROGRESS_STEP = 0.01


def export_dir_default(*, version: DatasetVersion, job_id: int) -> Path:
    return Path(settings.ARTIFACTS_ROOT) / "exports" / version.name / f"job-{job_id}"


def export_job_create(
    *,
    version: DatasetVersion,
    formats: list[str] | str,
    out_dir: Path | None = None,
    shard_size: int = DEFAULT_SHARD_SIZE,
    image_short_side: int = 0,
    created_by: AbstractBaseUser | None = None,
    enqueue: bool = True,
) -> ExportJob:
    """A queued export job; with `enqueue` its task goes to the default queue once the row is committed."""
    if version.status != DatasetStatus.FROZEN:
        raise ExportError(f"dataset version {version.name!r} is {version.status}; only a frozen version is exported")
    if shard_size < 1:
        raise ExportError("shard size must be at least 1")
    if image_short_side < 0:
        raise ExportError("the images' short side must be 0 (original images) or a positive size")
    with transaction.atomic():
        job = ExportJob(
            version=version,
            formats=formats_parse(formats),
            config={"shard_size": shard_size, "image_short_side": image_short_side},
            created_by=created_by,
        )
        job.full_clean()
        job.save()
        job.output_dir = str(out_dir or export_dir_default(version=version, job_id=job.pk))
        job.save(update_fields=["output_dir"])
        if enqueue:
            job_enqueue(EXPORT_TASK, job.pk)
    return job


def export_job_run(*, job_id: int, progress: Progress | None = None) -> ExportJob:
    """Run a queued (or interrupted) export; a finished job is returned untouched."""

    def export(job: ExportJob) -> dict:
        try:
            manifest = dataset_export(
                version=job.version,
                formats=job.formats,
                out_dir=Path(job.output_dir),
                shard_size=job.config.get("shard_size", DEFAULT_SHARD_SIZE),
                image_short_side=job.config.get("image_short_side", 0),
                progress=_progress_writer(job.pk, progress),
            )
        except (ExportError, ImageMissing, OSError, DatabaseError) as error:
            raise JobFailed(str(error)) from error
        return {
            "manifest": manifest,
            "metrics": {"pairs": manifest["counts"]["pairs"], "files": len(manifest["files"])},
        }

    return job_run(ExportJob.objects.select_related("version"), job_id, export, from_statuses=_RUNNABLE)


def export_job_retry(*, job_id: int) -> ExportJob:
    return job_retry(ExportJob.objects.all(), job_id, EXPORT_TASK)


def _progress_writer(job_id: int, also: Progress | None) -> Progress:
    last = [0.0]

    def write(done: int, total: int) -> None:
        if also:
            also(done, total)
        fraction = min(done / total, 1.0) if total else 1.0
        if fraction - last[0] >= _PROGRESS_STEP:
            last[0] = fraction
            # Checksums and renames follow the last row: the bar stays short of full until the job ends.
            ExportJob.objects.filter(pk=job_id).update(progress=round(fraction * 0.99, 3))

    return write
