"""An uploaded file becomes a queued ImportJob: shared by the prompt and the image imports."""

from pathlib import Path

from django.contrib.auth.models import AbstractBaseUser
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction

from annotation.models import ImportJob
from mhp.jobs import job_enqueue


def import_job_create(
    *, kind: str, upload: UploadedFile, created_by: AbstractBaseUser | None, task: str, config: dict | None = None
) -> ImportJob:
    """Store the upload with its job row and send `task` for it once both are committed."""
    with transaction.atomic():
        job = ImportJob(kind=kind, original_name=upload.name[:255], created_by=created_by, config=config or {})
        job.upload.save(Path(upload.name).name, upload, save=False)
        job.full_clean()
        job.save()
        job_enqueue(task, job.pk)
    return job
