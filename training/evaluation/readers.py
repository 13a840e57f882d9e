"""Annotation and score files read into the protocols' plain types (no torch, no Django).

Every malformed file raises AnnotationFileError naming the file, the item and the problem.

- ImageReward test JSON: a list of {id, prompt, generations: [path...], ranking: [int...]};
  image keys are the `generations` paths.
- HPD v2 test JSON: a list of {prompt, image_path: [path...], rank: [int...], raw_annotations};
  image keys are the `image_path` paths; ranks may count from 0 (only their order matters).
- Pick-a-Pic Parquet: caption, label_0/label_1 (1/0, 0/1, 0.5/0.5 for a tie) and images as
  image_0_uid/image_1_uid (the uids are the image keys) or, without uid columns, jpg_0/jpg_1 bytes,
  whose keys are ``f"{row}_0"`` and ``f"{row}_1"`` with ``row`` the 0-based row number in the file.
- MHP export `pairs.jsonl`: image keys are `image_first`/`image_second` (storage-relative paths),
  the label of a dimension is `labels[dimension]`; optionally only one split.
- Scores: a JSON object from image key to a finite number.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from pathlib import Path

from training.evaluation.protocols import LabelledPair, RankedItem

PICKAPIC_BATCH = 1024  # Parquet rows per read: a Pick-a-Pic row can carry two full images
EXPORT_FILE_NAME = "pairs.jsonl"


class AnnotationFileError(ValueError):
    """A benchmark or score file is missing or malformed; the message names the file and the problem."""


def _json_file(path: Path, what: str):
    if not path.is_file():
        raise AnnotationFileError(f"no such {what} file: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise AnnotationFileError(f"{path}: not a {what} JSON file: {error}") from None


def _json_list(path: Path, what: str) -> list:
    data = _json_file(path, what)
    if not isinstance(data, list):
        raise AnnotationFileError(f"{path}: a {what} file is a JSON list of items, not a {type(data).__name__}")
    return data


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _ranked_item(where: str, item, *, images_key: str, ranks_key: str) -> RankedItem:
    if not isinstance(item, dict):
        raise AnnotationFileError(f"{where}: an item is a JSON object, not a {type(item).__name__}")
    prompt, images, ranks = item.get("prompt"), item.get(images_key), item.get(ranks_key)
    if not isinstance(prompt, str) or not prompt.strip():
        raise AnnotationFileError(f"{where}: `prompt` is missing or empty")
    if not isinstance(images, list) or not images or not all(isinstance(i, str) and i for i in images):
        raise AnnotationFileError(f"{where}: `{images_key}` must be a non-empty list of image paths")
    if not isinstance(ranks, list) or not all(_is_int(rank) for rank in ranks):
        raise AnnotationFileError(f"{where}: `{ranks_key}` must be a list of integers")
    if len(ranks) != len(images):
        raise AnnotationFileError(f"{where}: {len(ranks)} ranks for {len(images)} images")
    return RankedItem(prompt, images, ranks)


def read_imagereward(path: Path) -> list[RankedItem]:
    items = []
    for index, item in enumerate(_json_list(path, "ImageReward test"), start=1):
        where = f"{path}: item {index}" + (f" (id {item['id']})" if isinstance(item, dict) and "id" in item else "")
        items.append(_ranked_item(where, item, images_key="generations", ranks_key="ranking"))
    return items


def read_hpdv2(path: Path) -> list[RankedItem]:
    return [
        _ranked_item(f"{path}: item {index}", item, images_key="image_path", ranks_key="rank")
        for index, item in enumerate(_json_list(path, "HPD v2 test"), start=1)
    ]


def _label(where: str, values: Sequence) -> tuple[float, float]:
    numbers = [value for value in values if isinstance(value, int | float) and not isinstance(value, bool)]
    if len(values) != 2 or len(numbers) != 2 or not all(0 <= n <= 1 for n in numbers):
        raise AnnotationFileError(f"{where}: a label is two probabilities [p_a, p_b] in 0-1, got {list(values)!r}")
    return float(numbers[0]), float(numbers[1])


def _pickapic_columns(path: Path, names: set[str]) -> tuple[str, str]:
    image_columns = next(
        (pair for pair in (("image_0_uid", "image_1_uid"), ("jpg_0", "jpg_1")) if set(pair) <= names), None
    )
    missing = sorted({"caption", "label_0", "label_1"} - names)
    if image_columns is None:
        missing.append("image_0_uid/image_1_uid or jpg_0/jpg_1")
    if missing:
        raise AnnotationFileError(f"{path}: a Pick-a-Pic file needs the columns {', '.join(missing)}")
    return image_columns


def _pickapic_rows(path: Path) -> tuple[Iterator[dict], bool]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not path.is_file():
        raise AnnotationFileError(f"no such Pick-a-Pic file: {path}")
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as error:
        raise AnnotationFileError(f"{path}: not a Parquet file: {error}") from None
    image_columns = _pickapic_columns(path, set(parquet.schema_arrow.names))
    by_uid = image_columns[0] == "image_0_uid"
    # Only the uids are read, never the image bytes: the row number is all a bytes-only file needs.
    columns = ["caption", "label_0", "label_1", *(image_columns if by_uid else [])]
    rows = (
        row for batch in parquet.iter_batches(batch_size=PICKAPIC_BATCH, columns=columns) for row in batch.to_pylist()
    )
    return rows, by_uid


def read_pickapic(path: Path) -> list[LabelledPair]:
    rows, by_uid = _pickapic_rows(path)
    pairs = []
    for number, row in enumerate(rows):
        where = f"{path}: row {number}"
        if not isinstance(row["caption"], str):
            raise AnnotationFileError(f"{where}: `caption` is missing")
        if by_uid:
            image_a, image_b = row["image_0_uid"], row["image_1_uid"]
            if not (isinstance(image_a, str) and image_a and isinstance(image_b, str) and image_b):
                raise AnnotationFileError(f"{where}: image_0_uid/image_1_uid must both be set")
        else:
            image_a, image_b = f"{number}_0", f"{number}_1"
        label = _label(where, [row["label_0"], row["label_1"]])
        pairs.append(LabelledPair(image_a, image_b, label, row["caption"]))
    return pairs


def _export_record(where: str, line: str) -> dict:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise AnnotationFileError(f"{where}: not JSON: {error}") from None
    if not isinstance(record, dict):
        raise AnnotationFileError(f"{where}: a record is a JSON object")
    missing = [key for key in ("split", "prompt", "image_first", "image_second", "labels") if key not in record]
    if missing:
        raise AnnotationFileError(f"{where}: missing {', '.join(missing)}")
    if not isinstance(record["labels"], dict):
        raise AnnotationFileError(f"{where}: `labels` maps each dimension to [p_first, p_second]")
    return record


def export_file(path: Path) -> Path:
    """The `pairs.jsonl` of an export: the file itself or the export folder holding it."""
    return path / EXPORT_FILE_NAME if path.is_dir() else path


def read_export_pairs(
    path: Path, *, dimensions: Sequence[str], split: str | None = None
) -> dict[str, list[LabelledPair]]:
    """{dimension: pairs} of an export's `pairs.jsonl`, only ``split`` when given."""
    path = export_file(path)
    if not path.is_file():
        raise AnnotationFileError(f"no such export file: {path}")
    pairs: dict[str, list[LabelledPair]] = {dimension: [] for dimension in dimensions}
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}: line {number}"
            record = _export_record(where, line)
            if split is not None and record["split"] != split:
                continue
            for dimension in dimensions:
                if dimension not in record["labels"]:
                    raise AnnotationFileError(f"{where}: no label for dimension {dimension!r}")
                label = _label(f"{where} ({dimension})", record["labels"][dimension])
                pairs[dimension].append(
                    LabelledPair(record["image_first"], record["image_second"], label, record["prompt"])
                )
    return pairs


def read_scores(path: Path) -> dict[str, float]:
    data = _json_file(path, "scores")
    if not isinstance(data, dict):
        raise AnnotationFileError(f"{path}: a scores file is a JSON object from image path to score")
    for key, value in data.items():
        if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
            raise AnnotationFileError(f"{path}: the score of {key!r} is {value!r}, not a finite number")
    return {key: float(value) for key, value in data.items()}
