"""Exporting a frozen version: stream its items, then its raw judgements, once each, feed every requested
writer, then publish.

Publishing order makes an interrupted export harmless: data files are written as `NAME.partial`,
renamed when every writer has finished, and `manifest.json` (written as `manifest.json.partial`,
then renamed) comes last; its presence marks a complete export. A re-run finds either a complete
export of the same version and options (kept as it is, nothing rewritten) or anything else, which
it clears (leftover `.partial` files, stale data files, an old manifest) before writing afresh.
"""

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from django.utils import timezone

from datasets import selectors
from datasets.exporters import EXPORTERS, FORMATS
from datasets.exporters.jsonl import FILE_NAME as JSONL_NAME
from datasets.exporters.jsonl import JUDGEMENTS_NAME as JSONL_JUDGEMENTS_NAME
from datasets.exporters.parquet import FILE_NAME as PARQUET_NAME
from datasets.exporters.parquet import JUDGEMENTS_NAME as PARQUET_JUDGEMENTS_NAME
from datasets.exporters.records import PARTIAL_SUFFIX, partial, sha256_file
from datasets.exporters.webdataset import DEFAULT_SHARD_SIZE, INDEX_NAME
from datasets.exporters.webdataset import FOLDER as WEBDATASET_FOLDER
from datasets.models import DatasetStatus, DatasetVersion, Split

MANIFEST_NAME = "manifest.json"
# 2: exports carry the raw judgements; a complete export of format 1 lacks them and is written again.
MANIFEST_FORMAT = 2
SPLIT_ORDER = (Split.TRAIN.value, Split.VAL.value, Split.TEST.value)

Progress = Callable[[int, int], None]


class ExportError(ValueError):
    """The export cannot run as asked; the message says why."""


def formats_parse(value: str | list[str]) -> list[str]:
    names = value.split(",") if isinstance(value, str) else list(value)
    names = [name.strip() for name in names if name.strip()]
    unknown = sorted(set(names) - set(FORMATS))
    if unknown or not names:
        raise ExportError(f"unknown or no formats {unknown}; choose from {', '.join(FORMATS)}")
    return [name for name in FORMATS if name in names]


def dataset_export(
    *,
    version: DatasetVersion,
    formats: list[str],
    out_dir: Path,
    shard_size: int = DEFAULT_SHARD_SIZE,
    image_short_side: int = 0,
    progress: Progress | None = None,
) -> dict:
    """Write the version's files and manifest under out_dir; returns the manifest.

    `image_short_side` > 0 stores the WebDataset images pre-resized to that shorter side (JPEG)."""
    if version.status != DatasetStatus.FROZEN:
        raise ExportError(f"dataset version {version.name!r} is {version.status}; only a frozen version is exported")
    formats = formats_parse(formats)
    out_dir.mkdir(parents=True, exist_ok=True)
    options = {"version": version.name, "version_id": version.pk, "formats": formats, "shard_size": shard_size}
    if image_short_side:  # only when set, so that complete exports made before the option stay complete
        options["image_short_side"] = image_short_side
    complete = _complete_manifest(out_dir, options)
    if complete is not None:
        return complete
    _clear(out_dir)
    writers = [EXPORTERS[name](out_dir, shard_size=shard_size, image_short_side=image_short_side) for name in formats]
    total, done = version.stats.get("pairs", 0) + version.stats.get("judgements", {}).get("rows", 0), 0
    # Every writer takes the items (`write`), then the raw judgements (`write_judgements`).
    for chunks, method in ((_item_chunks(version), "write"), (_judgement_chunks(version), "write_judgements")):
        for rows in chunks:
            for writer in writers:
                getattr(writer, method)(rows)
            done += len(rows)
            if progress:
                progress(done, total)
    paths = [path for writer in writers for path in writer.close()]
    for path in paths:
        os.replace(partial(path), path)
    return _manifest_write(out_dir, version, options, paths)


def _item_chunks(version: DatasetVersion) -> Iterator[list[tuple]]:
    """Items in split then id order, in lists of STREAM_CHUNK rows, from a server-side cursor."""
    return _chunks(selectors.export_items(version=version, split=split) for split in SPLIT_ORDER)


def _judgement_chunks(version: DatasetVersion) -> Iterator[list[tuple]]:
    """Raw judgements in (pair, annotator) order, in lists of STREAM_CHUNK rows."""
    return _chunks([selectors.export_judgements(version=version)])


def _chunks(querysets) -> Iterator[list[tuple]]:
    chunk: list[tuple] = []
    for queryset in querysets:
        for row in queryset.iterator(chunk_size=selectors.STREAM_CHUNK):
            chunk.append(row)
            if len(chunk) == selectors.STREAM_CHUNK:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


def _complete_manifest(out_dir: Path, options: dict) -> dict | None:
    path = out_dir / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if manifest.get("manifest_format") != MANIFEST_FORMAT or manifest.get("options") != options:
        return None
    for entry in manifest.get("files", []):
        file = out_dir / entry["path"]
        if not file.is_file() or file.stat().st_size != entry["size"]:
            return None
    return manifest


def _clear(out_dir: Path) -> None:
    """Remove what an earlier, unfinished or different export left (only names an export writes)."""
    names = (MANIFEST_NAME, JSONL_NAME, PARQUET_NAME, JSONL_JUDGEMENTS_NAME, PARQUET_JUDGEMENTS_NAME)
    candidates = [out_dir / name for name in names]
    candidates += [partial(path) for path in candidates]
    shards = out_dir / WEBDATASET_FOLDER
    if shards.is_dir():
        files = [shards / INDEX_NAME, shards / JSONL_JUDGEMENTS_NAME]
        candidates += [*shards.glob("*.tar"), *shards.glob(f"*.tar{PARTIAL_SUFFIX}"), *files, *map(partial, files)]
    for path in candidates:
        path.unlink(missing_ok=True)


def _manifest_write(out_dir: Path, version: DatasetVersion, options: dict, paths: list[Path]) -> dict:
    files = [
        {"path": path.relative_to(out_dir).as_posix(), "size": path.stat().st_size, "sha256": sha256_file(path)}
        for path in paths
    ]
    manifest = {
        "manifest_format": MANIFEST_FORMAT,
        "options": options,
        "version": version.name,
        "frozen_at": version.frozen_at.isoformat(),
        "config": version.config,
        "counts": {key: version.stats.get(key) for key in ("pairs", "splits", "prompts", "categories", "judgements")},
        "columns": list(selectors.EXPORT_COLUMNS[:13]) + ["labels"],
        "judgement_columns": list(selectors.JUDGEMENT_EXPORT_COLUMNS),
        "files": files,
        "exported_at": timezone.now().isoformat(),
    }
    target = out_dir / MANIFEST_NAME
    partial(target).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    os.replace(partial(target), target)
    return manifest
