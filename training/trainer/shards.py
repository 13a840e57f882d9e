"""WebDataset shards for training and validation, read with the `webdataset` library.

An export's `webdataset/{split}-NNNNNN.tar` hold, per pair, `KEY.json`, `KEY.first.EXT`, `KEY.second.EXT`
(`index.json` beside them gives the pairs of each shard). The training stream:

- Slots: every (rank, DataLoader worker) is a slot, `slot = rank * workers + worker`.
- Epochs: each epoch shuffles the shard list (seeded by seed and epoch). With at least as many shards as slots,
  slot s reads shards s, s + slots, ... of that order, whole; with fewer, every slot reads every shard and keeps
  every slots-th pair. Either way each pair is in exactly one slot per epoch: none seen twice, none skipped.
- A shuffle buffer (`shuffle_buffer` pairs of undecoded bytes, seeded by seed, epoch and slot) mixes the pairs of
  a slot's shards; it drains at the end of the slot's epoch, so epochs do not mix. Images are decoded after it.
- Each slot is an endless stream of its epochs; slots whose shards hold more pairs run a few pairs behind the
  others (at most one shard per epoch), which only shifts where each slot's epoch boundary falls.
- Resume: the DataLoader takes batches from its workers in turn, so the step says how many pairs each slot has
  given. A resumed stream skips whole epochs by arithmetic and, in the current epoch, reads (without decoding)
  up to the pair where it stopped: it continues exactly, given the same ranks, workers and batch size.

Validation reads the first `val_max_pairs` pairs of the val shards in name order, split over the slots the
same way (no shuffle), once.
"""

import io
import json
import random
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import webdataset as wds
from torch.utils.data import IterableDataset, get_worker_info

from training.mps.config import DIMENSIONS
from training.trainer.pairs import PairRecord

SHARD_FOLDER = "webdataset"
SHARD_INDEX = "index.json"


@dataclass(frozen=True)
class Shard:
    path: str
    pairs: int


@dataclass(frozen=True)
class ShardPart:
    """Of one shard's first `shard.pairs` pairs (all of them, or a validation cap), the ones with
    index % stride == offset."""

    shard: Shard
    stride: int = 1
    offset: int = 0

    @property
    def pairs(self) -> int:
        return len(range(self.offset, self.shard.pairs, self.stride))


def split_shards(export_dir: Path, split: str) -> list[Shard]:
    """The split's non-empty shards in name order with their pair counts (from index.json, else from the tar
    headers). Empty shards are left out: a slot given only those would never yield a pair."""
    folder = export_dir / SHARD_FOLDER
    paths = sorted(folder.glob(f"{split}-*.tar"))
    index_path = folder / SHARD_INDEX
    counts = json.loads(index_path.read_text()) if index_path.is_file() else {}
    shards = [Shard(str(path), counts[path.name] if path.name in counts else _count_pairs(path)) for path in paths]
    return [shard for shard in shards if shard.pairs]


def _count_pairs(path: Path) -> int:
    with tarfile.open(path) as tar:
        return sum(1 for member in tar if member.name.endswith(".json"))


def slot_parts(shards: list[Shard], slot: int, slots: int) -> list[ShardPart]:
    """The parts of `shards` (in the given order) that one slot reads: whole shards when there are enough,
    else every slots-th pair of the concatenation."""
    if len(shards) >= slots:
        return [ShardPart(shard) for shard in shards[slot::slots]]
    parts, start = [], 0
    for shard in shards:
        parts.append(ShardPart(shard, stride=slots, offset=(slot - start) % slots))
        start += shard.pairs
    return parts


def epoch_shards(shards: list[Shard], seed: int, epoch: int) -> list[Shard]:
    order = list(shards)
    random.Random(f"shards-{seed}-{epoch}").shuffle(order)
    return order


def _read_part(part: ShardPart) -> Iterator[dict]:
    """The raw samples (bytes by member suffix) of a part, in shard order."""
    stream = wds.gopen(part.shard.path, "rb")
    try:
        samples = wds.tariterators.group_by_keys(
            wds.tariterators.tar_file_expander([{"url": part.shard.path, "stream": stream}])
        )
        for index, sample in enumerate(samples):
            if index >= part.shard.pairs:
                break
            if index % part.stride == part.offset:
                yield sample
    finally:
        stream.close()


def _suffix(sample: dict, side: str) -> bytes:
    for key, value in sample.items():
        if key.split(".")[0] == side:
            return value
    raise KeyError(f"pair {sample['__key__']} has no {side} image in {sample.get('__url__')}")


def pair_example(examples, sample: dict) -> dict[str, torch.Tensor]:
    """The tensors of one raw sample (its JSON record and two image byte strings)."""
    row = json.loads(sample["json"])
    labels = np.array([[row["labels"][d][0], row["labels"][d][1]] for d in DIMENSIONS], dtype=np.float32)
    record = PairRecord(row["pair_id"], row["prompt"], row["image_first"], row["image_second"], labels)
    return examples.example(record, io.BytesIO(_suffix(sample, "first")), io.BytesIO(_suffix(sample, "second")))


class _Slots:
    """This process's slot: rank and DataLoader worker."""

    def __init__(self, rank: int, world_size: int) -> None:
        worker = get_worker_info()
        self.workers, self.worker = (worker.num_workers, worker.id) if worker else (1, 0)
        self.count = world_size * self.workers
        self.rank = rank

    def slot(self, worker: int) -> int:
        return self.rank * self.workers + worker


class ShardPairs(IterableDataset):
    """The endless, shuffled training stream of one rank (see the module docstring)."""

    def __init__(
        self,
        shards: list[Shard],
        examples,
        *,
        rank: int,
        world_size: int,
        seed: int,
        shuffle_buffer: int,
        batch_size: int,
        start_batches: int = 0,
    ) -> None:
        if sum(shard.pairs for shard in shards) < 1:
            raise ValueError("no training pairs in the shards")
        self.shards, self.examples, self.rank, self.world_size = shards, examples, rank, world_size
        self.seed, self.shuffle_buffer, self.batch_size = seed, shuffle_buffer, batch_size
        self.start_batches = start_batches  # batches this rank's DataLoader had already given

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        slots = _Slots(self.rank, self.world_size)
        if sum(shard.pairs for shard in self.shards) < slots.count:
            raise ValueError(f"{slots.count} data slots (ranks x workers) need at least as many training pairs")
        # A resumed DataLoader starts again at worker 0, where the interrupted one would have gone on at worker
        # start_batches % workers: worker w plays the part of worker (w + start_batches) % workers.
        role = (slots.worker + self.start_batches) % slots.workers
        given = len(range(role, self.start_batches, slots.workers)) * self.batch_size
        for sample in self.slot_samples(slots.slot(role), slots.count, skip=given):
            yield {**pair_example(self.examples, sample), "epoch": torch.tensor(sample["__epoch__"])}

    def slot_samples(self, slot: int, slots: int, *, skip: int = 0) -> Iterator[dict]:
        """The raw samples of one slot, epoch after epoch, after the first `skip` of them."""
        epoch = 0
        while True:
            parts = slot_parts(epoch_shards(self.shards, self.seed, epoch), slot, slots)
            size = sum(part.pairs for part in parts)
            if skip >= size:  # a whole epoch already given: skipped without reading it
                skip -= size
                epoch += 1
                continue
            shuffle = wds.filters.shuffle(
                self.shuffle_buffer, self.shuffle_buffer, rng=random.Random(f"pairs-{self.seed}-{epoch}-{slot}")
            )
            for sample in shuffle(sample for part in parts for sample in _read_part(part)):
                if skip:
                    skip -= 1
                    continue
                yield {**sample, "__epoch__": epoch}
            epoch += 1


class ValidationShards(IterableDataset):
    """The first `max_pairs` val pairs in shard-name order, this rank's share, read once."""

    def __init__(self, shards: list[Shard], examples, *, rank: int, world_size: int, max_pairs: int) -> None:
        self.examples, self.rank, self.world_size = examples, rank, world_size
        self.shards, left = [], max_pairs
        for shard in shards:
            if left <= 0:
                break
            self.shards.append(Shard(shard.path, min(shard.pairs, left)))
            left -= shard.pairs

    def __len__(self) -> int:  # the pairs of all ranks: what the metrics are computed on
        return sum(shard.pairs for shard in self.shards)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        slots = _Slots(self.rank, self.world_size)
        for part in slot_parts(self.shards, slots.slot(slots.worker), slots.count):
            for sample in _read_part(part):
                yield pair_example(self.examples, sample)
