import time

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from annotation.images.services.pair_seed import pairs_seed


class Command(BaseCommand):
    help = "Benchmark data: bulk-create accepted prompts, generators, image rows without files, and pairs."

    def add_arguments(self, parser):
        parser.add_argument("--pairs", type=int, required=True, help="pairs to create")
        parser.add_argument("--prompts", type=int, help="prompts to spread them over (default: pairs / 6)")
        parser.add_argument("--generators", type=int, default=4, help="generators (default 4)")

    def handle(self, *args, pairs: int, prompts: int | None, generators: int, **options):
        started = time.monotonic()
        with tqdm(unit="prompts", disable=options["verbosity"] < 1, file=self.stderr) as bar:
            try:
                summary = pairs_seed(pairs=pairs, prompts=prompts, generators=generators, progress=bar.update)
            except ValueError as error:
                raise CommandError(str(error)) from None
        self.stdout.write(
            f"seed {summary.tag}: {summary.prompts} prompts, {summary.images} images, {summary.pairs} pairs "
            f"in {time.monotonic() - started:.1f} s"
        )
