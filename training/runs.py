"""TrainingRun rows: create one (queued to a GPU worker) and execute one with progress and cancellation.

`manage.py train_mps` and the Celery task call the same `training_run_execute`. Nothing here imports torch
at module level: the web process creates runs, GPU workers execute them.
"""

from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from datasets.models import DatasetStatus, DatasetVersion, ExportJob
from mhp.jobs import JobStatus
from training.models import TrainingRun

TRAINABLE_FORMATS = ("jsonl", "parquet", "webdataset")
# The row is written when the run moved on by at least this share of its steps (and always on validation).
_PROGRESS_STEP = 0.005


class TrainingError(ValueError):
    """The run cannot start; the message says why."""


def training_export_dir(*, version: DatasetVersion) -> Path:
    """The newest finished export of a frozen version that the trainer reads; exported now if none."""
    if version.status != DatasetStatus.FROZEN:
        raise TrainingError(f"dataset version {version.name!r} is {version.status}; freeze it first")
    jobs = ExportJob.objects.filter(version=version, status=JobStatus.SUCCEEDED).order_by("-finished_at")
    for job in jobs:
        if set(job.formats) & set(TRAINABLE_FORMATS) and Path(job.output_dir).is_dir():
            return Path(job.output_dir)
    from datasets.services.export_jobs import export_job_create, export_job_run

    job = export_job_run(job_id=export_job_create(version=version, formats=["jsonl"], enqueue=False).pk)
    if job.status != JobStatus.SUCCEEDED:
        raise TrainingError(f"exporting {version.name!r} for training failed: {job.error}")
    return Path(job.output_dir)


def training_run_create(
    *,
    name: str,
    version: DatasetVersion | None,
    options: dict,
    created_by: AbstractBaseUser | None = None,
    enqueue: bool = True,
) -> TrainingRun:
    """A queued run; `options` are TrainConfig fields. With `enqueue` it goes to the gpu queue on commit."""
    if TrainingRun.objects.filter(name=name).exists():
        raise TrainingError(f"a training run named {name!r} exists already")
    if version is None and not options.get("export_dir"):
        raise TrainingError("give a dataset version or an export folder")
    with transaction.atomic():
        run = TrainingRun(
            name=name,
            dataset_version=version,
            preset=options.get("preset", "vit-h"),
            total_steps=options.get("steps", 30_000),
            config=options,
            created_by=created_by,
            output_dir=str(Path(settings.ARTIFACTS_ROOT) / "runs" / name),
        )
        run.full_clean()
        run.save()
        if enqueue:
            from training.tasks import train_run

            transaction.on_commit(lambda: train_run.delay(run.pk))
    return run


def training_run_cancel(*, run: TrainingRun) -> None:
    # The trainer reads the flag after each step, writes its last checkpoint and stops.
    TrainingRun.objects.filter(pk=run.pk).update(cancel_requested=True)
    TrainingRun.objects.filter(pk=run.pk, status=JobStatus.QUEUED).update(
        status=JobStatus.CANCELLED, finished_at=timezone.now()
    )


def training_run_execute(*, run_id: int, progress=None) -> TrainingRun:
    """Train a queued run (or resume one a dead worker left running); finished runs are returned as they are."""
    from training.trainer.config import TrainConfig
    from training.trainer.loop import train

    with transaction.atomic():
        run = TrainingRun.objects.select_for_update(of=("self",)).select_related("dataset_version").get(pk=run_id)
        if run.status not in (JobStatus.QUEUED, JobStatus.RUNNING):
            return run
        resume = run.status == JobStatus.RUNNING
        run.status, run.started_at, run.error = JobStatus.RUNNING, run.started_at or timezone.now(), ""
        run.save(update_fields=["status", "started_at", "error"])
    try:
        config = TrainConfig.from_dict(_config_values(run))
        result = train(config, resume=resume, on_progress=_progress_writer(run, progress))
    except (ValueError, OSError, RuntimeError) as error:
        # The last checkpoint (if any) stays in output_dir: re-queue the run to resume from it.
        return _finish(run, JobStatus.FAILED, error=str(error))
    run.best_checkpoint = str(result.output_dir / "best_model") if result.best_checkpoint else ""
    run.last_checkpoint = str(result.last_checkpoint)
    run.step, run.progress = result.step, min(1.0, result.step / max(1, run.total_steps))
    return _finish(run, JobStatus.CANCELLED if result.cancelled else JobStatus.SUCCEEDED, metrics=result.metrics)


def _config_values(run: TrainingRun) -> dict:
    values = {"output_dir": run.output_dir, "preset": run.preset, **run.config}
    if not values.get("export_dir"):
        values["export_dir"] = str(training_export_dir(version=run.dataset_version))
        values.setdefault("image_root", str(settings.MEDIA_ROOT))
    return values


def _progress_writer(run: TrainingRun, also):
    last = [0.0]

    def write(step: int, total: int, metrics: dict) -> bool:
        if also is not None:
            also(step, total, metrics)
        share = step / max(1, total)
        fields = {"step": step, "progress": min(1.0, share)}
        if "val" in metrics or share - last[0] >= _PROGRESS_STEP or step == total:
            last[0] = share
            history = {**run.metrics}
            history.setdefault("train", []).append({"step": step, "loss": metrics["loss"], "lr": metrics["lr"]})
            if metrics.get("val"):
                history.setdefault("val", []).append({"step": step, **metrics["val"]})
            run.metrics = history
            TrainingRun.objects.filter(pk=run.pk).update(metrics=history, **fields)
        return not TrainingRun.objects.filter(pk=run.pk, cancel_requested=True).exists()

    return write


def _finish(run: TrainingRun, status: str, *, error: str = "", metrics: dict | None = None) -> TrainingRun:
    run.status, run.error, run.finished_at = status, error, timezone.now()
    if metrics and metrics.get("val"):
        run.metrics = {**run.metrics, "final_val": metrics["val"]}
    run.save(
        update_fields=[
            "status",
            "error",
            "finished_at",
            "best_checkpoint",
            "last_checkpoint",
            "metrics",
            "step",
            "progress",
        ]
    )
    return run
