"""The WebDataset training stream: every pair once per epoch over ranks x workers, shuffled, resumable."""

import tarfile
from collections import Counter
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from training.trainer.config import TrainConfig
from training.trainer.data import PairExamples, val_loader
from training.trainer.loop import train
from training.trainer.shards import ShardPairs, slot_parts, split_shards
from training.trainer.simulate import write_simulated_export, write_simulated_shards
from training.trainer.state import load_train_state

PAIRS = 30  # 24 train (8 shards of 3), 3 val, 3 test


@pytest.fixture(scope="module")
def shards_export(tmp_path_factory) -> Path:
    export = write_simulated_export(tmp_path_factory.mktemp("shards"), pairs=PAIRS, seed=5)
    return write_simulated_shards(export, shard_size=3)


def _stream(export: Path, rank: int, *, batch: int, start_batches: int = 0, buffer: int = 4) -> ShardPairs:
    return ShardPairs(
        split_shards(export, "train"),
        PairExamples(image_size=32),
        rank=rank,
        world_size=2,
        seed=11,
        shuffle_buffer=buffer,
        batch_size=batch,
        start_batches=start_batches,
    )


def _batches(stream: ShardPairs, count: int, workers: int = 2) -> list[list[tuple[int, int]]]:
    """(epoch, pair id) of each pair in the first `count` batches of a rank's DataLoader."""
    loader = iter(DataLoader(stream, batch_size=stream.batch_size, num_workers=workers))
    batches = [next(loader) for _ in range(count)]
    return [list(zip(b["epoch"].tolist(), b["pair_id"].tolist(), strict=True)) for b in batches]


def test_two_ranks_by_two_workers_see_every_pair_once_per_epoch_in_shuffled_order(shards_export):
    train_ids = sorted(pair for shard in split_shards(shards_export, "train") for pair in _shard_ids(shard))
    assert len(train_ids) == 24 and len(split_shards(shards_export, "train")) == 8
    # 4 slots x 6 pairs per epoch; batches of 3: 4 batches per rank per epoch, 3 epochs = 12 batches per rank.
    seen = [pair for rank in (0, 1) for batch in _batches(_stream(shards_export, rank, batch=3), 12) for pair in batch]
    for epoch in range(3):
        in_epoch = [pair_id for e, pair_id in seen if e == epoch]
        assert sorted(in_epoch) == train_ids, f"epoch {epoch}: {Counter(in_epoch)}"
    first_epoch = [pair_id for e, pair_id in seen if e == 0]
    assert first_epoch != sorted(first_epoch)
    epochs = [[pair_id for e, pair_id in seen if e == epoch] for epoch in range(2)]
    assert epochs[0] != epochs[1]  # a new shard order and a new shuffle each epoch


def _shard_ids(shard) -> list[int]:
    with tarfile.open(shard.path) as tar:
        return [int(member.name.split(".")[0]) for member in tar if member.name.endswith(".json")]


def test_fewer_shards_than_slots_still_split_every_pair_once(shards_export):
    shards = split_shards(shards_export, "train")[:3]  # 9 pairs, 4 slots: every slot reads all, keeps its share
    parts = [slot_parts(shards, slot, 4) for slot in range(4)]
    assert [sum(part.pairs for part in slot) for slot in parts] == [3, 2, 2, 2]
    kept = sorted((shard_index, i) for slot in parts for shard_index, part in enumerate(slot) for i in
                  range(part.offset, part.shard.pairs, part.stride))  # fmt: skip
    assert kept == [(s, i) for s in range(3) for i in range(3)]


def test_a_resumed_stream_continues_exactly_where_it_stopped(shards_export):
    # 5 batches of 2 from 2 workers, then a stream resumed at batch 5 (worker 1's turn): the same batches.
    straight = _batches(_stream(shards_export, 1, batch=2), 9)
    resumed = _batches(_stream(shards_export, 1, batch=2, start_batches=5), 4)
    assert resumed == straight[5:]


def _config(export: Path, output: Path, **overrides) -> TrainConfig:
    values = {
        "export_dir": str(export), "output_dir": str(output), "data_format": "webdataset", "preset": "tiny",
        "steps": 4, "batch_size": 4, "lr": 1e-3, "warmup_steps": 1, "val_every": 2, "num_workers": 2,
        "shuffle_buffer": 4, "precision": "fp32", "log_tensorboard": False, "seed": 7,
    }  # fmt: skip
    return TrainConfig(**{**values, **overrides})


def test_a_stopped_and_resumed_shard_run_ends_with_the_weights_of_a_straight_one(shards_export, tmp_path):
    straight = train(_config(shards_export, tmp_path / "straight"))
    stopped = train(_config(shards_export, tmp_path / "resumed"), on_progress=lambda step, total, metrics: step < 1)
    assert stopped.cancelled and stopped.step == 1  # odd step: the resumed loader starts at worker 1's turn
    resumed = train(_config(shards_export, tmp_path / "resumed"), resume=True)
    assert resumed.step == 4 and resumed.fingerprint == straight.fingerprint
    assert load_train_state(resumed.last_checkpoint)["best"] == straight.best_metric
    assert set(straight.metrics["val"]) == {"aesthetics", "detail", "alignment", "overall", "mean"}


def test_validation_shards_are_split_over_ranks_and_capped(shards_export):
    config = _config(shards_export, Path("unused"), val_max_pairs=2, num_workers=0)
    ids = [
        batch["pair_id"].tolist()
        for rank in (0, 1)
        for batch in val_loader(config, rank=rank, world_size=2, image_size=32)
    ]
    assert sorted(sum(ids, [])) == [24, 25]  # the first two val pairs, one per rank
    assert all(len(share) == 1 for share in ids)
    assert torch.is_tensor(next(iter(val_loader(config, rank=0, world_size=1, image_size=32)))["labels"])
