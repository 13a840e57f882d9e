from django.core.management.base import BaseCommand, CommandError

from datasets.aggregation import LabelMode
from datasets.services.freeze import FreezeError, FreezeOptions, dataset_freeze
from mhp.progress import progress_bar


class Command(BaseCommand):
    help = "Freeze a dataset version: complete non-gold pairs, aggregated labels, splits grouped by prompt."

    def add_arguments(self, parser):
        parser.add_argument("name", help="the version's name (a slug); an existing name is refused")
        parser.add_argument("--labels", choices=[m.value for m in LabelMode], default=LabelMode.MAJORITY.value)
        parser.add_argument("--min-agreement", type=float, help="leave out pairs below this agreement (0-1)")
        parser.add_argument("--val", help="pairs (10000) or share (0.05); default per the size")
        parser.add_argument("--test", help="pairs (10000) or share (0.05); default per the size")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--description", default="")

    def handle(self, *args, name: str, **options):
        try:
            given = {key: options[key] for key in ("labels", "min_agreement", "val", "test", "seed")}
            freeze_options = FreezeOptions.from_input(**given)
        except FreezeError as error:
            raise CommandError(str(error)) from None
        with progress_bar(unit="pairs", verbosity=options["verbosity"], stream=self.stderr) as progress:
            try:
                version = dataset_freeze(
                    name=name, options=freeze_options, description=options["description"], progress=progress
                )
            except FreezeError as error:
                raise CommandError(str(error)) from None
        stats = version.stats
        self.stdout.write(f"froze {version.name}: {stats['pairs']} pairs, splits {stats['splits']}")
        self.stdout.write(f"  prompts per split {stats['prompts']}")
