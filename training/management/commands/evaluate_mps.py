import json
from functools import partial
from pathlib import Path

from django.core.management.base import BaseCommand

from annotation.dimensions import DIMENSION_KEYS
from training.evaluation.jobs import EvaluationOptions, evaluation_run_create, evaluation_target
from training.evaluation.metrics import ALL_SPLITS, format_metrics_table
from training.management.evaluation import add_scoring_arguments, evaluation_run_here


class Command(BaseCommand):
    help = (
        "Evaluate an MPS checkpoint on an imported benchmark (EvaluationSet name) or an export's pairs "
        "(pairs:/path/to/export_dir), per dimension, with the benchmark's published protocol."
    )

    def add_arguments(self, parser):
        parser.add_argument("--checkpoint", required=True)
        parser.add_argument("--benchmark", required=True, metavar="NAME", help="EvaluationSet name or pairs:DIR")
        parser.add_argument("--dimension", action="append", choices=DIMENSION_KEYS, help="repeatable; default: all")
        parser.add_argument("--split", default="test", choices=("train", "val", "test", ALL_SPLITS), help="pairs:")
        parser.add_argument("--images", type=Path, help="image root (default: the set's; pairs: MEDIA_ROOT)")
        parser.add_argument("--tie-threshold", type=float, help="pair sets; default: tuned on the export's val split")
        add_scoring_arguments(parser)

    def handle(self, *args, checkpoint, benchmark, dimension, split, images, tie_threshold, **options):
        evaluation = EvaluationOptions(
            device=options["device"] or "",
            batch_size=options["batch_size"],
            images=str(images or ""),  # call_command's keywords skip argparse's `type=`
            split=split,
            tie_threshold=tie_threshold,
            dimensions=dimension or list(DIMENSION_KEYS),
            allow_untrained_dimensions=options.get("allow_untrained_dimensions", False),
        )
        create = partial(evaluation_run_create, method="mps", weights=str(checkpoint), options=evaluation,
                         enqueue=False)  # fmt: skip
        result = evaluation_run_here(
            lambda: create(**evaluation_target(benchmark)), verbosity=options["verbosity"], stderr=self.stderr
        )
        self._print(result, options["json"])

    def _print(self, result, as_json):
        if as_json:
            self.stdout.write(json.dumps(result, indent=2))
            return
        self.stdout.write(
            f"{result['benchmark']} ({result['kind']}): {result['prompts']} prompts, {result['images']} images, "
            f"checkpoint {result['checkpoint']}, run {result['evaluation_run']}"
        )
        self.stdout.write(format_metrics_table(result["dimensions"]))
