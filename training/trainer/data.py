"""Training and validation data from a dataset export, decoded and preprocessed in DataLoader workers.

JSONL / Parquet exports: a compact table of pairs (`pairs.py`), images read from a folder or Django's storage
(`images.py`), a seeded resumable sampler. WebDataset exports: shards shuffled per epoch and split over ranks
and workers (`shards.py`). Validation is split over the ranks either way, each with its DataLoader workers.
"""

from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Subset

from training.mps.preprocess import image_transform
from training.mps.tokenizer import tokenize
from training.trainer.config import TrainConfig
from training.trainer.images import ImageFiles
from training.trainer.objective import TRAINING_PAD_ID
from training.trainer.pairs import JSONL_NAME, PARQUET_NAME, PairDataset, PairRecord, ResumableSampler, read_table
from training.trainer.shards import SHARD_FOLDER, ShardPairs, ValidationShards, split_shards


def detect_format(export_dir: Path, requested: str = "auto") -> str:
    if requested != "auto":
        return requested
    for name, kind in ((JSONL_NAME, "jsonl"), (PARQUET_NAME, "parquet"), (SHARD_FOLDER, "webdataset")):
        if (export_dir / name).exists():
            return kind
    raise FileNotFoundError(f"{export_dir} holds no {JSONL_NAME}, {PARQUET_NAME} or {SHARD_FOLDER}/ export")


class PairExamples:
    """Turns a record and two image byte streams into tensors; shared by every dataset kind."""

    def __init__(self, image_size: int) -> None:
        self.transform = image_transform(image_size)

    def example(self, record: PairRecord, first, second) -> dict[str, torch.Tensor]:
        pixels = torch.stack([self.transform(_rgb(first)), self.transform(_rgb(second))])  # [2, 3, H, W]
        return {
            "pair_id": torch.tensor(record.pair_id),
            "prompt_ids": tokenize([record.prompt], pad_id=TRAINING_PAD_ID)[0],  # [77]
            "pixel_values": pixels,
            "labels": torch.from_numpy(record.labels.copy()),  # [dimensions, 2]
        }


def _rgb(source) -> Image.Image:
    with Image.open(source) as image:
        return image.convert("RGB")


def pair_dataset(config: TrainConfig, split: str, image_size: int, *, max_pairs: int | None = None) -> PairDataset:
    """A JSONL / Parquet export's split as a map-style dataset (the first `max_pairs` pairs when given)."""
    export_dir = Path(config.export_dir)
    table = read_table(export_dir, split, detect_format(export_dir, config.data_format))
    if max_pairs is not None:
        table = table.head(max_pairs)
    return PairDataset(table, ImageFiles(config.image_root), PairExamples(image_size))


def train_loader(config: TrainConfig, *, rank: int, world_size: int, image_size: int, start_step: int) -> DataLoader:
    """This rank's endless stream of training batches, from optimizer step `start_step` on."""
    export_dir = Path(config.export_dir)
    per_device = config.per_device_batch(world_size)
    common = {"batch_size": per_device, "num_workers": config.num_workers, "pin_memory": torch.cuda.is_available()}
    if detect_format(export_dir, config.data_format) == "webdataset":
        stream = ShardPairs(
            split_shards(export_dir, "train"),
            PairExamples(image_size),
            rank=rank,
            world_size=world_size,
            seed=config.seed,
            shuffle_buffer=config.shuffle_buffer,
            batch_size=per_device,
            start_batches=start_step * config.grad_accumulation,
        )
        return DataLoader(stream, **common)
    dataset = pair_dataset(config, "train", image_size)
    sampler = ResumableSampler(
        len(dataset),
        global_batch=per_device * world_size,
        rank=rank,
        world_size=world_size,
        seed=config.seed,
        start=start_step * config.batch_size,
    )
    return DataLoader(dataset, sampler=sampler, **common)


def val_loader(config: TrainConfig, *, rank: int, world_size: int, image_size: int) -> DataLoader | None:
    """This rank's share of the first `val_max_pairs` validation pairs (None when the export has none).

    Every rank gets a share and decodes it in its own workers; the counts are summed over ranks after."""
    export_dir = Path(config.export_dir)
    batch = max(1, config.batch_size // (world_size * config.grad_accumulation))
    if detect_format(export_dir, config.data_format) == "webdataset":
        shards = split_shards(export_dir, "val")
        dataset = ValidationShards(
            shards, PairExamples(image_size), rank=rank, world_size=world_size, max_pairs=config.val_max_pairs
        )
        total = len(dataset)
    else:
        full = pair_dataset(config, "val", image_size, max_pairs=config.val_max_pairs)
        dataset, total = Subset(full, range(rank, len(full), world_size)), len(full)
    if total == 0:
        return None
    return DataLoader(dataset, batch_size=batch, num_workers=_val_workers(config, dataset))


def _val_workers(config: TrainConfig, dataset: Dataset) -> int:
    # A map-style share smaller than the worker count would start workers with nothing to do.
    return min(config.num_workers, len(dataset)) if isinstance(dataset, Subset) else config.num_workers
