"""Celery tasks of the prompt pipeline: thin doors onto annotation.prompts.services."""

from celery import shared_task

from annotation.prompts.services.augmentation import augmentation_job_run
from annotation.prompts.services.import_jobs import prompt_import_job_run


@shared_task(name="annotation.prompt_import_job")
def prompt_import_job_task(job_id: int) -> str:
    return prompt_import_job_run(job_id=job_id).status


@shared_task(name="annotation.augmentation_job")
def augmentation_job_task(job_id: int) -> str:
    return augmentation_job_run(job_id=job_id).status
