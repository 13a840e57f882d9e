"""TrainingRun rows: create one (queued to a GPU worker) and execute one with progress and cancellation.

`manage.py train_mps` and the Celery task call the same `training_run_execute`. Nothing here imports torch
at module level: the web process creates runs, GPU workers execute them.
"""

import logging
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from datasets.models import DatasetStatus, DatasetVersion, ExportJob
from datasets.services.export_jobs import export_job_create, export_job_run
from mhp.jobs import JobFailed, JobStatus, job_enqueue, job_run
from mhp.workers import queue_worker_missing
from training.liveness import Heartbeat, this_worker, training_run_mark_dead, worker_death
from training.models import TrainingRun

logger = logging.getLogger(__name__)

TRAINING_TASK = "training.tasks.train_run"
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
    _check_gpu_worker(enqueue)
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
            job_enqueue(TRAINING_TASK, run.pk)
    return run


def _check_gpu_worker(enqueue: bool) -> None:
    """A run queued where no GPU worker would take it would wait for ever: refused, saying what to start."""
    if enqueue and (missing := queue_worker_missing("gpu", needs_torch=True)):
        raise TrainingError(f"cannot start the run: {missing}")


def training_run_cancel(*, run: TrainingRun) -> None:
    # The trainer reads the flag after each step, writes its last checkpoint and stops.
    TrainingRun.objects.filter(pk=run.pk).update(cancel_requested=True)
    TrainingRun.objects.filter(pk=run.pk, status=JobStatus.QUEUED).update(
        status=JobStatus.CANCELLED, finished_at=timezone.now()
    )


def training_run_execute(*, run_id: int, progress=None) -> TrainingRun:
    """Train a queued run (resuming from its last checkpoint when it has one); anything else is returned as it is.

    A run found "running" means Celery delivered its task again (acks_late): the worker that had it died, or
    the broker thought so. It is never resumed silently here: `training_run_take_over` marks it failed when
    its worker is dead, and leaves it alone when that worker may still be training it."""
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().get(pk=run_id)
        if run.status == JobStatus.RUNNING:
            return training_run_take_over(run=run)
    worker_host, worker_pid = this_worker()
    run = job_run(
        TrainingRun.objects.select_related("dataset_version"),
        run_id,
        lambda run: _train(run, progress),
        worker_host=worker_host,
        worker_pid=worker_pid,
        heartbeat_at=timezone.now(),
    )
    if run.status == JobStatus.SUCCEEDED and run.best_checkpoint and settings.PAIR_SCORING_AFTER_TRAINING:
        _pairs_scored_by(run)
    return run


def _pairs_scored_by(run: TrainingRun) -> None:
    """Queue the pair scoring of the run's best model, once per run (a redelivered task finds it queued)."""
    # Imported here: pair scoring reuses the evaluation's checks, and the evaluation imports this module.
    from training.pair_scoring import PairScoringError, pair_scoring_run_create

    if run.pair_scorings.exists():
        return
    try:
        pair_scoring_run_create(training_run=run)
    except PairScoringError as error:
        # The training succeeded all the same; the scoring page lets staff start it by hand.
        logger.warning("training run %s: its pair scoring was not queued: %s", run.name, error)


def _train(run: TrainingRun, progress) -> dict:
    from training.mps import CheckpointError  # torch: GPU workers only
    from training.trainer.config import TrainConfig
    from training.trainer.launch import train_on_all_devices

    resume = bool(run.last_checkpoint)
    if resume and not Path(run.last_checkpoint).is_file():
        raise JobFailed(f"cannot resume: the last checkpoint {run.last_checkpoint} is gone")
    try:
        config = TrainConfig.from_dict(_config_values(run))
        with Heartbeat(run.pk):
            # Every GPU of this worker (torchrun when more than one), progress and cancel from rank 0.
            result = train_on_all_devices(config, resume=resume, on_progress=_progress_writer(run, progress))
    except (CheckpointError, ValueError, OSError, RuntimeError) as error:
        # The last checkpoint (if any) stays in output_dir: Resume continues from it.
        raise JobFailed(str(error)) from error
    final_val = {"final_val": result.metrics["val"]} if result.metrics and result.metrics.get("val") else {}
    return {
        "status": JobStatus.CANCELLED if result.cancelled else JobStatus.SUCCEEDED,
        "best_checkpoint": str(result.output_dir / "best_model") if result.best_checkpoint else "",
        "last_checkpoint": str(result.last_checkpoint),
        "checkpoint_step": result.step,
        "step": result.step,
        "progress": min(1.0, result.step / max(1, run.total_steps)),
        "metrics": {**run.metrics, **final_val},
    }


def training_run_take_over(*, run: TrainingRun) -> TrainingRun:
    """A redelivered task's view of a run that is still "running" (call with the row locked).

    Its worker dead (same host and process gone, or heartbeat stale): marked failed, resumable. Its worker
    possibly alive (another host, fresh heartbeat; e.g. Redis re-sends an unacknowledged task after its
    visibility timeout while the first worker still trains): left alone; the reaper decides once the
    heartbeat stops. Either way this delivery trains nothing."""
    reason = worker_death(run)
    return run if reason is None else training_run_mark_dead(run=run, reason=reason)


def training_run_resume(*, run: TrainingRun, enqueue: bool = True) -> TrainingRun:
    """Queue a failed or cancelled run again; it continues exactly from its last checkpoint."""
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().get(pk=run.pk)
        if run.status not in (JobStatus.FAILED, JobStatus.CANCELLED):
            raise TrainingError(f"training run {run.name} is {run.status}: only failed or cancelled runs resume")
        _check_gpu_worker(enqueue)
        if not run.last_checkpoint:
            raise TrainingError(f"training run {run.name} has no checkpoint to resume from; start a new run")
        run.metrics = _history_until(run.metrics, run.checkpoint_step)
        run.step, run.progress = run.checkpoint_step, min(1.0, run.checkpoint_step / max(1, run.total_steps))
        run.status, run.error, run.finished_at, run.cancel_requested = JobStatus.QUEUED, "", None, False
        run.save(update_fields=["status", "error", "finished_at", "cancel_requested", "metrics", "step", "progress"])
        if enqueue:
            job_enqueue(TRAINING_TASK, run.pk)
    return run


def _history_until(metrics: dict, step: int) -> dict:
    """The curves up to the checkpoint (the steps after it are trained again), and the resume noted."""
    kept = {key: [point for point in metrics.get(key, []) if point["step"] <= step] for key in ("train", "val")}
    resumes = [*metrics.get("resumes", []), {"step": step, "at": timezone.now().isoformat()}]
    return {**metrics, **kept, "resumes": resumes}


def training_run_can_resume(run: TrainingRun) -> bool:
    return run.status in (JobStatus.FAILED, JobStatus.CANCELLED) and bool(run.last_checkpoint)


def _config_values(run: TrainingRun) -> dict:
    values = {"output_dir": run.output_dir, "preset": run.preset, **run.config}
    if not values.get("export_dir"):
        values["export_dir"] = str(training_export_dir(version=run.dataset_version))
        values.setdefault("image_root", "storage")  # Django's default storage: the media folder, or S3
    return values


def _progress_writer(run: TrainingRun, also):
    last = [0.0]
    mine = TrainingRun.objects.filter(
        pk=run.pk, status=JobStatus.RUNNING, worker_host=run.worker_host, worker_pid=run.worker_pid
    )

    def write(step: int, total: int, metrics: dict) -> bool:
        if also is not None:
            also(step, total, metrics)
        share = step / max(1, total)
        fields = {"step": step, "progress": min(1.0, share)}
        if "val" in metrics:  # the trainer wrote last.pt at this step, before calling back
            fields |= {"last_checkpoint": str(Path(run.output_dir) / "last.pt"), "checkpoint_step": step}
        if "val" in metrics or share - last[0] >= _PROGRESS_STEP or step == total:
            last[0] = share
            history = {**run.metrics}
            history.setdefault("train", []).append({"step": step, "loss": metrics["loss"], "lr": metrics["lr"]})
            if metrics.get("val"):
                history.setdefault("val", []).append({"step": step, **metrics["val"]})
            fields["metrics"] = history
            for name, value in fields.items():  # the outcome's metrics start from this object: keep it current
                setattr(run, name, value)
            mine.update(**fields)
        # Stop after this step (last.pt is written) when cancelled, or when the run is no longer this
        # worker's: reaped as dead during a database outage, then resumed elsewhere.
        return mine.filter(cancel_requested=False).exists()

    return write
