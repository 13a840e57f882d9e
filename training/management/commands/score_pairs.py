import json

from django.core.management.base import BaseCommand, CommandError

from mhp.jobs import JobStatus
from mhp.progress import progress_bar
from training.models import TrainingRun
from training.pair_scoring import BATCH_SIZE, PairScoringError, pair_scoring_run_create, pair_scoring_run_execute
from training.selectors import training_run_by_name


class Command(BaseCommand):
    help = (
        "Score every pair with an MPS checkpoint (P(first image preferred) on the four dimensions), here, as the "
        "gpu task does; then flag the annotators who contradict both the consensus and the model."
    )

    def add_arguments(self, parser):
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--checkpoint", help="an MPS checkpoint under ARTIFACTS_ROOT or MODEL_ROOTS")
        which.add_argument("--training-run", metavar="NAME", help="the best model of a succeeded training run")
        parser.add_argument("--batch-size", type=int, default=BATCH_SIZE, help="images per vision-tower batch")
        parser.add_argument(
            "--allow-untrained-dimensions",
            action="store_true",
            help="score dimensions the checkpoint was not trained on (refused otherwise)",
        )
        parser.add_argument("--json", action="store_true", help="print the run's figures as one JSON object")

    def handle(self, *args, checkpoint, training_run, batch_size, allow_untrained_dimensions, **options):
        try:
            run = pair_scoring_run_create(
                checkpoint=checkpoint or "",
                training_run=self._training_run(training_run) if training_run else None,
                batch_size=batch_size,
                allow_untrained_dimensions=allow_untrained_dimensions,
                enqueue=False,
            )
        except PairScoringError as error:
            raise CommandError(str(error)) from None
        with progress_bar(unit="pairs", verbosity=options["verbosity"], stream=self.stderr) as progress:
            run = pair_scoring_run_execute(run_id=run.pk, progress=progress)
        if run.status != JobStatus.SUCCEEDED:
            raise CommandError(run.error)
        if options["json"]:
            self.stdout.write(json.dumps({"pair_scoring_run": run.pk, **run.metrics}, indent=2))
            return
        figures = run.metrics
        self.stdout.write(
            f"pair scoring run {run.pk}: {run.pairs_scored} of {figures['pairs']} pairs scored, {figures['images']} "
            f"images, {figures['pairs_per_second']} pairs/s, {figures['unreadable_images']} unreadable images, "
            f"{len(figures['contradicts_flags'])} annotators flagged"
        )

    def _training_run(self, name: str) -> TrainingRun:
        run = training_run_by_name(name)
        if run is None:
            raise CommandError(f"no training run named {name!r}")
        return run
