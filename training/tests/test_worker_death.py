"""A worker that dies mid-run leaves the run failed with its last checkpoint, and Resume finishes it exactly.

Real Celery workers on real Redis and PostgreSQL train a tiny run; the test kills them with SIGKILL:
- the whole worker (a machine or container gone): the reaper, run when the run page is read, marks it failed;
- the prefork child only (what the OOM killer does): Celery redelivers the task (acks_late,
  reject_on_worker_lost) and the redelivered task marks the run failed instead of resuming silently.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest
from celery import Celery
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from annotation import roles
from annotation.tests.factories import make_user
from mhp.jobs import JobStatus
from mhp.tests.services import ROOT, service_environment, stop
from training.liveness import training_runs_reap
from training.models import TrainingRun
from training.runs import TrainingError, training_run_create, training_run_resume
from training.trainer.simulate import write_simulated_export

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

STEPS = 40
CHECKPOINT_EVERY = 10  # validation writes last.pt every K steps
TIMEOUT = 120


@pytest.fixture
def tiny_options(tmp_path) -> dict:
    export = write_simulated_export(tmp_path / "export", pairs=16, seed=2)
    return {
        "export_dir": str(export), "image_root": str(export), "preset": "tiny", "steps": STEPS, "batch_size": 2,
        "lr": 1e-3, "warmup_steps": 1, "val_every": CHECKPOINT_EVERY, "val_max_pairs": 2, "num_workers": 0,
        "precision": "fp32", "log_tensorboard": False, "seed": 3,
    }  # fmt: skip


def _start_worker(pool: str) -> subprocess.Popen:
    """A gpu-queue worker as deployed (`--pool prefork --concurrency 1`) or a single process (`solo`)."""
    command = [sys.executable, "-m", "celery", "-A", "mhp", "worker", "-Q", "gpu", "--pool", pool, "--concurrency", "1"]
    command += ["--without-mingle", "--without-gossip", "--loglevel", "INFO"]
    worker = subprocess.Popen(
        command, cwd=ROOT, env=service_environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    for line in worker.stdout:  # the banner and "ready." come within seconds
        if " ready." in line:
            # Keep reading its log so that a full pipe never blocks the worker.
            threading.Thread(target=worker.stdout.read, daemon=True).start()
            return worker
    pytest.fail(f"the Celery worker did not become ready (exit {worker.poll()})")


def _send(run: TrainingRun) -> None:
    """Queue the run's task on the real broker (the test process itself runs tasks eagerly)."""
    client = Celery(broker=settings.TEST_REDIS_URL, backend=settings.TEST_REDIS_URL, set_as_current=False)
    try:
        client.send_task("training.tasks.train_run", args=[run.pk], queue="gpu")
    finally:
        client.close()


def _wait_for(run: TrainingRun, condition, what: str) -> TrainingRun:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if condition(run):
            return run
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}: {run.status} at step {run.step}, error {run.error!r}")


def _wait_for_first_checkpoint(run: TrainingRun) -> TrainingRun:
    run = _wait_for(run, lambda r: r.checkpoint_step >= CHECKPOINT_EVERY, "a checkpoint")
    assert run.status == JobStatus.RUNNING and run.step < STEPS, "the run ended before the worker could be killed"
    return run


def _assert_failed_as_dead(run: TrainingRun, reason: str) -> None:
    assert run.status == JobStatus.FAILED and run.finished_at is not None
    last = f"{run.output_dir}/last.pt"
    assert run.last_checkpoint == last and os.path.isfile(last)
    assert run.checkpoint_step % CHECKPOINT_EVERY == 0 and CHECKPOINT_EVERY <= run.checkpoint_step <= run.step
    assert run.error.startswith(f"worker died at step {run.step}; resumable from {last} (step {run.checkpoint_step})")
    assert reason in run.error


def test_killed_worker_marks_the_run_failed_on_the_page_and_resume_finishes_it(tiny_options, clean_redis, client):
    run = training_run_create(name="killed-worker", version=None, options=tiny_options, enqueue=False)
    worker = _start_worker("solo")
    try:
        _send(run)
        run = _wait_for_first_checkpoint(run)
        assert run.worker_pid == worker.pid and run.heartbeat_at is not None
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    run.refresh_from_db()
    assert run.status == JobStatus.RUNNING  # nobody knows yet
    client.force_login(make_user(roles.ADMIN))
    page = client.get(reverse("training-pages:run", args=[run.pk])).content.decode()
    run.refresh_from_db()
    _assert_failed_as_dead(run, f"worker {run.worker_host} pid {worker.pid}: process gone")
    assert '<b id="run-status" class="status-failed">Failed</b>' in page and 'id="resume-run"' in page
    assert f"Resume from step {run.checkpoint_step}" in page and "worker died at step" in page

    stopped_at, checkpoint = run.step, run.checkpoint_step
    # Celery is eager in the test process: Resume trains here, from the checkpoint the dead worker wrote.
    response = client.post(reverse("training-pages:run-resume", args=[run.pk]))
    assert response.status_code == 302
    run.refresh_from_db()
    assert (run.status, run.error, run.step, run.checkpoint_step) == (JobStatus.SUCCEEDED, "", STEPS, STEPS)
    assert [resume["step"] for resume in run.metrics["resumes"]] == [checkpoint]
    # The curves go on from the checkpoint: the steps after it are trained again, not recorded twice.
    steps = [point["step"] for point in run.metrics["train"]]
    assert steps == sorted(set(steps)) and steps[-1] == STEPS and stopped_at in steps


def test_oom_killed_child_is_redelivered_and_marked_failed_then_resumes_on_a_worker(tiny_options, clean_redis):
    run = training_run_create(name="oom-killed", version=None, options=tiny_options, enqueue=False)
    worker = _start_worker("prefork")
    try:
        _send(run)
        run = _wait_for_first_checkpoint(run)
        child = run.worker_pid
        assert child != worker.pid  # the prefork child trains, as on a deployed gpu worker
        os.kill(child, signal.SIGKILL)
        # No reaper runs here: the task Celery hands out again must find the dead child and fail the run.
        run = _wait_for(run, lambda r: r.status != JobStatus.RUNNING, "the redelivered task")
        _assert_failed_as_dead(run, f"pid {child}: process gone")
        checkpoint = run.checkpoint_step

        training_run_resume(run=run, enqueue=False)
        _send(run)
        run = _wait_for(run, lambda r: r.status not in (JobStatus.QUEUED, JobStatus.RUNNING), "the resumed run")
    finally:
        stop(worker)
    assert (run.status, run.error, run.step, run.checkpoint_step) == (JobStatus.SUCCEEDED, "", STEPS, STEPS)
    assert run.worker_pid not in (child, None) and [r["step"] for r in run.metrics["resumes"]] == [checkpoint]


def test_reaper_fails_runs_whose_heartbeat_stopped_and_leaves_live_ones(tiny_options):
    now = timezone.now()
    rows = {}
    for name, beat_age in (("silent", 300), ("beating", 5)):
        run = training_run_create(name=name, version=None, options=tiny_options, enqueue=False)
        run.status, run.step, run.worker_host, run.worker_pid = JobStatus.RUNNING, 57, "gpu-node-7", 4242
        run.started_at = run.heartbeat_at = now - timedelta(seconds=beat_age)
        run.save()
        rows[name] = run
    assert [run.name for run in training_runs_reap(now=now)] == ["silent"]
    silent, beating = (TrainingRun.objects.get(pk=rows[name].pk) for name in ("silent", "beating"))
    assert silent.status == JobStatus.FAILED and beating.status == JobStatus.RUNNING and beating.error == ""
    assert silent.error == (
        "worker died at step 57; no checkpoint was written yet, so it cannot be resumed: start it again "
        "(worker gpu-node-7 pid 4242: no heartbeat for 300 s)"
    )
    assert training_runs_reap(now=now) == []  # nothing twice
    with pytest.raises(TrainingError, match="no checkpoint to resume from"):
        training_run_resume(run=silent)
    assert TrainingRun.objects.get(pk=silent.pk).status == JobStatus.FAILED
