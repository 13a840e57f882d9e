"""Resuming a stopped run: `train_mps --resume NAME` and the run page's Resume button, with their refusals."""

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from annotation import roles
from annotation.tests.factories import make_user
from mhp.jobs import JobStatus
from training.models import TrainingRun
from training.runs import training_run_cancel, training_run_create, training_run_execute
from training.trainer.simulate import write_simulated_export

pytestmark = pytest.mark.django_db


def _tiny_run(tmp_path, name: str, *, steps: int) -> TrainingRun:
    """A queued tiny run on a simulated export, validated every 2 steps."""
    export = write_simulated_export(tmp_path / "export", pairs=12, seed=2)
    options = {"export_dir": str(export), "image_root": str(export), "preset": "tiny", "steps": steps, "batch_size": 4}
    options |= {"num_workers": 0, "precision": "fp32", "log_tensorboard": False, "val_every": 2, "lr": 1e-3}
    return training_run_create(name=name, version=None, options=options, enqueue=False)


@pytest.fixture
def stopped_run(tmp_path) -> TrainingRun:
    """A tiny run cancelled at step 3 of 6: its last checkpoint holds step 3."""
    run = _tiny_run(tmp_path, "stopped", steps=6)

    def cancel_at_step_3(step, total, metrics):
        if step == 3:
            training_run_cancel(run=run)

    run = training_run_execute(run_id=run.pk, progress=cancel_at_step_3)
    assert (run.status, run.step, run.checkpoint_step) == (JobStatus.CANCELLED, 3, 3)
    return run


def test_train_mps_resume_continues_from_the_checkpoint_to_the_last_step(stopped_run, capsys):
    call_command("train_mps", "--resume", "stopped")
    run = TrainingRun.objects.get(pk=stopped_run.pk)
    assert (run.status, run.step, run.checkpoint_step, run.progress) == (JobStatus.SUCCEEDED, 6, 6, 1.0)
    assert [point["step"] for point in run.metrics["val"]] == [2, 4, 6]
    assert [point["step"] for point in run.metrics["resumes"]] == [3]
    out = capsys.readouterr().out
    assert "resuming training run stopped from step 3" in out and "stopped: succeeded at step 6" in out
    with pytest.raises(CommandError, match="is succeeded: only failed or cancelled runs resume"):
        call_command("train_mps", "--resume", "stopped")


def test_train_mps_resume_refuses_unknown_runs_and_new_options(stopped_run):
    with pytest.raises(CommandError, match="no training run named 'nope'"):
        call_command("train_mps", "--resume", "nope")
    with pytest.raises(CommandError, match="give no --dataset, --name or options"):
        call_command("train_mps", "--resume", "stopped", "--steps", "9")
    assert TrainingRun.objects.get(pk=stopped_run.pk).status == JobStatus.CANCELLED


def test_resume_button_needs_the_change_permission_and_a_checkpoint(stopped_run, client):
    resume = reverse("training-pages:run-resume", args=[stopped_run.pk])
    client.force_login(make_user(roles.ANNOTATOR))
    assert client.post(resume).status_code == 403
    assert TrainingRun.objects.get(pk=stopped_run.pk).status == JobStatus.CANCELLED

    client.force_login(make_user(roles.ADMIN))
    fresh = training_run_create(name="never-ran", version=None, options={"export_dir": "/x"}, enqueue=False)
    training_run_cancel(run=fresh)
    html = client.post(reverse("training-pages:run-resume", args=[fresh.pk]), follow=True).content.decode()
    assert "has no checkpoint to resume from" in html and 'id="resume-run"' not in html
    assert TrainingRun.objects.get(pk=fresh.pk).status == JobStatus.CANCELLED
    assert client.get(resume).status_code == 405


def test_an_unexpected_error_fails_the_run_and_resume_after_the_fix_completes(tmp_path):
    run = _tiny_run(tmp_path, "broken", steps=4)

    def bug_after_step_2(step, total, metrics):
        if step == 3:
            raise KeyError("a bug nobody expected")

    run = training_run_execute(run_id=run.pk, progress=bug_after_step_2)
    assert run.status == JobStatus.FAILED and run.finished_at is not None
    assert run.error.startswith("unexpected error (KeyError: 'a bug nobody expected')")
    assert run.checkpoint_step == 2

    call_command("train_mps", "--resume", "broken")
    run.refresh_from_db()
    assert (run.status, run.error, run.step, run.progress) == (JobStatus.SUCCEEDED, "", 4, 1.0)
