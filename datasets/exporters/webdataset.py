"""WebDataset-style tar shards, per split: `webdataset/{split}-{n:06d}.tar`, each holding, per pair,
`{key}.json` (the JSONL record), `{key}.first.{ext}` and `{key}.second.{ext}` (the image bytes), with
key = the pair id on 10 digits, `webdataset/index.json` ({shard name: pairs}) that lets a trainer plan
epochs without reading the shards, and `webdataset/judgements.jsonl`, the version's raw judgements (the
JSONL export's lines). Members carry fixed times and owners, so a re-run gives identical bytes.

With `image_short_side` N > 0 every image whose shorter side exceeds N is stored resized (bicubic, the model's
filter) to a shorter side of N, as JPEG quality 95 (4:4:4): MHP's 512-1024 px images decode several times
faster at 256 than at full size, and the model sees 224. Smaller images are stored as they are.
"""

import io
import json
import tarfile
from pathlib import Path, PurePosixPath

from django.core.files.storage import Storage, default_storage
from PIL import Image

from datasets.exporters.jsonl import JUDGEMENTS_NAME, JsonLines
from datasets.exporters.records import judgement_record, partial, row_record

FOLDER = "webdataset"
INDEX_NAME = "index.json"
DEFAULT_SHARD_SIZE = 1_000
RESIZED_QUALITY = 95


class ImageMissing(FileNotFoundError):
    """An image of the version has no stored file, so it cannot go into a shard."""


def _member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644
    tar.addfile(info, io.BytesIO(data))


def _image_bytes(storage: Storage, name: str) -> bytes:
    try:
        with storage.open(name, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        raise ImageMissing(f"image file {name!r} is missing from storage; WebDataset shards need every image") from None


def resized(data: bytes, name: str, short_side: int) -> tuple[bytes, str]:
    """The image scaled down to `short_side` as JPEG, with its new extension; small images unchanged."""
    with Image.open(io.BytesIO(data)) as image:
        width, height = image.size
        if min(width, height) <= short_side:
            return data, PurePosixPath(name).suffix.lstrip(".") or "png"
        scale = short_side / min(width, height)
        size = (max(short_side, round(width * scale)), max(short_side, round(height * scale)))
        smaller = image.convert("RGB").resize(size, Image.Resampling.BICUBIC, reducing_gap=3.0)
    out = io.BytesIO()
    smaller.save(out, format="JPEG", quality=RESIZED_QUALITY, subsampling=0)
    return out.getvalue(), "jpg"


class WebDatasetExporter:
    def __init__(
        self,
        out_dir: Path,
        *,
        shard_size: int = DEFAULT_SHARD_SIZE,
        image_short_side: int = 0,
        storage: Storage | None = None,  # where the images are read: the default storage unless given
        **_options,
    ) -> None:
        if shard_size < 1:
            raise ValueError("shard_size must be at least 1")
        if image_short_side < 0:
            raise ValueError("image_short_side must be 0 (original images) or a positive size")
        self.folder = out_dir / FOLDER
        self.folder.mkdir(exist_ok=True)
        self.shard_size, self.image_short_side = shard_size, image_short_side
        self.storage = storage or default_storage
        self._tar: tarfile.TarFile | None = None
        self._split, self._index, self._in_shard = None, 0, 0
        self.paths: list[Path] = []
        self.pairs: dict[str, int] = {}  # shard name -> pairs, for index.json
        self._judgements = JsonLines(self.folder / JUDGEMENTS_NAME, judgement_record)

    def write(self, rows: list[tuple]) -> None:
        for row in rows:
            record = row_record(row)
            self._shard_for(record["split"])
            key = f"{record['pair_id']:010d}"
            _member(self._tar, f"{key}.json", json.dumps(record, ensure_ascii=False).encode())
            for side in ("first", "second"):
                data, extension = self._image(record[f"image_{side}"])
                _member(self._tar, f"{key}.{side}.{extension}", data)
            self._in_shard += 1
            self.pairs[self.paths[-1].name] = self._in_shard

    def write_judgements(self, rows: list[tuple]) -> None:
        self._judgements.write(rows)

    def _image(self, name: str) -> tuple[bytes, str]:
        data = _image_bytes(self.storage, name)
        if self.image_short_side:
            return resized(data, name, self.image_short_side)
        return data, PurePosixPath(name).suffix.lstrip(".") or "png"

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
        index = self.folder / INDEX_NAME
        partial(index).write_text(json.dumps(self.pairs, indent=1, sort_keys=True))
        return [*self.paths, index, self._judgements.close()]
