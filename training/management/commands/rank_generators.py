import json

from django.core.management.base import BaseCommand, CommandError

from annotation.dimensions import DIMENSION_KEYS
from training.baselines.generator_ranking import format_ranking
from training.evaluation.jobs import EvaluationOptions, generator_ranking_create
from training.management.evaluation import add_scoring_arguments, evaluation_run_here


class Command(BaseCommand):
    help = (
        "Rank the generators: score each generator's stored images on the prompts every one of them drew, per "
        "dimension, with an MPS checkpoint; mean score per generator, ranked. Recorded as an EvaluationRun."
    )

    def add_arguments(self, parser):
        parser.add_argument("--checkpoint", required=True)
        parser.add_argument("--prompts", type=int, help="at most this many prompts (by id); default: all shared ones")
        parser.add_argument("--dimension", action="append", choices=DIMENSION_KEYS, help="repeatable; default: all")
        parser.add_argument("--generator", action="append", metavar="NAME", help="repeatable; default: all")
        add_scoring_arguments(parser)

    def handle(self, *args, checkpoint, prompts, dimension, generator, **options):
        prompts = None if prompts is None else int(prompts)  # call_command's keywords skip argparse's `type=`
        if prompts is not None and prompts < 1:
            raise CommandError("--prompts must be at least 1")
        evaluation = EvaluationOptions(
            device=options["device"] or "",
            batch_size=options["batch_size"],
            dimensions=dimension or list(DIMENSION_KEYS),
            allow_untrained_dimensions=options.get("allow_untrained_dimensions", False),
        )
        result = evaluation_run_here(
            lambda: generator_ranking_create(
                weights=str(checkpoint), generators=generator, prompts=prompts, options=evaluation, enqueue=False
            ),  # fmt: skip
            verbosity=options["verbosity"],
            stderr=self.stderr,
        )
        if options["json"]:
            self.stdout.write(json.dumps(result, indent=2))
            return
        self.stdout.write(
            f"{len(result['generators'])} generators on {result['prompts']} prompts, {result['images']} images, "
            f"checkpoint {checkpoint}, run {result['evaluation_run']}"
        )
        self.stdout.write(format_ranking(result))
