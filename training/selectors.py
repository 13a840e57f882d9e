"""Reads of the training app for its pages: training runs, frozen dataset versions, succeeded evaluations.

No torch here: the web process imports this module.
"""

from django.db.models import QuerySet

from annotation.dimensions import DIMENSIONS
from datasets.models import DatasetStatus, DatasetVersion
from mhp.jobs import JobStatus
from training.baselines.tables import GENERATOR_RANKING
from training.models import EvaluationRun, PairScoringRun, TrainingRun

RUNS_LISTED = 200
ACTIVE_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING)


def succeeded_evaluations() -> QuerySet[EvaluationRun]:
    return EvaluationRun.objects.filter(status=JobStatus.SUCCEEDED).order_by("-finished_at", "-id")


def frozen_dataset_versions() -> QuerySet[DatasetVersion]:
    """The versions a run can train on."""
    return DatasetVersion.objects.filter(status=DatasetStatus.FROZEN).order_by("-frozen_at", "-id")


def finished_training_runs() -> QuerySet[TrainingRun]:
    """Succeeded runs with a best model: what an MPS evaluation can start from."""
    return TrainingRun.objects.filter(status=JobStatus.SUCCEEDED).exclude(best_checkpoint="").order_by("-id")


def evaluation_run_list(*, limit: int = RUNS_LISTED) -> list[EvaluationRun]:
    """The newest accuracy evaluations, any status, for the results page (rankings have their own page)."""
    runs = EvaluationRun.objects.exclude(benchmark=GENERATOR_RANKING).select_related("training_run")
    return list(runs.order_by("-created_at", "-id")[:limit])


def pair_scoring_run_list(*, limit: int = RUNS_LISTED) -> list[PairScoringRun]:
    """The newest pair scoring runs, any status, for their page."""
    runs = PairScoringRun.objects.select_related("training_run").order_by("-created_at", "-id")
    return list(runs[:limit])


def training_run_list(*, limit: int = RUNS_LISTED) -> list[dict]:
    """The newest runs with what the list page shows: the row and its best validation mean so far."""
    runs = TrainingRun.objects.select_related("dataset_version").order_by("-created_at", "-id")[:limit]
    return [{"run": run, "best_val_mean": best_validation_mean(run.metrics)} for run in runs]


def pair_scoring_run_get(*, run_id: int) -> PairScoringRun | None:
    return PairScoringRun.objects.filter(pk=run_id).first()


def training_run_by_name(name: str) -> TrainingRun | None:
    return TrainingRun.objects.filter(name=name).first()


def training_run_get(*, run_id: int) -> TrainingRun | None:
    return TrainingRun.objects.select_related("dataset_version", "created_by").filter(pk=run_id).first()


def training_run_is_active(run: TrainingRun) -> bool:
    """Queued or running: the page refreshes itself and offers Cancel."""
    return run.status in ACTIVE_STATUSES


def job_is_active(job) -> bool:
    return job.status in ACTIVE_STATUSES


def best_validation_mean(metrics: dict) -> float | None:
    """The highest mean validation accuracy recorded so far (None before the first validation)."""
    means = [row["mean"] for row in metrics.get("val", []) if row.get("mean") is not None]
    return max(means) if means else None


def latest_validation(metrics: dict) -> dict | None:
    """The last validation: its step and (dimension label, accuracy or None) per dimension, then the mean."""
    rows = metrics.get("val", [])
    if not rows:
        return None
    last = rows[-1]
    values = [(dimension.label, last.get(dimension.key)) for dimension in DIMENSIONS] + [("mean", last.get("mean"))]
    return {"step": last["step"], "values": values}


def training_run_status(run: TrainingRun) -> dict:
    """What the JSON endpoint returns: the row's progress and its metric history."""
    return {
        "id": run.pk,
        "name": run.name,
        "status": run.status,
        "active": training_run_is_active(run),
        "cancel_requested": run.cancel_requested,
        "step": run.step,
        "total_steps": run.total_steps,
        "progress": run.progress,
        "error": run.error,
        "best_val_mean": best_validation_mean(run.metrics),
        "output_dir": run.output_dir,
        "best_checkpoint": run.best_checkpoint,
        "last_checkpoint": run.last_checkpoint,
        "checkpoint_step": run.checkpoint_step,
        "worker": {"host": run.worker_host, "pid": run.worker_pid} if run.worker_host else None,
        "heartbeat_at": run.heartbeat_at.isoformat() if run.heartbeat_at else None,
        "metrics": run.metrics,
        "created_at": run.created_at.isoformat(),
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }
