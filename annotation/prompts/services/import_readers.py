"""Streaming readers for prompt files: JSONL, CSV, Parquet, plain text. One row at a time, never the whole file.

A reader yields `SourceRow`s. A row that cannot be read (a line that is not JSON, not UTF-8) comes out
with `error` set, so the import reports it and goes on; a file that cannot be read at all raises
`ImportFileError`.
"""

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

FORMATS = ("jsonl", "csv", "parquet", "txt")
_SUFFIXES = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".txt": "txt",
}
COLUMNS = ("prompt", "source", "source_id", "category")
# Larger than any accepted prompt, so an over-long field is reported as "too long", not a CSV error.
csv.field_size_limit(16 * 1024 * 1024)
_PARQUET_BATCH = 1000
_BINARY_SNIFF_BYTES = 8192


class ImportFileError(ValueError):
    """The file cannot be read as prompts at all; nothing is imported."""


@dataclass
class SourceRow:
    line: int
    prompt: object = None
    source: object = None
    source_id: object = None
    category: object = None
    error: str = ""


def format_for_name(name: str) -> str:
    suffix = Path(name).suffix.lower()
    if suffix not in _SUFFIXES:
        known = ", ".join(sorted(_SUFFIXES))
        raise ImportFileError(f"cannot tell the format of {Path(name).name!r}: expected a name ending in {known}")
    return _SUFFIXES[suffix]


def rows_read(path: Path, file_format: str) -> Iterator[SourceRow]:
    readers = {"jsonl": _jsonl_rows, "csv": _csv_rows, "parquet": _parquet_rows, "txt": _text_rows}
    if file_format not in readers:
        raise ImportFileError(f"unknown format {file_format!r}; expected one of {', '.join(FORMATS)}")
    return readers[file_format](path)


def _decoded_lines(path: Path) -> Iterator[tuple[int, str | None]]:
    """(line number, text or None when the line is not UTF-8), the trailing newline removed."""
    with open(path, "rb") as handle:
        if b"\0" in handle.read(_BINARY_SNIFF_BYTES):
            raise ImportFileError("this is a binary file, not text")
        handle.seek(0)
        for number, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError:
                yield number, None
                continue
            yield number, text.rstrip("\r\n")


def _jsonl_rows(path: Path) -> Iterator[SourceRow]:
    for number, text in _decoded_lines(path):
        if text is None:
            yield SourceRow(line=number, error="not UTF-8 text")
        elif not text.strip():
            yield SourceRow(line=number, error="empty")
        else:
            yield _jsonl_row(number, text)


def _jsonl_row(number: int, text: str) -> SourceRow:
    try:
        record = json.loads(text)
    except json.JSONDecodeError as error:
        return SourceRow(line=number, error=f"not JSON ({error.msg})")
    except ValueError as error:
        # An integer of more than 4,300 digits (Python's limit on int parsing).
        return SourceRow(line=number, error=f"not JSON ({error})")
    except RecursionError:
        return SourceRow(line=number, error="not JSON (nested too deeply)")
    if not isinstance(record, dict):
        return SourceRow(line=number, error="not a JSON object")
    return SourceRow(line=number, **{column: record.get(column) for column in COLUMNS})


def _text_rows(path: Path) -> Iterator[SourceRow]:
    for number, text in _decoded_lines(path):
        yield (
            SourceRow(line=number, prompt=text) if text is not None else SourceRow(line=number, error="not UTF-8 text")
        )


def _csv_rows(path: Path) -> Iterator[SourceRow]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            if not reader.fieldnames or "prompt" not in reader.fieldnames:
                raise ImportFileError(f"the CSV header has no 'prompt' column (found: {reader.fieldnames or 'none'})")
            for record in reader:
                yield SourceRow(line=reader.line_num, **{column: record.get(column) for column in COLUMNS})
    except UnicodeDecodeError as error:
        raise ImportFileError(f"the CSV file is not UTF-8 text ({error.reason} at byte {error.start})") from error
    except csv.Error as error:
        raise ImportFileError(f"the CSV file cannot be parsed: {error}") from error


def _parquet_rows(path: Path) -> Iterator[SourceRow]:
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as error:
        raise ImportFileError(f"not a readable Parquet file: {error}") from error
    present = [column for column in COLUMNS if column in parquet.schema_arrow.names]
    if "prompt" not in present:
        raise ImportFileError(f"the Parquet file has no 'prompt' column (found: {parquet.schema_arrow.names})")
    number = 0
    try:
        for batch in parquet.iter_batches(batch_size=_PARQUET_BATCH, columns=present):
            for record in batch.to_pylist():
                number += 1
                yield SourceRow(line=number, **record)
    except (pa.ArrowException, OSError) as error:
        raise ImportFileError(f"the Parquet file cannot be read past row {number}: {error}") from error
