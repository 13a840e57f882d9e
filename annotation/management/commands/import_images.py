from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotation.images.services.imports import ImageImportSummary, images_import
from mhp.progress import progress_bar


class Command(BaseCommand):
    help = "Import generated images listed in a JSONL manifest (prompt, generator, path, seed, settings)."

    def add_arguments(self, parser):
        parser.add_argument("manifest", type=Path)
        parser.add_argument("--root", type=Path, help="folder the manifest's paths are relative to (default: its own)")
        parser.add_argument(
            "--create-generators",
            action="store_true",
            help="add the generators the manifest names that do not exist yet (otherwise their lines are refused)",
        )

    def handle(self, *args, manifest: Path, root: Path | None, create_generators: bool, **options):
        if not manifest.is_file():
            raise CommandError(f"no such file: {manifest}")
        root = root or manifest.parent
        if not root.is_dir():
            raise CommandError(f"no such folder: {root}")
        with progress_bar(unit="lines", verbosity=options["verbosity"], stream=self.stderr) as progress:
            summary = images_import(
                manifest=manifest, root=root, progress=progress, create_generators=create_generators
            )
        self._report(summary)

    def _report(self, summary: ImageImportSummary) -> None:
        self.stdout.write(
            f"{summary.manifest}: {summary.lines_read} lines read, {summary.imported} imported, "
            f"{summary.duplicates} duplicates, {summary.refused - summary.duplicates} refused otherwise"
        )
        if summary.generators_created:
            self.stdout.write(f"  new generators: {', '.join(summary.generators_created)}")
        for close in summary.generators_close:
            self.stdout.write(f"  check: new generator {close['name']!r} is close to existing {close['close_to']!r}")
        for row in summary.refused_lines:
            self.stdout.write(f"  line {row['line']} {row['path']}: {row['reason']}")
        if summary.refused > len(summary.refused_lines):
            self.stdout.write(f"  ... and {summary.refused - len(summary.refused_lines)} more refused lines")
