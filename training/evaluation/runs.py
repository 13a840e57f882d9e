"""EvaluationRun rows: one per evaluation, from running to succeeded or failed."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from django.utils import timezone

from mhp.jobs import JobStatus
from training.models import EvaluationRun

BENCHMARK_FIELD_LENGTH = EvaluationRun._meta.get_field("benchmark").max_length
PROGRESS_STEP = 0.01  # write progress to the row at most once per percent


def evaluation_run_start(*, method: str, benchmark: str, checkpoint_path: str, config: dict, **links) -> EvaluationRun:
    """A running row. A long benchmark spec (``pairs:/a/long/path``) keeps its tail, the full one is in config."""
    return EvaluationRun.objects.create(
        method=method,
        benchmark=benchmark[-BENCHMARK_FIELD_LENGTH:],
        checkpoint_path=checkpoint_path,
        config={**config, "benchmark": benchmark},
        status=JobStatus.RUNNING,
        started_at=timezone.now(),
        **links,
    )


def evaluation_run_progress(*, run: EvaluationRun, progress: float) -> None:
    if progress - run.progress < PROGRESS_STEP and progress < 1.0:
        return
    run.progress = min(max(progress, 0.0), 1.0)
    EvaluationRun.objects.filter(pk=run.pk).update(progress=run.progress)


def evaluation_run_finish(*, run: EvaluationRun, metrics: dict) -> None:
    run.status, run.metrics, run.progress, run.finished_at = JobStatus.SUCCEEDED, metrics, 1.0, timezone.now()
    run.save(update_fields=["status", "metrics", "progress", "finished_at"])


def evaluation_run_fail(*, run: EvaluationRun, error: str) -> None:
    run.status, run.error, run.finished_at = JobStatus.FAILED, error, timezone.now()
    run.save(update_fields=["status", "error", "finished_at"])


@contextmanager
def evaluation_run_recorded(**start) -> Iterator[EvaluationRun]:
    """A running row for the block; whatever ends the block early (an error, Ctrl-C) marks it failed,
    so no row stays "running" forever. The block calls `evaluation_run_finish` on success."""
    run = evaluation_run_start(**start)
    try:
        yield run
    finally:
        if run.status == JobStatus.RUNNING:
            error = sys.exc_info()[1]
            evaluation_run_fail(run=run, error=f"{type(error).__name__}: {error}" if error else "ended early")
