"""A run on a gpu worker uses every device through torchrun: here a real Celery worker launches a 2-process
CPU (gloo) run, records its progress, cancels it across both ranks and resumes it to the end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mhp.jobs import JobStatus
from mhp.tests.services import start_worker, stop
from training.runs import training_run_cancel, training_run_create, training_run_resume
from training.tests.test_worker_death import _send, _wait_for, tiny_options  # noqa: F401 (a fixture, used below)
from training.trainer.config import TrainConfig
from training.trainer.launch import local_process_count, torchrun_command
from training.trainer.state import load_train_state

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

STEPS = 12
VAL_EVERY = 4


@pytest.fixture
def two_process_options(tiny_options) -> dict:  # noqa: F811 (the imported fixture)
    return {**tiny_options, "steps": STEPS, "val_every": VAL_EVERY, "batch_size": 4, "nproc_per_node": 2}


def _starts(run) -> list[dict]:
    lines = (Path(run.output_dir) / "metrics.jsonl").read_text().splitlines()
    return [entry for entry in map(json.loads, lines) if entry.get("event") == "start"]


def test_a_gpu_task_trains_on_two_processes_with_progress_cancel_and_resume(two_process_options, clean_redis):
    run = training_run_create(name="two-ranks", version=None, options=two_process_options, enqueue=False)
    worker = start_worker("gpu")
    try:
        _send(run)
        run = _wait_for(run, lambda r: r.step >= 3, "progress from rank 0")
        assert run.status == JobStatus.RUNNING and 0 < run.progress < 1
        training_run_cancel(run=run)
        run = _wait_for(run, lambda r: r.status != JobStatus.RUNNING, "the cancelled run to stop")
        assert run.status == JobStatus.CANCELLED, run.error
        stopped = run.checkpoint_step
        assert 3 <= stopped < STEPS and load_train_state(Path(run.last_checkpoint))["step"] == stopped

        run = training_run_resume(run=run, enqueue=False)
        _send(run)
        run = _wait_for(run, lambda r: r.status in (JobStatus.SUCCEEDED, JobStatus.FAILED), "the resumed run")
    finally:
        stop(worker)
    assert run.status == JobStatus.SUCCEEDED, run.error
    assert run.step == STEPS and run.progress == 1.0 and run.checkpoint_step == STEPS
    assert [point["step"] for point in run.metrics["val"]][-2:] == [8, 12]
    assert run.metrics["train"][-1]["step"] == STEPS
    assert [(start["step"], start["world_size"]) for start in _starts(run)] == [(0, 2), (stopped, 2)]
    assert not (Path(run.output_dir) / "stop-requested").exists()


def test_the_launch_command_uses_torchrun_with_one_process_per_device(tmp_path):
    config = TrainConfig(export_dir="x", nproc_per_node=0)
    assert local_process_count(config) == 1  # no CUDA device here
    command = torchrun_command(tmp_path / "c.json", 8, resume=True, stop_file=tmp_path / "stop")
    assert command[1:7] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "8", "-m"]
    assert command[-1] == "--resume"
