"""JSONL / Parquet pairs as compact arrays, and images read through Django's storage API."""

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import override_settings

from datasets.exporters.parquet import ParquetExporter
from datasets.exporters.records import partial
from training.mps.config import DIMENSIONS
from training.trainer.data import PairExamples
from training.trainer.images import STORAGE, ImageFiles
from training.trainer.pairs import PairDataset, read_table
from training.trainer.simulate import export_row, write_simulated_export


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> Path:
    return write_simulated_export(tmp_path_factory.mktemp("pairs"), pairs=20, seed=8)


def _records(export: Path, split: str) -> list[dict]:
    lines = (export / "pairs.jsonl").read_text().splitlines()
    return [record for record in map(json.loads, lines) if record["split"] == split]


def test_jsonl_and_parquet_read_into_the_same_compact_table(export, tmp_path):
    writer = ParquetExporter(tmp_path)
    writer.write([export_row(record) for split in ("train", "val", "test") for record in _records(export, split)])
    partial(writer.close()[0]).rename(tmp_path / "pairs.parquet")

    expected = _records(export, "train")
    for kind, folder in (("jsonl", export), ("parquet", tmp_path)):
        table = read_table(folder, "train", kind)
        assert table.pair_ids.tolist() == [record["pair_id"] for record in expected]
        assert isinstance(table.prompts, pa.DictionaryArray) and len(table.prompts.dictionary) < len(table) == 16
        assert table.labels.dtype == np.float32 and table.labels.shape == (16, len(DIMENSIONS), 2)
        third = table[2]
        assert (third.prompt, third.image_first, third.image_second) == tuple(
            expected[2][key] for key in ("prompt", "image_first", "image_second")
        )
        assert third.labels.tolist() == [expected[2]["labels"][d] for d in DIMENSIONS]


@pytest.mark.django_db
def test_images_are_read_through_the_default_storage(export):
    table = read_table(export, "val", "jsonl")
    examples = PairExamples(image_size=32)
    from_folder = PairDataset(table, ImageFiles(str(export)), examples)[0]
    memory = {"default": {"BACKEND": "django.core.files.storage.InMemoryStorage"}}
    with override_settings(STORAGES=memory):
        record = table[0]
        for name in (record.image_first, record.image_second):
            default_storage.save(name, ContentFile((export / name).read_bytes()))
        from_storage = PairDataset(table, ImageFiles(STORAGE), examples)[0]
        assert not default_storage.exists(table[1].image_first)  # only what was put there: not the folder
    assert torch.equal(from_folder["pixel_values"], from_storage["pixel_values"])
    assert torch.equal(from_folder["labels"], from_storage["labels"])
