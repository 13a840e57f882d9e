import json
from pathlib import Path

from datasets.exporters.records import partial, row_record

FILE_NAME = "pairs.jsonl"


class JsonlExporter:
    """All splits in one file, one pair a line, in split then item order."""

    def __init__(self, out_dir: Path, **_options) -> None:
        self.path = out_dir / FILE_NAME
        self._handle = partial(self.path).open("w", encoding="utf-8", buffering=1 << 20)
        self._encode = json.JSONEncoder(ensure_ascii=False).encode

    def write(self, rows: list[tuple]) -> None:
        encode = self._encode
        self._handle.write("".join(encode(row_record(row)) + "\n" for row in rows))

    def close(self) -> list[Path]:
        self._handle.close()
        return [self.path]
