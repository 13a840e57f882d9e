"""Training pairs from a dataset export, decoded and preprocessed in DataLoader workers."""

import io
import json
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import Dataset, IterableDataset, Sampler, get_worker_info

from training.mps.config import DIMENSIONS
from training.mps.preprocess import image_transform
from training.mps.tokenizer import tokenize
from training.trainer.objective import TRAINING_PAD_ID

JSONL_NAME = "pairs.jsonl"
PARQUET_NAME = "pairs.parquet"
SHARD_FOLDER = "webdataset"


@dataclass(frozen=True)
class PairRecord:
    prompt: str
    image_first: str
    image_second: str
    labels: tuple[tuple[float, float], ...]  # one (p_first, p_second) per dimension, in DIMENSIONS order


def detect_format(export_dir: Path, requested: str = "auto") -> str:
    if requested != "auto":
        return requested
    for name, kind in ((JSONL_NAME, "jsonl"), (PARQUET_NAME, "parquet"), (SHARD_FOLDER, "webdataset")):
        if (export_dir / name).exists():
            return kind
    raise FileNotFoundError(f"{export_dir} holds no {JSONL_NAME}, {PARQUET_NAME} or {SHARD_FOLDER}/ export")


def _record(row: dict) -> PairRecord:
    labels = row["labels"]
    return PairRecord(
        prompt=row["prompt"],
        image_first=row["image_first"],
        image_second=row["image_second"],
        labels=tuple((float(labels[d][0]), float(labels[d][1])) for d in DIMENSIONS),
    )


def read_records(export_dir: Path, split: str, data_format: str = "auto") -> list[PairRecord]:
    """The export's pairs of one split (JSONL or Parquet), streamed from disk."""
    kind = detect_format(export_dir, data_format)
    if kind == "jsonl":
        with (export_dir / JSONL_NAME).open(encoding="utf-8") as lines:
            return [_record(row) for row in map(json.loads, lines) if row["split"] == split]
    if kind == "parquet":
        import pyarrow.parquet as pq

        records = []
        for batch in pq.ParquetFile(export_dir / PARQUET_NAME).iter_batches(batch_size=8192):
            records.extend(_record(row) for row in batch.to_pylist() if row["split"] == split)
        return records
    raise ValueError(f"read_records reads jsonl or parquet exports, not {kind}")


class PairExamples:
    """Turns a record and two image byte streams into tensors; shared by both dataset kinds."""

    def __init__(self, image_size: int) -> None:
        self.transform = image_transform(image_size)

    def example(self, record: PairRecord, first, second) -> dict[str, torch.Tensor]:
        pixels = torch.stack([self.transform(_rgb(first)), self.transform(_rgb(second))])  # [2, 3, H, W]
        return {
            "prompt_ids": tokenize([record.prompt], pad_id=TRAINING_PAD_ID)[0],  # [77]
            "pixel_values": pixels,
            "labels": torch.tensor(record.labels, dtype=torch.float32),  # [dimensions, 2]
        }


def _rgb(source) -> Image.Image:
    with Image.open(source) as image:
        return image.convert("RGB")


class PairDataset(Dataset):
    def __init__(self, records: list[PairRecord], image_root: Path, image_size: int) -> None:
        self.records, self.image_root, self.examples = records, image_root, PairExamples(image_size)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        record = self.records[index]
        return self.examples.example(
            record, self.image_root / record.image_first, self.image_root / record.image_second
        )


class ResumableSampler(Sampler[int]):
    """An endless, seeded stream of indices: a fresh permutation per epoch, this rank's share of each
    global batch, starting at any global position, so a resumed run sees exactly the batches it would have."""

    def __init__(self, size: int, *, global_batch: int, rank: int, world_size: int, seed: int, start: int = 0):
        if size < 1:
            raise ValueError("no training pairs")
        self.size, self.global_batch, self.rank, self.world_size = size, global_batch, rank, world_size
        self.seed, self.start = seed, start
        self.local_batch = global_batch // world_size

    def _permutation(self, epoch: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.size, generator=generator)

    def __iter__(self) -> Iterator[int]:
        position, epoch, order = self.start, -1, None
        while True:
            first = position + self.rank * self.local_batch
            for offset in range(self.local_batch):
                global_index = first + offset
                if global_index // self.size != epoch:
                    epoch = global_index // self.size
                    order = self._permutation(epoch)
                yield int(order[global_index % self.size])
            position += self.global_batch


class ShardPairs(IterableDataset):
    """WebDataset-style shards (`{split}-NNNNNN.tar` with `KEY.json`, `KEY.first.EXT`, `KEY.second.EXT`),
    shards spread over ranks and DataLoader workers, looped over epochs."""

    def __init__(self, export_dir: Path, split: str, image_size: int, *, rank: int = 0, world_size: int = 1):
        self.shards = sorted((export_dir / SHARD_FOLDER).glob(f"{split}-*.tar"))
        if not self.shards:
            raise FileNotFoundError(f"no {split} shards under {export_dir / SHARD_FOLDER}")
        self.examples, self.rank, self.world_size = PairExamples(image_size), rank, world_size

    def _my_shards(self) -> list[Path]:
        worker = get_worker_info()
        workers, worker_id = (worker.num_workers, worker.id) if worker else (1, 0)
        slot, slots = self.rank * workers + worker_id, self.world_size * workers
        return self.shards[slot::slots] or self.shards[slot % len(self.shards) :: slots]

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        while True:
            for shard in self._my_shards():
                yield from self._read_shard(shard)

    def _read_shard(self, shard: Path) -> Iterator[dict[str, torch.Tensor]]:
        members: dict[str, dict[str, bytes]] = {}
        with tarfile.open(shard) as tar:
            for member in tar:
                key, _, kind = member.name.partition(".")
                members.setdefault(key, {})[kind] = tar.extractfile(member).read()
                if {"json", "first", "second"} <= {k.split(".")[0] for k in members[key]}:
                    yield self._example(members.pop(key))

    def _example(self, parts: dict[str, bytes]) -> dict[str, torch.Tensor]:
        images = {kind.split(".")[0]: data for kind, data in parts.items()}
        record = _record(json.loads(images["json"]))
        return self.examples.example(record, io.BytesIO(images["first"]), io.BytesIO(images["second"]))
