from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from annotation.dimensions import DIMENSION_KEYS
from datasets.exporters.records import partial

FILE_NAME = "pairs.parquet"
JUDGEMENTS_NAME = "judgements.parquet"
# Rows per Parquet row group: a few tens of MB in memory at most, large enough to read fast.
ROW_GROUP = 50_000

_LABEL = pa.list_(pa.float64(), 2)
SCHEMA = pa.schema(
    [
        ("pair_id", pa.int64()),
        ("split", pa.string()),
        ("prompt_id", pa.int64()),
        ("prompt", pa.string()),
        ("category", pa.string()),
        ("image_first", pa.string()),
        ("image_second", pa.string()),
        ("image_first_sha256", pa.string()),
        ("image_second_sha256", pa.string()),
        ("generator_first", pa.string()),
        ("generator_second", pa.string()),
        ("annotator_count", pa.int16()),
        ("agreement", pa.float64()),
        ("labels", pa.struct([(key, _LABEL) for key in DIMENSION_KEYS])),
    ]
)
_PLAIN_COLUMNS = 13
JUDGEMENT_SCHEMA = pa.schema(
    [
        ("pair_id", pa.int64()),
        ("image_first", pa.string()),
        ("image_second", pa.string()),
        ("annotator", pa.string()),
        *((key, pa.string()) for key in DIMENSION_KEYS),
        ("left_side", pa.string()),
        ("duration_ms", pa.int64()),
        ("created_at", pa.timestamp("us", tz="UTC")),
        ("in_version", pa.bool_()),
        ("split", pa.string()),
    ]
)


class ParquetExporter:
    """All splits in one file; `labels` is a struct of dimension -> [p_first, p_second]. The raw judgements
    in `judgements.parquet` beside it."""

    def __init__(self, out_dir: Path, **_options) -> None:
        self.path = out_dir / FILE_NAME
        self._writer = pq.ParquetWriter(partial(self.path), SCHEMA, compression="zstd")
        self._buffer: list[tuple] = []
        self._judgements = _JudgementsParquet(out_dir / JUDGEMENTS_NAME)

    def write(self, rows: list[tuple]) -> None:
        self._buffer.extend(rows)
        if len(self._buffer) >= ROW_GROUP:
            self._flush()

    def _flush(self) -> None:
        if not self._buffer:
            return
        columns = list(zip(*self._buffer, strict=True))
        arrays = [pa.array(columns[i], type=SCHEMA.field(i).type) for i in range(_PLAIN_COLUMNS)]
        labels = []
        for i in range(len(DIMENSION_KEYS)):
            first, second = columns[_PLAIN_COLUMNS + 2 * i], columns[_PLAIN_COLUMNS + 2 * i + 1]
            flat = pa.array([p for pair in zip(first, second, strict=True) for p in pair], type=pa.float64())
            labels.append(pa.FixedSizeListArray.from_arrays(flat, 2))
        arrays.append(pa.StructArray.from_arrays(labels, names=list(DIMENSION_KEYS)))
        self._writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=SCHEMA), row_group_size=ROW_GROUP)
        self._buffer.clear()

    def write_judgements(self, rows: list[tuple]) -> None:
        self._judgements.write(rows)

    def close(self) -> list[Path]:
        self._flush()
        self._writer.close()
        return [self.path, self._judgements.close()]


class _JudgementsParquet:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer = pq.ParquetWriter(partial(path), JUDGEMENT_SCHEMA, compression="zstd")
        self._buffer: list[tuple] = []

    def write(self, rows: list[tuple]) -> None:
        self._buffer.extend(rows)
        if len(self._buffer) >= ROW_GROUP:
            self._flush()

    def _flush(self) -> None:
        if not self._buffer:
            return
        *head, splits = zip(*self._buffer, strict=True)
        values = [*head, [bool(split) for split in splits], [split or None for split in splits]]
        arrays = [pa.array(column, type=field.type) for column, field in zip(values, JUDGEMENT_SCHEMA, strict=True)]
        self._writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=JUDGEMENT_SCHEMA), row_group_size=ROW_GROUP)
        self._buffer.clear()

    def close(self) -> Path:
        self._flush()
        self._writer.close()
        return self.path
