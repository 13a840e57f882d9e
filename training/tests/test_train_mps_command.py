"""`manage.py train_mps` and the TrainingRun row: from a frozen dataset version to a trained model."""

import pytest
from django.core.management import CommandError, call_command

from datasets.services.freeze import FreezeOptions, dataset_freeze
from datasets.tests.factories import JudgedPairs
from mhp.jobs import JobStatus
from training.models import TrainingRun
from training.runs import training_run_cancel, training_run_create, training_run_execute
from training.trainer.simulate import write_simulated_export

pytestmark = pytest.mark.django_db

TINY = ["--preset", "tiny", "--batch-size", "4", "--lr", "1e-3", "--warmup-steps", "1", "--val-every", "2"]
TINY += ["--num-workers", "0", "--precision", "fp32", "--no-log-tensorboard"]


def _frozen_version(name: str):
    judged = JudgedPairs()
    for _ in range(6):
        for pair in judged.prompt_pairs(2):
            judged.judge_all(pair, ["first", "first", "second"])
    return dataset_freeze(name=name, options=FreezeOptions(val=2, test=2, seed=1))


def test_train_mps_on_a_dataset_version_exports_it_trains_and_records_the_run(capsys):
    version = _frozen_version("tiny-v1")
    call_command("train_mps", "--dataset", "tiny-v1", "--name", "run-1", "--steps", "4", *TINY)
    run = TrainingRun.objects.get(name="run-1")
    assert run.status == JobStatus.SUCCEEDED and run.dataset_version == version
    assert (run.step, run.progress) == (4, 1.0)
    assert [point["step"] for point in run.metrics["val"]] == [2, 4]
    assert run.best_checkpoint.endswith("best_model") and run.last_checkpoint.endswith("last.pt")
    assert version.exports.filter(status=JobStatus.SUCCEEDED).count() == 1
    assert "training run run-1: succeeded at step 4" in capsys.readouterr().out


def test_train_mps_refuses_unknown_or_unfrozen_versions_and_taken_names(tmp_path):
    with pytest.raises(CommandError, match="no dataset version named 'nope'"):
        call_command("train_mps", "--dataset", "nope", *TINY)
    export = write_simulated_export(tmp_path / "export", pairs=12, seed=2)
    options = ["--export-dir", str(export), "--image-root", str(export), "--steps", "1", *TINY]
    call_command("train_mps", "--name", "taken", *options)
    with pytest.raises(CommandError, match="exists already"):
        call_command("train_mps", "--name", "taken", *options)
    assert TrainingRun.objects.count() == 1


def test_cancelled_run_stops_with_its_last_checkpoint_and_failures_are_recorded(tmp_path):
    export = write_simulated_export(tmp_path / "export", pairs=12, seed=2)
    options = {"export_dir": str(export), "image_root": str(export), "preset": "tiny", "steps": 50, "batch_size": 4}
    options |= {"num_workers": 0, "precision": "fp32", "log_tensorboard": False, "val_every": 100}
    run = training_run_create(name="cancel-me", version=None, options=options, enqueue=False)

    def cancel_at_step_3(step, total, metrics):
        if step == 3:
            training_run_cancel(run=run)

    run = training_run_execute(run_id=run.pk, progress=cancel_at_step_3)
    assert (run.status, run.step) == (JobStatus.CANCELLED, 3)
    assert run.last_checkpoint.endswith("last.pt")
    broken = training_run_create(
        name="broken", version=None, options={**options, "batch_size": 3, "grad_accumulation": 2}, enqueue=False
    )
    broken = training_run_execute(run_id=broken.pk)
    assert broken.status == JobStatus.FAILED and "split evenly" in broken.error


def test_the_command_and_the_trainer_read_their_options_alike(tmp_path):
    from training.trainer.main import build_parser, config_values

    (tmp_path / "config.json").write_text('{"steps": 9, "lr": 0.5, "seed": 3}')
    argv = ["--config-json", str(tmp_path / "config.json"), "--steps", "4", "--preset", "tiny"]
    from_flags = config_values(vars(build_parser().parse_args(argv)))
    assert from_flags == {"steps": 4, "lr": 0.5, "seed": 3, "preset": "tiny"}  # flags over the file, unset left out
    command_options = {"steps": 4, "preset": "tiny", "lr": None, "verbosity": 1, "skip_checks": True}
    assert config_values(command_options) == {"steps": 4, "preset": "tiny"}  # no config file, Django's own ignored
