"""One lifecycle for every long-running job row (imports, augmentation, exports, training, evaluation).

queued -> running (with progress) -> succeeded, failed (with a message) or cancelled. A job's runner
hands its body to `job_run`: whatever the body raises ends the job failed with a readable message (the
traceback goes to the log), so nothing can leave a job "running". `job_enqueue` sends a job's Celery
task by name once the row is committed, so services never import tasks (tasks import services).
"""

import logging
from collections.abc import Callable, Iterable
from typing import TypeVar

from django.conf import settings
from django.db import DatabaseError, connection, models, transaction
from django.db.models import QuerySet
from django.utils import timezone

from mhp.celery import app

logger = logging.getLogger(__name__)


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


FINISHED_STATUSES = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class Job(models.Model):
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True)
    progress = models.FloatField(default=0.0, help_text="0 to 1")
    config = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    task_id = models.CharField(max_length=64, blank=True, help_text="Celery task id")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ("-created_at",)

    @staticmethod
    def job_constraints(prefix: str) -> list[models.BaseConstraint]:
        return [
            models.CheckConstraint(
                condition=models.Q(progress__gte=0.0) & models.Q(progress__lte=1.0),
                name=f"{prefix}_progress_0_1",
            ),
            models.CheckConstraint(condition=models.Q(status__in=JobStatus.values), name=f"{prefix}_status_valid"),
        ]


J = TypeVar("J", bound=Job)


class JobFailed(Exception):
    """Raised in a job's body: the job ends failed with this message, and with `fields` saved on its row."""

    def __init__(self, message: str, **fields):
        super().__init__(message)
        self.fields = fields


def job_start(
    jobs: QuerySet[J], job_id: int, *, from_statuses: Iterable[str] = (JobStatus.QUEUED,), **start_fields
) -> J | None:
    """The job, now running (with `start_fields` of its own), when it was in one of `from_statuses`; None
    otherwise (a retried task finds it taken or done)."""
    with transaction.atomic():
        job = jobs.select_for_update(of=("self",)).get(pk=job_id)
        if job.status not in tuple(from_statuses):
            return None
        job.status, job.started_at, job.progress, job.error = JobStatus.RUNNING, timezone.now(), 0.0, ""
        for name, value in start_fields.items():
            setattr(job, name, value)
        job.save(update_fields=["status", "started_at", "progress", "error", *start_fields])
    return job


def job_progress(job: Job, fraction: float) -> None:
    job.progress = round(min(max(fraction, 0.0), 1.0), 3)
    type(job).objects.filter(pk=job.pk).update(progress=job.progress)


def job_finish(job: J, status: str = JobStatus.SUCCEEDED, *, error: str = "", **fields) -> J:
    """Record the outcome with `fields` of the job's own (a summary, a manifest...); success fills the bar.

    Only while the row is still this start's run: a job that was reaped as dead and started again
    elsewhere meanwhile is left to its new runner (the row is returned as it is)."""
    values = {"status": status, "error": error, "finished_at": timezone.now(), **fields}
    if status == JobStatus.SUCCEEDED:
        values.setdefault("progress", 1.0)
    mine = type(job).objects.filter(pk=job.pk, status=JobStatus.RUNNING, started_at=job.started_at)
    try:
        mine.update(**values)
    except DatabaseError:
        # The body may have broken the connection (a database restart, a killed backend): one fresh try.
        connection.close()
        mine.update(**values)
    job.refresh_from_db()
    return job


def unexpected_error_message(error: BaseException) -> str:
    return f"unexpected error ({type(error).__name__}: {error}); the details are in the worker's log"


def job_run(
    jobs: QuerySet[J],
    job_id: int,
    body: Callable[[J], dict | None],
    *,
    from_statuses: Iterable[str] = (JobStatus.QUEUED,),
    **start_fields,
) -> J:
    """Start the job, run `body(job)` and finish it: succeeded with the fields `body` returns (a `status`
    among them may say cancelled), failed on JobFailed or on any other error. A job not in `from_statuses`
    is returned as it is, so a task delivered twice does its work once."""
    job = job_start(jobs, job_id, from_statuses=from_statuses, **start_fields)
    if job is None:
        return jobs.get(pk=job_id)
    try:
        fields = body(job) or {}
    except JobFailed as failure:
        return job_finish(job, JobStatus.FAILED, error=str(failure), **failure.fields)
    except Exception as error:  # the one place that catches everything: a job must never stay running
        logger.exception("%s %s failed", type(job).__name__, job.pk)
        return job_finish(job, JobStatus.FAILED, error=unexpected_error_message(error))
    except BaseException:
        job_finish(job, JobStatus.FAILED, error="interrupted (the process was stopped); start the job again")
        raise
    return job_finish(job, **fields)


class JobNotRetryable(ValueError):
    """Only a failed job runs again; the message says what the job is."""


def job_retry(jobs: QuerySet[J], job_id: int, task_name: str) -> J:
    """Queue a failed job again (after its cause was fixed): its task `task_name` is sent on commit."""
    with transaction.atomic():
        job = jobs.select_for_update(of=("self",)).get(pk=job_id)
        if job.status != JobStatus.FAILED:
            raise JobNotRetryable(f"{type(job).__name__} {job.pk} is {job.status}: only a failed job runs again")
        job.status, job.progress, job.error, job.started_at, job.finished_at = JobStatus.QUEUED, 0.0, "", None, None
        job.save(update_fields=["status", "progress", "error", "started_at", "finished_at"])
        job_enqueue(task_name, job.pk)
    return job


def job_enqueue(task_name: str, *args) -> None:
    """Send the task `task_name` with `args` once the current transaction commits (at once outside one).

    By name, so that services need not import tasks; in-process (eager) when no broker is configured."""

    def send() -> None:
        if task_name not in app.tasks:
            app.loader.import_default_modules()  # registers every app's tasks in this process
        app.tasks[task_name].apply_async(args=args)

    transaction.on_commit(send)
