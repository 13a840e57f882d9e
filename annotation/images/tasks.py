"""Celery tasks of the image area: thin doors onto annotation.images.services."""

from celery import shared_task

from annotation.images.services.zip_import import image_zip_import_job_run


@shared_task(name="annotation.image_import_job")
def image_import_job_task(job_id: int) -> str:
    return image_zip_import_job_run(job_id=job_id).status
