import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from annotation.dimensions import DIMENSION_KEYS
from training.baselines.generator_ranking import BENCHMARK_NAME, format_ranking, rank_generators
from training.evaluation.runs import evaluation_run_finish, evaluation_run_progress, evaluation_run_recorded


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
        parser.add_argument("--device", help="cpu, cuda, cuda:1... (default: cuda when available)")
        parser.add_argument("--batch-size", type=int, default=16)
        parser.add_argument(
            "--allow-untrained-dimensions",
            action="store_true",
            help="score dimensions the checkpoint was not trained on (refused otherwise)",
        )
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args, checkpoint, prompts, dimension, generator, **options):
        from training.baselines.mps import MPSBaseline  # torch: only when this command runs
        from training.mps import CheckpointError, MPSScorer

        dimensions = dimension or list(DIMENSION_KEYS)
        prompts = None if prompts is None else int(prompts)  # call_command's keywords skip argparse's `type=`
        if prompts is not None and prompts < 1:
            raise CommandError("--prompts must be at least 1")
        if not Path(checkpoint).exists():
            raise CommandError(f"no checkpoint at {checkpoint}")
        config = {"dimensions": dimensions, "prompts": prompts, "generators": generator}
        try:
            scorer = MPSBaseline(MPSScorer.from_checkpoint(checkpoint, device=options["device"],
                                                           batch_size=options["batch_size"],
                                                           allow_untrained_dimensions=options.get(
                                                               "allow_untrained_dimensions", False)))  # fmt: skip
            with (
                evaluation_run_recorded(
                    method="mps", benchmark=BENCHMARK_NAME, checkpoint_path=str(checkpoint), config=config
                ) as run,  # fmt: skip
                tqdm(unit="prompts", disable=options["verbosity"] < 1, file=self.stderr) as bar,
            ):

                def progress(done: int, total: int) -> None:
                    bar.total = total
                    bar.update(done - bar.n)
                    evaluation_run_progress(run=run, progress=done / total)

                result = rank_generators(scorer, dimensions, generators=generator, prompts=prompts, progress=progress)
                result.update(checkpoint=str(checkpoint), evaluation_run=run.pk)
                evaluation_run_finish(run=run, metrics=result)
        except (CheckpointError, ValueError, OSError) as error:
            raise CommandError(str(error)) from None
        if options["json"]:
            self.stdout.write(json.dumps(result, indent=2))
            return
        self.stdout.write(
            f"{len(result['generators'])} generators on {result['prompts']} prompts, {result['images']} images, "
            f"checkpoint {checkpoint}, run {run.pk}"
        )
        self.stdout.write(format_ranking(result))
