"""Public benchmark files read into EvaluationSet / EvaluationItem rows.

Each reader yields BenchmarkItem(external_id, prompt, images, ranking) and refuses a malformed file
with a message naming the item; the import runs in one transaction, so a refused file leaves nothing.
Rankings are stored with 1 = best and ties sharing a rank, as ImageReward writes them; a file that
counts from 0 (HPD v2's test file does) is shifted by one. Images are paths relative to the set's
image root, or ids when the images are absent (then only score-file evaluation is possible).

- imagereward: a JSON list of {id, prompt, generations: [path...], ranking: [int...]}.
- hpdv2: a JSON list of {prompt, image_path: [path...], rank: [int...], raw_annotations}; the id is
  the item's position unless it has an `id`.
- pickapic: a Parquet file with caption, label_0/label_1 (1/0, 0/1 or 0.5/0.5 for a tie) and either
  jpg_0/jpg_1 (image bytes) or image_0_uid/image_1_uid. Bytes are written to `--images DIR` as
  `{sha256}.jpg`; without a folder the sha256 is kept as the image id. `ranking_id` is the id when present.
"""

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from django.db import transaction
from django.utils.text import slugify

from datasets.bulk import rows_insert
from datasets.models import BenchmarkKind, EvaluationItem, EvaluationSet

WRITE_BATCH = 1_000
PICKAPIC_BATCH = 512  # rows per Parquet read: Pick-a-Pic rows carry two images each


class BenchmarkFileError(ValueError):
    """The file is not a valid benchmark file of its kind; the message says where and why."""


@dataclass(frozen=True)
class BenchmarkItem:
    external_id: str
    prompt: str
    images: list[str]
    ranking: list[int]


def _json_list(path: Path, kind: str) -> list:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BenchmarkFileError(f"{path.name} is not valid {kind} JSON: {error}") from None
    if not isinstance(data, list):
        raise BenchmarkFileError(f"{path.name}: a {kind} file is a JSON list of items, not {type(data).__name__}")
    return data


def _checked(where: str, prompt, images, ranking, *, images_key: str, ranking_key: str) -> tuple[list, list]:
    if not isinstance(prompt, str) or not prompt.strip():
        raise BenchmarkFileError(f"{where}: `prompt` is missing or empty")
    if not isinstance(images, list) or len(images) < 2 or not all(isinstance(i, str) and i for i in images):
        raise BenchmarkFileError(f"{where}: `{images_key}` must list at least two image paths")
    if not isinstance(ranking, list) or not all(isinstance(r, int) and not isinstance(r, bool) for r in ranking):
        raise BenchmarkFileError(f"{where}: `{ranking_key}` must be a list of integers")
    if len(ranking) != len(images):
        raise BenchmarkFileError(f"{where}: {len(ranking)} ranks for {len(images)} images")
    if min(ranking) < 0:
        raise BenchmarkFileError(f"{where}: ranks must not be negative")
    return images, ranking


def imagereward_items(path: Path) -> Iterator[BenchmarkItem]:
    for index, item in enumerate(_json_list(path, "ImageReward"), start=1):
        if not isinstance(item, dict) or "id" not in item:
            raise BenchmarkFileError(f"item {index}: an ImageReward item is an object with an `id`")
        where = f"item {index} (id {item['id']})"
        images, ranking = _checked(
            where, item.get("prompt"), item.get("generations"), item.get("ranking"), images_key="generations",
            ranking_key="ranking",
        )  # fmt: skip
        if min(ranking) < 1:
            raise BenchmarkFileError(f"{where}: ImageReward ranks start at 1")
        yield BenchmarkItem(str(item["id"]), item["prompt"], images, ranking)


def hpdv2_items(path: Path) -> Iterator[BenchmarkItem]:
    for index, item in enumerate(_json_list(path, "HPD v2"), start=1):
        if not isinstance(item, dict):
            raise BenchmarkFileError(f"item {index}: an HPD v2 item is an object")
        external_id = str(item.get("id", index - 1))
        where = f"item {index}"
        images, ranking = _checked(
            where, item.get("prompt"), item.get("image_path"), item.get("rank"), images_key="image_path",
            ranking_key="rank",
        )  # fmt: skip
        shift = 1 if min(ranking) == 0 else 0
        yield BenchmarkItem(external_id, item["prompt"], images, [rank + shift for rank in ranking])


_PICKAPIC_RANKS = {(1.0, 0.0): [1, 2], (0.0, 1.0): [2, 1], (0.5, 0.5): [1, 1]}


def pickapic_items(path: Path, images_dir: Path | None) -> Iterator[BenchmarkItem]:
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as error:
        raise BenchmarkFileError(f"{path.name} is not a Parquet file: {error}") from None
    names = set(parquet.schema_arrow.names)
    image_columns = next(
        (pair for pair in (("jpg_0", "jpg_1"), ("image_0_uid", "image_1_uid")) if set(pair) <= names), None
    )
    missing = {"caption", "label_0", "label_1"} - names
    if missing or image_columns is None:
        wanted = sorted(missing) + ([] if image_columns else ["jpg_0/jpg_1 or image_0_uid/image_1_uid"])
        raise BenchmarkFileError(f"{path.name}: a Pick-a-Pic file needs the columns {', '.join(wanted)}")
    columns = ["caption", "label_0", "label_1", *image_columns] + (["ranking_id"] if "ranking_id" in names else [])
    row_number = 0
    for batch in parquet.iter_batches(batch_size=PICKAPIC_BATCH, columns=columns):
        for row in batch.to_pylist():
            row_number += 1
            yield _pickapic_item(row, row_number, image_columns, images_dir)


def _pickapic_item(row: dict, number: int, image_columns: tuple[str, str], images_dir: Path | None) -> BenchmarkItem:
    where = f"row {number}"
    if not isinstance(row["caption"], str) or not row["caption"].strip():
        raise BenchmarkFileError(f"{where}: `caption` is missing or empty")
    try:
        ranking = _PICKAPIC_RANKS[(float(row["label_0"]), float(row["label_1"]))]
    except (KeyError, TypeError):
        raise BenchmarkFileError(
            f"{where}: label_0/label_1 are {row['label_0']}/{row['label_1']}, expected 1/0, 0/1 or 0.5/0.5"
        ) from None
    images = [_pickapic_image(row[column], where, images_dir) for column in image_columns]
    external_id = str(row["ranking_id"]) if row.get("ranking_id") is not None else str(number - 1)
    return BenchmarkItem(external_id, row["caption"], images, ranking)


def _pickapic_image(value, where: str, images_dir: Path | None) -> str:
    if isinstance(value, str) and value:
        return value
    if not isinstance(value, bytes) or not value:
        raise BenchmarkFileError(f"{where}: an image is neither bytes nor a uid")
    digest = hashlib.sha256(value).hexdigest()
    if images_dir is None:
        return digest
    target = images_dir / f"{digest}.jpg"
    if not target.exists():
        # Content-addressed: a file left by a refused import is the same bytes a re-run would write.
        target.write_bytes(value)
    return target.name


def benchmark_items(*, kind: str, path: Path, images_dir: Path | None) -> Iterator[BenchmarkItem]:
    if kind == BenchmarkKind.IMAGEREWARD:
        return imagereward_items(path)
    if kind == BenchmarkKind.HPDV2:
        return hpdv2_items(path)
    if kind == BenchmarkKind.PICKAPIC:
        return pickapic_items(path, images_dir)
    raise BenchmarkFileError(f"unknown benchmark {kind!r}; choose imagereward, hpdv2 or pickapic")


def benchmark_import(*, kind: str, path: Path, images_dir: Path | None = None, name: str = "") -> EvaluationSet:
    """Store the file as one evaluation set; refuses an existing name or a malformed file, leaving nothing."""
    if not path.is_file():
        raise BenchmarkFileError(f"no such file: {path}")
    if images_dir is not None and not images_dir.is_dir():
        raise BenchmarkFileError(f"no such image folder: {images_dir}")
    name = name or slugify(f"{kind}-{path.stem}")[:100]
    if EvaluationSet.objects.filter(name=name).exists():
        raise BenchmarkFileError(f"evaluation set {name!r} already exists; choose another --name")
    with transaction.atomic():
        evaluation_set = EvaluationSet.objects.create(
            name=name, kind=kind, source_file=str(path), image_root=str(images_dir or "")
        )
        count = _items_write(evaluation_set, benchmark_items(kind=kind, path=path, images_dir=images_dir))
        if not count:
            raise BenchmarkFileError(f"{path.name} holds no items")
        evaluation_set.item_count = count
        evaluation_set.save(update_fields=["item_count"])
    return evaluation_set


def _items_write(evaluation_set: EvaluationSet, items: Iterator[BenchmarkItem]) -> int:
    seen: set[str] = set()

    def rows():
        for item in items:
            if item.external_id in seen:
                raise BenchmarkFileError(f"id {item.external_id} appears twice")
            seen.add(item.external_id)
            yield EvaluationItem(evaluation_set=evaluation_set, external_id=item.external_id, prompt=item.prompt,
                                 images=item.images, ranking=item.ranking)  # fmt: skip

    return rows_insert(EvaluationItem, rows(), batch_size=WRITE_BATCH)
