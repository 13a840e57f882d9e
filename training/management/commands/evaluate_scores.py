import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotation.dimensions import DIMENSION_KEYS
from training.evaluation.metrics import ALL_SPLITS, BENCHMARKS, format_metrics_table, score_file_metrics

SPLITS = ("train", "val", "test", ALL_SPLITS)


class Command(BaseCommand):
    help = (
        "Apply a benchmark's published protocol to precomputed scores (a JSON object from image path to score), "
        "so any external scorer can be compared with MPS."
    )

    def add_arguments(self, parser):
        parser.add_argument("--benchmark", required=True, choices=BENCHMARKS)
        parser.add_argument("--annotations", required=True, type=Path, help="the benchmark's annotation file")
        parser.add_argument("--scores", required=True, type=Path, help="JSON object: image path (or uid) -> score")
        parser.add_argument("--dimension", default="overall", choices=DIMENSION_KEYS, help="pairs: which label")
        parser.add_argument("--split", default="test", choices=SPLITS, help="pairs: which split (default test)")
        parser.add_argument("--tie-threshold", type=float, help="pair sets: |p1 - p2| under which a tie is predicted")
        parser.add_argument(
            "--validation",
            type=Path,
            help="pair sets: validation file to tune the tie threshold on (pairs: its val split)",
        )
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args, benchmark, annotations, scores, dimension, split, tie_threshold, validation, **options):
        try:
            metrics = score_file_metrics(
                benchmark=benchmark,
                annotations=Path(annotations),  # call_command's keywords skip argparse's `type=`
                scores=Path(scores),
                dimension=dimension,
                split=split,
                tie_threshold=tie_threshold,
                validation=Path(validation) if validation else None,
            )
        except ValueError as error:  # malformed files and missing scores: their messages name the problem
            raise CommandError(str(error)) from None
        if options["json"]:
            self.stdout.write(json.dumps(metrics, indent=2))
            return
        self.stdout.write(f"{benchmark} ({Path(annotations).name}), scores from {Path(scores).name}")
        self.stdout.write(format_metrics_table({dimension: metrics}))
        if "tie_threshold_source" in metrics:
            self.stdout.write(f"tie threshold: {metrics['tie_threshold_source']}")
