"""One exported pair as a JSON-ready record, and the helpers every writer shares."""

import hashlib
from pathlib import Path

from annotation.dimensions import DIMENSION_KEYS
from datasets.selectors import JUDGEMENT_EXPORT_COLUMNS

PARTIAL_SUFFIX = ".partial"
_LABEL_START = 13  # index of the first label column in EXPORT_COLUMNS


def row_record(row: tuple) -> dict:
    """The JSONL / WebDataset record of one exported row (EXPORT_COLUMNS order)."""
    labels = {key: [row[_LABEL_START + 2 * i], row[_LABEL_START + 2 * i + 1]] for i, key in enumerate(DIMENSION_KEYS)}
    return {
        "pair_id": row[0],
        "split": row[1],
        "prompt_id": row[2],
        "prompt": row[3],
        "category": row[4],
        "image_first": row[5],
        "image_second": row[6],
        "image_first_sha256": row[7],
        "image_second_sha256": row[8],
        "generator_first": row[9],
        "generator_second": row[10],
        "labels": labels,
        "annotator_count": row[11],
        "agreement": row[12],
    }


def judgement_record(row: tuple) -> dict:
    """The JSONL record of one exported raw judgement (a `selectors.export_judgements` row)."""
    *head, created_at, split = row
    record = dict(zip(JUDGEMENT_EXPORT_COLUMNS, head, strict=False))
    record["created_at"] = created_at.isoformat()
    record["in_version"], record["split"] = bool(split), split or None
    return record


def partial(path: Path) -> Path:
    return path.with_name(path.name + PARTIAL_SUFFIX)


def sha256_file(path: Path, *, block: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(block):
            digest.update(chunk)
    return digest.hexdigest()
