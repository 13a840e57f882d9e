"""An export's pairs (JSONL or Parquet) as a compact table, and the map-style dataset and sampler over it.

918k pairs as Python dicts cost gigabytes in every process and DataLoader worker (and copy-on-write turns
them into private copies as soon as reference counts are touched). Here one split is a handful of Arrow and
NumPy arrays: prompt and image names dictionary-encoded (66k prompts, 607k images at MHP scale), labels one
float32 array. Workers read them without writing a page.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json
import pyarrow.parquet as pq
import torch
from torch.utils.data import Dataset, Sampler

from training.mps.config import DIMENSIONS
from training.trainer.images import ImageFiles

JSONL_NAME = "pairs.jsonl"
PARQUET_NAME = "pairs.parquet"

_LABEL = pa.list_(pa.float64())
# The columns the trainer reads; an explicit schema keeps JSON type inference out of it (a null in the
# first block would otherwise fix a column's type) and ignores the export's other fields.
READ_SCHEMA = pa.schema(
    [
        ("pair_id", pa.int64()),
        ("split", pa.string()),
        ("prompt", pa.string()),
        ("image_first", pa.string()),
        ("image_second", pa.string()),
        ("labels", pa.struct([(d, _LABEL) for d in DIMENSIONS])),
    ]
)


@dataclass(frozen=True)
class PairRecord:
    pair_id: int
    prompt: str
    image_first: str
    image_second: str
    labels: np.ndarray  # [dimensions, 2] float32: (p_first, p_second) in DIMENSIONS order


@dataclass
class PairTable:
    pair_ids: np.ndarray  # [N] int64
    prompts: pa.DictionaryArray  # [N]
    images_first: pa.DictionaryArray
    images_second: pa.DictionaryArray
    labels: np.ndarray  # [N, dimensions, 2] float32

    def __len__(self) -> int:
        return len(self.pair_ids)

    def __getitem__(self, index: int) -> PairRecord:
        return PairRecord(
            pair_id=int(self.pair_ids[index]),
            prompt=self.prompts[index].as_py(),
            image_first=self.images_first[index].as_py(),
            image_second=self.images_second[index].as_py(),
            labels=self.labels[index],
        )

    def head(self, count: int) -> "PairTable":
        return PairTable(
            self.pair_ids[:count],
            self.prompts[:count],
            self.images_first[:count],
            self.images_second[:count],
            self.labels[:count],
        )


def read_table(export_dir: Path, split: str, kind: str) -> PairTable:
    """One split of a `jsonl` or `parquet` export, in file order."""
    if kind == "jsonl":
        options = pa_json.ParseOptions(explicit_schema=READ_SCHEMA, unexpected_field_behavior="ignore")
        table = pa_json.read_json(export_dir / JSONL_NAME, parse_options=options)
    elif kind == "parquet":
        table = pq.read_table(export_dir / PARQUET_NAME, columns=READ_SCHEMA.names, filters=[("split", "=", split)])
    else:
        raise ValueError(f"read_table reads jsonl or parquet exports, not {kind}")
    table = table.filter(pc.equal(table["split"], split)).combine_chunks()
    return PairTable(
        pair_ids=table["pair_id"].to_numpy(),
        prompts=pc.dictionary_encode(table["prompt"]).combine_chunks(),
        images_first=pc.dictionary_encode(table["image_first"]).combine_chunks(),
        images_second=pc.dictionary_encode(table["image_second"]).combine_chunks(),
        labels=_labels(table["labels"].combine_chunks()),
    )


def _labels(labels: pa.StructArray) -> np.ndarray:
    """[N, dimensions, 2] float32 from the struct of dimension -> [p_first, p_second]."""
    per_dimension = []
    for dimension in DIMENSIONS:
        column = labels.field(dimension)
        if column.null_count or pc.any(pc.not_equal(pc.list_value_length(column), 2)).as_py():
            raise ValueError(f"every pair needs a [p_first, p_second] label for {dimension}")
        per_dimension.append(column.flatten().to_numpy(zero_copy_only=False).reshape(-1, 2))
    return np.stack(per_dimension, axis=1).astype(np.float32)


class PairDataset(Dataset):
    """Pairs of a table, their images opened through `ImageFiles`, turned into tensors by `examples`."""

    def __init__(self, table: PairTable, images: ImageFiles, examples) -> None:
        self.table, self.images, self.examples = table, images, examples

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        record = self.table[index]
        with self.images.open(record.image_first) as first, self.images.open(record.image_second) as second:
            return self.examples.example(record, first, second)


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
