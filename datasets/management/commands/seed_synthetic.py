from django.core.management.base import BaseCommand, CommandError

from datasets.services.synthetic import synthetic_seed


class Command(BaseCommand):
    help = "Bulk-create synthetic prompts, images, pairs and judgements (benchmarks and demos)."

    def add_arguments(self, parser):
        parser.add_argument("--prompts", type=int, required=True)
        parser.add_argument("--pairs", type=int, required=True, help="fully judged pairs, spread over the prompts")
        parser.add_argument("--annotators", type=int, default=30)
        parser.add_argument("--generators", type=int, default=6)
        parser.add_argument("--judgements", type=int, default=3, help="judgements per pair")
        parser.add_argument("--tiny-files", action="store_true", help="store an 8x8 PNG per image (demos)")
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args, **options):
        def progress(table: str, rows: int) -> None:
            if options["verbosity"] > 0:
                self.stderr.write(f"  {table}: {rows} rows")

        try:
            counts = synthetic_seed(
                prompts=options["prompts"],
                pairs=options["pairs"],
                annotators=options["annotators"],
                generators=options["generators"],
                judgements_per_pair=options["judgements"],
                tiny_files=options["tiny_files"],
                seed=options["seed"],
                progress=progress,
            )
        except ValueError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(
            f"created {counts.prompts} prompts, {counts.images} images, {counts.pairs} pairs, "
            f"{counts.judgements} judgements"
        )
