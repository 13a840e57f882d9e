"""The MPS trainer on CPU with the tiny preset: resume exactness, DDP agreement, options, the objective."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from training.mps import load_checkpoint
from training.mps.config import DIMENSIONS, SCORING_THRESHOLD
from training.trainer.config import TrainConfig
from training.trainer.data import pair_dataset, val_loader
from training.trainer.launch import RESULT_PREFIX
from training.trainer.loop import initial_model, train, validate
from training.trainer.main import main
from training.trainer.objective import PairScorer, correct_and_counted, preference_loss
from training.trainer.simulate import write_simulated_export, write_simulated_shards
from training.trainer.state import load_train_state

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def small_export(tmp_path_factory) -> Path:
    return write_simulated_export(tmp_path_factory.mktemp("export"), pairs=40, seed=3)


def _config(export: Path, output: Path, **overrides) -> TrainConfig:
    values = {
        "export_dir": str(export),
        "image_root": str(export),
        "output_dir": str(output),
        "preset": "tiny",
        "steps": 6,
        "batch_size": 8,
        "lr": 1e-3,
        "warmup_steps": 2,
        "val_every": 3,
        "num_workers": 0,
        "precision": "fp32",
        "log_tensorboard": False,
        "seed": 7,
    }
    return TrainConfig(**{**values, **overrides})


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_train_state(path)["model"]


def test_resumed_run_ends_with_the_same_weights_as_an_uninterrupted_one(small_export, tmp_path):
    straight = train(_config(small_export, tmp_path / "straight"))
    stopped = train(_config(small_export, tmp_path / "resumed"), on_progress=lambda step, total, metrics: step < 3)
    assert stopped.cancelled and stopped.step == 3
    assert load_train_state(stopped.last_checkpoint)["step"] == 3
    resumed = train(_config(small_export, tmp_path / "resumed"), resume=True)
    assert resumed.step == 6
    expected, actual = _weights(straight.last_checkpoint), _weights(resumed.last_checkpoint)
    assert expected.keys() == actual.keys()
    assert all(torch.equal(expected[key], actual[key]) for key in expected)
    assert resumed.fingerprint == straight.fingerprint


def test_run_writes_config_metrics_and_checkpoints(small_export, tmp_path):
    result = train(_config(small_export, tmp_path / "run", grad_accumulation=2, freeze_lower_blocks=1))
    written = json.loads((result.output_dir / "config.json").read_text())
    assert written["grad_accumulation"] == 2 and written["model"]["clip"]["vision_cfg"]["image_size"] == 64
    lines = [json.loads(line) for line in (result.output_dir / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines if "val" in line] == [3, 6]
    assert set(lines[-1]["val"]) == {"aesthetics", "detail", "alignment", "overall", "mean"}
    state = load_train_state(result.last_checkpoint)
    assert {"model", "optimizer", "scheduler", "step", "rng", "config"} <= set(state)
    assert (result.output_dir / "best_model" / "model.safetensors").is_file()


def test_frozen_lower_blocks_do_not_move(small_export, tmp_path):
    config = _config(small_export, tmp_path / "frozen", freeze_lower_blocks=1, steps=2, val_every=100)
    before = initial_model(config).state_dict()  # seeded: the run starts from these very weights
    after = _weights(train(config).last_checkpoint)
    frozen = "backbone.visual.transformer.resblocks.0.attn.in_proj_weight"
    moving = "backbone.visual.transformer.resblocks.1.attn.in_proj_weight"
    assert torch.equal(before[frozen], after[frozen])
    assert not torch.equal(before[moving], after[moving])


def test_preference_loss_is_kl_to_the_human_label_summed_over_dimensions():
    scores = torch.tensor([[[2.0, 0.0]], [[0.0, 0.0]], [[0.0, 1.0]], [[1.0, 1.0]]])  # [C=4, B=1, 2]
    labels = torch.tensor([[[1.0, 0.0], [0.5, 0.5], [1.0, 0.0], [0.5, 0.5]]])  # [B=1, C=4, 2]
    p_first = torch.sigmoid(torch.tensor(2.0))
    expected = -torch.log(p_first) + 0.0 + -torch.log(torch.sigmoid(torch.tensor(-1.0))) + 0.0
    assert preference_loss(scores, labels).item() == pytest.approx(expected.item(), rel=1e-6)
    correct, counted = correct_and_counted(scores, labels)
    assert counted.tolist() == [1, 0, 1, 0] and correct.tolist() == [1, 0, 0, 0]


def test_command_line_refuses_a_missing_export_and_an_uneven_batch(small_export, tmp_path):
    with pytest.raises(SystemExit, match="export-dir"):
        main(["--preset", "tiny"])
    with pytest.raises(ValueError, match="split evenly"):
        train(_config(small_export, tmp_path / "uneven", batch_size=9, grad_accumulation=2))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def sharded_export(tmp_path_factory) -> Path:
    export = write_simulated_export(tmp_path_factory.mktemp("sharded"), pairs=40, seed=3)
    return write_simulated_shards(export, shard_size=4)


@pytest.mark.parametrize("data_format", ["jsonl", "webdataset"])
def test_two_process_ddp_validates_on_both_ranks_as_one_process_does(
    small_export, sharded_export, data_format, tmp_path
):
    """Both ranks validate their half of the val split (one with a DataLoader worker each) and report the
    summed figures; one process validating the whole split with the same weights gets the same figures."""
    export = small_export if data_format == "jsonl" else sharded_export
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port"]
    command += [str(_free_port()), "-m", "training.trainer.main", "--export-dir", str(export)]
    command += ["--image-root", str(export), "--output-dir", str(tmp_path / "ddp"), "--preset", "tiny"]
    command += ["--steps", "3", "--batch-size", "8", "--val-every", "3", "--num-workers", "1", "--precision", "fp32"]
    command += ["--lr", "1e-3", "--warmup-steps", "1", "--no-log-tensorboard", "--data-format", data_format]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    results = [
        json.loads(line[len(RESULT_PREFIX) :]) for line in done.stdout.splitlines() if line.startswith(RESULT_PREFIX)
    ]
    assert sorted(result["rank"] for result in results) == [0, 1]
    assert results[0]["step"] == results[1]["step"] == 3 and results[0]["world_size"] == 2
    assert results[0]["fingerprint"] == results[1]["fingerprint"]
    assert results[0]["metrics"]["val"] == results[1]["metrics"]["val"]
    assert results[0]["metrics"]["val"]["mean"] is not None

    config = _config(export, tmp_path / "unused", data_format=data_format)
    scorer = PairScorer(initial_model(config), config.mask_threshold)
    scorer.model.load_state_dict(_weights(tmp_path / "ddp" / "last.pt"))
    loader = val_loader(config, rank=0, world_size=1, image_size=64)
    assert validate(scorer, loader, config, torch.device("cpu")) == results[0]["metrics"]["val"]


def test_training_on_simulated_annotators_learns_each_dimensions_rule(tmp_path):
    """Images with controlled brightness, sharpness and content; simulated annotators prefer the brighter
    image for aesthetics, the sharper for detail, the one showing the prompt's content for alignment."""
    export = write_simulated_export(tmp_path / "sim", pairs=640, seed=1, splits=(0.7, 0.1, 0.2))
    config = _config(export, tmp_path / "run", steps=120, batch_size=32, warmup_steps=20, val_every=60)
    config.mask_threshold = SCORING_THRESHOLD  # train with the mask the scorer uses
    result = train(config)
    model = load_checkpoint(result.output_dir / "best_model")
    loader = DataLoader(pair_dataset(config, "test", image_size=64), batch_size=40)
    accuracy = validate(PairScorer(model, SCORING_THRESHOLD), loader, config, torch.device("cpu"))
    # The image-only rules are learnt well; alignment (image and prompt) more slowly; chance is 0.5.
    assert accuracy["aesthetics"] >= 0.8 and accuracy["detail"] >= 0.8, accuracy
    assert accuracy["mean"] >= 0.75 and min(accuracy[d] for d in DIMENSIONS) >= 0.6, accuracy
