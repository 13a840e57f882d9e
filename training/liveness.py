"""Is a running TrainingRun's worker still alive? Heartbeats, and the reaper that marks dead runs failed.

A worker that runs a training run records who it is (`worker_host`, `worker_pid`) and writes `heartbeat_at`
every `HEARTBEAT_SECONDS` from a daemon thread (`Heartbeat`): a thread, not the progress callback, so a long
validation or a slow first batch does not look like death, and it dies with the process (SIGKILL, the OOM
killer, a lost machine). A running run is dead when

- its worker ran on this host and that process is gone (known at once: the usual case of a prefork child
  killed by the OOM killer, whose task Celery redelivers to a new child on the same host), or
- its heartbeat is older than `STALE_SECONDS` (any host: a lost machine, a killed container).

A dead run is marked failed with the step it reached and the checkpoint it can resume from; an admin resumes
it explicitly (`training_run_resume`: the run page's Resume button, `train_mps --resume NAME`). Nothing
resumes silently: `training_runs_reap` runs from a periodic Celery beat task and whenever the run pages are
read, and a redelivered task finds the run still "running" and hands it to `training_run_take_over`.

Torch-free: the web process imports this module.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, connections, transaction
from django.utils import timezone

from mhp.jobs import JobStatus
from training.models import TrainingRun

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 15.0
# Eight missed beats: a database hiccup or a stalled thread for a minute does not kill a healthy run.
STALE_SECONDS = 120.0


def heartbeat_seconds() -> float:
    return float(getattr(settings, "TRAINING_HEARTBEAT_SECONDS", HEARTBEAT_SECONDS))


def stale_seconds() -> float:
    return float(getattr(settings, "TRAINING_HEARTBEAT_STALE_SECONDS", STALE_SECONDS))


def this_worker() -> tuple[str, int]:
    """(host name, process id) of the process that trains: how a run names its worker."""
    return socket.gethostname(), os.getpid()


def process_running(pid: int) -> bool:
    """Whether a process with this id runs on this host (a zombie, killed but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: it exists
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (macOS): signal 0 answered, so it exists
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def worker_death(run: TrainingRun, *, now: datetime | None = None) -> str | None:
    """Why this running run's worker is dead ("process gone", "no heartbeat for 300 s"), or None if it may live."""
    host, pid = this_worker()
    if run.worker_host == host and run.worker_pid and run.worker_pid != pid and not process_running(run.worker_pid):
        return "process gone"
    last = run.heartbeat_at or run.started_at
    if last is None:
        return None
    silent = ((now or timezone.now()) - last).total_seconds()
    return f"no heartbeat for {silent:.0f} s" if silent > stale_seconds() else None


def worker_died_message(run: TrainingRun, reason: str) -> str:
    """What the run page shows: where it stopped and where it can resume from."""
    where = f"worker {run.worker_host or '?'} pid {run.worker_pid or '?'}: {reason}"
    if run.last_checkpoint:
        resumable = f"resumable from {run.last_checkpoint} (step {run.checkpoint_step})"
    else:
        resumable = "no checkpoint was written yet, so it cannot be resumed: start it again"
    return f"worker died at step {run.step}; {resumable} ({where})"


def training_run_mark_dead(*, run: TrainingRun, reason: str) -> TrainingRun:
    """Failed, with the message; call with the row locked and still running."""
    run.status, run.error, run.finished_at = JobStatus.FAILED, worker_died_message(run, reason), timezone.now()
    run.save(update_fields=["status", "error", "finished_at"])
    logger.warning("training run %s: %s", run.name, run.error)
    return run


def training_runs_reap(*, now: datetime | None = None) -> list[TrainingRun]:
    """Mark failed every running run whose worker is dead; returns them. Safe to run anywhere, any time:
    each row is re-read under its lock, and a row another transaction holds is left to the next pass."""
    reaped = []
    for run_id in TrainingRun.objects.filter(status=JobStatus.RUNNING).values_list("pk", flat=True):
        with transaction.atomic():
            run = TrainingRun.objects.select_for_update(skip_locked=True).filter(pk=run_id).first()
            if run is None or run.status != JobStatus.RUNNING:
                continue
            reason = worker_death(run, now=now)
            if reason is not None:
                reaped.append(training_run_mark_dead(run=run, reason=reason))
    return reaped


class Heartbeat:
    """While the block runs, a daemon thread writes `heartbeat_at` every `interval` seconds, only while the row
    is still running under this worker (a reaped or taken-over run is not revived)."""

    def __init__(self, run_id: int, *, interval: float | None = None) -> None:
        self.run_id = run_id
        self.interval = heartbeat_seconds() if interval is None else interval
        self.host, self.pid = this_worker()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-run-{run_id}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                try:
                    mine = TrainingRun.objects.filter(
                        pk=self.run_id, status=JobStatus.RUNNING, worker_host=self.host, worker_pid=self.pid
                    )
                    mine.update(heartbeat_at=timezone.now())
                except DatabaseError as error:  # the next beat may get through; staleness allows for a few
                    logger.warning("training run %s: heartbeat not written: %s", self.run_id, error)
        finally:
            connections.close_all()  # this thread's own connections
