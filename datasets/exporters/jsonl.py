import json
from pathlib import Path

from datasets.exporters.records import judgement_record, partial, row_record

FILE_NAME = "pairs.jsonl"
JUDGEMENTS_NAME = "judgements.jsonl"


class JsonLines:
    """One JSON object a line, written under the `.partial` name; `record` turns a row into the object."""

    def __init__(self, path: Path, record) -> None:
        self.path, self._record = path, record
        self._handle = partial(path).open("w", encoding="utf-8", buffering=1 << 20)
        self._encode = json.JSONEncoder(ensure_ascii=False).encode

    def write(self, rows: list[tuple]) -> None:
        encode, record = self._encode, self._record
        self._handle.write("".join(encode(record(row)) + "\n" for row in rows))

    def close(self) -> Path:
        self._handle.close()
        return self.path


class JsonlExporter:
    """All splits in one file, one pair a line, in split then item order; the raw judgements beside it."""

    def __init__(self, out_dir: Path, **_options) -> None:
        self._pairs = JsonLines(out_dir / FILE_NAME, row_record)
        self._judgements = JsonLines(out_dir / JUDGEMENTS_NAME, judgement_record)

    def write(self, rows: list[tuple]) -> None:
        self._pairs.write(rows)

    def write_judgements(self, rows: list[tuple]) -> None:
        self._judgements.write(rows)

    def close(self) -> list[Path]:
        return [self._pairs.close(), self._judgements.close()]
