from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotation.prompts.services.import_readers import FORMATS
from annotation.prompts.services.imports import ImportFileError, ImportSummary, prompts_import
from mhp.progress import progress_bar


class Command(BaseCommand):
    help = "Import prompts from a JSONL, CSV, Parquet or plain-text file; prints the import report."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--source", default="", help="source name for rows that give none")
        parser.add_argument("--category", default="", help="category slug for rows that give none")
        parser.add_argument("--format", choices=FORMATS, help="default: from the file name's ending")

    def handle(self, *args, file: Path, source: str, category: str, format: str | None, **options):
        if not file.is_file():
            raise CommandError(f"no such file: {file}")
        with progress_bar(unit="rows", verbosity=options["verbosity"], stream=self.stderr) as progress:
            try:
                summary = prompts_import(
                    path=file, file_format=format, source=source, category_slug=category, progress=progress
                )
            except ImportFileError as error:
                raise CommandError(f"{file}: {error}; nothing was imported") from error
        self._report(summary)

    def _report(self, summary: ImportSummary) -> None:
        self.stdout.write(
            f"{summary.file}: {summary.rows_read} rows read, {summary.imported} imported, "
            f"{summary.exact_duplicates} exact duplicates, {summary.near_duplicates} near-duplicates, "
            f"{summary.invalid} invalid"
        )
        for row in summary.invalid_rows:
            self.stdout.write(f"  line {row['line']}: {row['reason']}")
        for row in summary.existing_flagged:
            self.stdout.write(
                f"  existing prompt #{row['id']} is now a near-duplicate of #{row['matched_id']} (left pending): "
                f"{row['text'][:80]}"
            )
        if summary.invalid > len(summary.invalid_rows):
            self.stdout.write(f"  ... and {summary.invalid - len(summary.invalid_rows)} more invalid rows")
