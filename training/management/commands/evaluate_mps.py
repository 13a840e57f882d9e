import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from annotation.dimensions import DIMENSION_KEYS
from training.evaluation.jobs import evaluation_run_score
from training.evaluation.metrics import ALL_SPLITS, format_metrics_table
from training.evaluation.readers import AnnotationFileError
from training.evaluation.run import check_images, prompt_groups
from training.evaluation.runs import evaluation_run_recorded
from training.evaluation.sources import EXPORT_PREFIX, evaluation_set_benchmark, export_benchmark
from training.management.progress import bar_progress


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
        parser.add_argument("--device", help="cpu, cuda, cuda:1... (default: cuda when available)")
        parser.add_argument("--batch-size", type=int, default=16)
        parser.add_argument(
            "--allow-untrained-dimensions",
            action="store_true",
            help="score dimensions the checkpoint was not trained on (refused otherwise)",
        )
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args, checkpoint, benchmark, dimension, split, images, tie_threshold, **options):
        from training.mps import CheckpointError  # torch: only when this command runs

        dimensions = dimension or list(DIMENSION_KEYS)
        if tie_threshold is not None and not 0 <= tie_threshold <= 1:
            raise CommandError(f"--tie-threshold is a probability gap in 0-1, got {tie_threshold}")
        if not Path(checkpoint).exists():
            raise CommandError(f"no checkpoint at {checkpoint}")
        try:
            source, links = self._benchmark(benchmark, dimensions, split, images, tie_threshold)
            config = {"dimensions": dimensions, "split": split, "images": str(source.image_root)}
            with evaluation_run_recorded(
                method="mps", benchmark=benchmark, checkpoint_path=str(checkpoint), config=config, **links
            ) as run:
                result = self._evaluate(run, source, checkpoint, dimensions, tie_threshold, options)
        except (AnnotationFileError, CheckpointError, ValueError, OSError) as error:
            raise CommandError(str(error)) from None
        self._print(result, options["json"])

    def _benchmark(self, name, dimensions, split, images, tie_threshold):
        if name.startswith(EXPORT_PREFIX):
            root = Path(images or settings.MEDIA_ROOT)  # call_command's keywords skip argparse's `type=`
            return export_benchmark(name, dimensions, images=root, split=split, tune_on_val=tie_threshold is None), {}
        source, evaluation_set = evaluation_set_benchmark(name, dimensions, images=Path(images) if images else None)
        return source, {"evaluation_set": evaluation_set}

    def _evaluate(self, run, source, checkpoint, dimensions, tie_threshold, options):
        from training.baselines.registry import load_method

        check_images(source.image_root, prompt_groups(source))  # a missing image fails before the model loads
        scorer = load_method("mps", checkpoint, device=options["device"], batch_size=options["batch_size"],
                             allow_untrained_dimensions=options.get("allow_untrained_dimensions", False))  # fmt: skip
        with tqdm(unit="prompts", disable=options["verbosity"] < 1, file=self.stderr) as bar:
            return evaluation_run_score(run=run, source=source, scorer=scorer, dimensions=dimensions,
                                        tie_threshold=tie_threshold, progress=bar_progress(bar))  # fmt: skip

    def _print(self, result, as_json):
        if as_json:
            self.stdout.write(json.dumps(result, indent=2))
            return
        self.stdout.write(
            f"{result['benchmark']} ({result['kind']}): {result['prompts']} prompts, {result['images']} images, "
            f"checkpoint {result['checkpoint']}, run {result['evaluation_run']}"
        )
        self.stdout.write(format_metrics_table(result["dimensions"]))
