"""Training and evaluation runs given a garbage checkpoint end failed with a readable message, never running."""

import pytest

from mhp.jobs import JobStatus
from training.evaluation.jobs import EvaluationOptions, evaluation_run_create, evaluation_run_execute
from training.runs import training_run_create, training_run_execute
from training.tests.benchmark_sets import tiny_imagereward_set
from training.tests.test_train_mps_command import _frozen_version

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _artifacts_in_tmp(settings, tmp_path):
    settings.ARTIFACTS_ROOT = tmp_path / "artifacts"
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MODEL_ROOTS = [tmp_path]  # the garbage file lies under a root: refused by the loader, not the roots


@pytest.fixture
def garbage(tmp_path):
    path = tmp_path / "garbage.pt"
    path.write_bytes(bytes(range(256)) * 3)
    return path


def test_an_evaluation_with_a_garbage_checkpoint_fails_readably(tmp_path, garbage):
    evaluation_set = tiny_imagereward_set(tmp_path / "images")
    run = evaluation_run_create(
        method="mps", weights=str(garbage), evaluation_set=evaluation_set, options=EvaluationOptions(), enqueue=False
    )
    run = evaluation_run_execute(run_id=run.pk)
    assert run.status == JobStatus.FAILED and run.finished_at is not None
    assert run.error.startswith(f"CheckpointError: {garbage} is not a PyTorch checkpoint we can read safely"), run.error


def test_a_training_run_from_a_garbage_checkpoint_fails_readably(garbage):
    version = _frozen_version("garbage-init")
    options = {"preset": "tiny", "steps": 2, "batch_size": 4, "num_workers": 0, "precision": "fp32"}
    options |= {"init_checkpoint": str(garbage), "log_tensorboard": False}
    run = training_run_execute(
        run_id=training_run_create(name="garbage-init", version=version, options=options, enqueue=False).pk
    )
    assert run.status == JobStatus.FAILED and run.finished_at is not None
    assert "is not a PyTorch checkpoint we can read safely" in run.error, run.error
    assert "unexpected error" not in run.error
