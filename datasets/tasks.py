"""Celery tasks of the datasets app (default queue): thin doors onto datasets.services."""

from celery import shared_task

from datasets.services.export_jobs import export_job_run
from datasets.services.freeze import FreezeError, dataset_version_freeze


@shared_task(name="datasets.export_job")
def export_job_task(job_id: int) -> str:
    return export_job_run(job_id=job_id).status


@shared_task(name="datasets.freeze_version")
def freeze_version_task(version_id: int) -> str:
    try:
        return dataset_version_freeze(version_id=version_id).status
    except FreezeError as error:
        # The version row already holds the reason (status failed); retrying would fail the same way.
        return f"failed: {error}"
