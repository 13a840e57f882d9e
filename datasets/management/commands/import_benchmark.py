from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from datasets.benchmarks import BenchmarkFileError, benchmark_import


class Command(BaseCommand):
    help = "Import a public benchmark's test file (ImageReward, HPD v2, Pick-a-Pic) as an evaluation set."

    def add_arguments(self, parser):
        parser.add_argument("kind", choices=["imagereward", "hpdv2", "pickapic"])
        parser.add_argument("file", type=Path)
        parser.add_argument("--images", type=Path, help="folder of the images (absent: score-file evaluation only)")
        parser.add_argument("--name", default="", help="the set's name (default: KIND-FILESTEM)")

    def handle(self, *args, kind: str, file: Path, images: Path | None, name: str, **options):
        try:
            evaluation_set = benchmark_import(kind=kind, path=file, images_dir=images, name=name)
        except BenchmarkFileError as error:
            raise CommandError(f"{file}: {error}; nothing was imported") from None
        where = evaluation_set.image_root or "absent (score files only)"
        self.stdout.write(f"imported {evaluation_set.item_count} items as {evaluation_set.name!r}; images: {where}")
