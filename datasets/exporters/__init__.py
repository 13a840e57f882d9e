"""Writers of exported dataset files. Each takes rows in `datasets.selectors.EXPORT_COLUMNS` order, writes
under a `.partial` name and lists the files it wrote; the export service renames them when all are done."""

from datasets.exporters.jsonl import JsonlExporter
from datasets.exporters.parquet import ParquetExporter
from datasets.exporters.webdataset import WebDatasetExporter

EXPORTERS = {"jsonl": JsonlExporter, "parquet": ParquetExporter, "webdataset": WebDatasetExporter}
FORMATS = tuple(EXPORTERS)

__all__ = ["EXPORTERS", "FORMATS", "JsonlExporter", "ParquetExporter", "WebDatasetExporter"]
