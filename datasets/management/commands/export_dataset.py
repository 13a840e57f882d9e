from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from datasets.exporters.webdataset import DEFAULT_SHARD_SIZE
from datasets.selectors import dataset_version_by_name
from datasets.services.export import ExportError
from datasets.services.export_jobs import export_job_create, export_job_run
from mhp.jobs import JobStatus
from mhp.progress import progress_bar


class Command(BaseCommand):
    help = "Export a frozen dataset version (jsonl, parquet, webdataset shards) with a manifest, in this process."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--format", default="jsonl,parquet", help="comma-separated: jsonl,parquet,webdataset")
        parser.add_argument("--out", type=Path, required=True, help="output folder (created if missing)")
        parser.add_argument("--shard-size", type=int, default=DEFAULT_SHARD_SIZE, help="pairs per tar shard")
        parser.add_argument(
            "--image-short-side",
            type=int,
            default=0,
            metavar="N",
            help="store WebDataset images resized to this shorter side, as JPEG (e.g. 256: faster training "
            "reads); 0 keeps the original files",
        )

    def handle(self, *args, name: str, out: Path, **options):
        version = dataset_version_by_name(name=name)
        if version is None:
            raise CommandError(f"no dataset version named {name!r}")
        try:
            job = export_job_create(
                version=version,
                formats=options["format"],
                out_dir=out,
                shard_size=options["shard_size"],
                image_short_side=options["image_short_side"],
                enqueue=False,
            )
        except ExportError as error:
            raise CommandError(str(error)) from None
        with progress_bar(unit="pairs", verbosity=options["verbosity"], stream=self.stderr) as progress:
            job = export_job_run(job_id=job.pk, progress=progress)
        if job.status != JobStatus.SUCCEEDED:
            raise CommandError(f"export {job.pk} failed: {job.error}")
        files = job.manifest["files"]
        self.stdout.write(f"exported {name} (job {job.pk}): {job.manifest['counts']['pairs']} pairs to {out}")
        for entry in files[:20]:
            self.stdout.write(f"  {entry['path']}  {entry['size']} bytes  sha256 {entry['sha256']}")
        if len(files) > 20:
            self.stdout.write(f"  ... and {len(files) - 20} more files (see manifest.json)")
