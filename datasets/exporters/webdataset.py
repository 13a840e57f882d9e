"""WebDataset-style tar shards, per split: `webdataset/{split}-{n:06d}.tar`, each holding, per pair,
`{key}.json` (the JSONL record), `{key}.first.{ext}` and `{key}.second.{ext}` (the image bytes), with
key = the pair id on 10 digits. Members carry fixed times and owners, so a re-run gives identical bytes."""

import io
import json
import tarfile
from pathlib import Path, PurePosixPath

from django.core.files.storage import default_storage

from datasets.exporters.records import partial, row_record

FOLDER = "webdataset"
DEFAULT_SHARD_SIZE = 1_000


class ImageMissing(FileNotFoundError):
    """An image of the version has no stored file, so it cannot go into a shard."""


def _member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644
    tar.addfile(info, io.BytesIO(data))


def _image_bytes(name: str) -> bytes:
    try:
        with default_storage.open(name, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        raise ImageMissing(f"image file {name!r} is missing from storage; WebDataset shards need every image") from None


class WebDatasetExporter:
    def __init__(self, out_dir: Path, *, shard_size: int = DEFAULT_SHARD_SIZE, **_options) -> None:
        if shard_size < 1:
            raise ValueError("shard_size must be at least 1")
        self.folder = out_dir / FOLDER
        self.folder.mkdir(exist_ok=True)
        self.shard_size = shard_size
        self._tar: tarfile.TarFile | None = None
        self._split, self._index, self._in_shard = None, 0, 0
        self.paths: list[Path] = []

    def write(self, rows: list[tuple]) -> None:
        for row in rows:
            record = row_record(row)
            self._shard_for(record["split"])
            key = f"{record['pair_id']:010d}"
            _member(self._tar, f"{key}.json", json.dumps(record, ensure_ascii=False).encode())
            for side in ("first", "second"):
                name = record[f"image_{side}"]
                extension = PurePosixPath(name).suffix.lstrip(".") or "png"
                _member(self._tar, f"{key}.{side}.{extension}", _image_bytes(name))
            self._in_shard += 1

    def _shard_for(self, split: str) -> None:
        if split != self._split:
            self._close_shard()
            self._split, self._index = split, 0
        elif self._in_shard >= self.shard_size:
            self._close_shard()
            self._index += 1
        if self._tar is None:
            path = self.folder / f"{split}-{self._index:06d}.tar"
            self.paths.append(path)
            # Kept open across write() calls; _close_shard() closes it.
            self._tar = tarfile.open(partial(path), "w", format=tarfile.USTAR_FORMAT)  # noqa: SIM115
            self._in_shard = 0

    def _close_shard(self) -> None:
        if self._tar is not None:
            self._tar.close()
            self._tar = None

    def close(self) -> list[Path]:
        self._close_shard()
        return self.paths
