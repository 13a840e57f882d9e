from django.core.management.base import BaseCommand, CommandError
from django.utils.text import slugify
from django.utils.timezone import now

from datasets.models import DatasetVersion
from training.models import TrainingRun
from training.runs import TrainingError, training_run_create, training_run_execute, training_run_resume
from training.selectors import training_run_by_name


class Command(BaseCommand):
    help = (
        "Train an MPS model on a frozen dataset version (exported for training when it has no export yet), "
        "here with a progress bar, or queued to a GPU worker with --queue. Options default to the paper's recipe."
    )

    def add_arguments(self, parser):
        from training.trainer.main import add_config_arguments

        parser.add_argument("--dataset", help="name of a frozen dataset version")
        parser.add_argument("--name", help="run name (default: DATASET-PRESET-TIMESTAMP)")
        parser.add_argument(
            "--queue", action="store_true", help="queue on the gpu Celery queue instead of training here"
        )
        parser.add_argument(
            "--resume",
            metavar="RUN_NAME",
            help="continue a failed or cancelled run exactly from its last checkpoint (its own options)",
        )
        add_config_arguments(parser, skip=("output_dir",))

    def handle(self, *args, dataset, name, queue, resume, **options):
        from training.trainer.main import config_values

        values = config_values(options)
        try:
            if resume:
                if dataset or name or values:
                    raise CommandError("--resume takes the run's own options: give no --dataset, --name or options")
                run = training_run_resume(run=self._run(resume), enqueue=queue)
            else:
                run = self._create(dataset, name, values, queue)
        except TrainingError as error:
            raise CommandError(str(error)) from None
        if queue:
            self.stdout.write(f"queued training run {run.name} (id {run.pk}) on the gpu queue")
            return
        self._train(run)

    def _create(self, dataset, name, values, queue) -> TrainingRun:
        version = self._version(dataset) if dataset else None
        run_name = name or slugify(f"{dataset or 'export'}-{values.get('preset', 'vit-h')}-{now():%Y%m%d-%H%M%S}")
        return training_run_create(name=run_name, version=version, options=values, enqueue=queue)

    def _run(self, name: str) -> TrainingRun:
        run = training_run_by_name(name)
        if run is None:
            raise CommandError(f"no training run named {name!r}")
        return run

    def _train(self, run: TrainingRun) -> None:
        if run.checkpoint_step:
            self.stdout.write(f"resuming training run {run.name} from step {run.checkpoint_step}")
        run = training_run_execute(run_id=run.pk, progress=_ProgressBar())
        if run.status == "failed":
            raise CommandError(f"training run {run.name} failed: {run.error}")
        self.stdout.write(f"training run {run.name}: {run.status} at step {run.step}; output in {run.output_dir}")
        if run.best_checkpoint:
            self.stdout.write(f"best model (project format): {run.best_checkpoint}")

    def _version(self, name: str) -> DatasetVersion:
        version = DatasetVersion.objects.filter(name=name).first()
        if version is None:
            raise CommandError(f"no dataset version named {name!r}")
        return version


class _ProgressBar:
    def __init__(self) -> None:
        self.bar = None

    def __call__(self, step: int, total: int, metrics: dict) -> None:
        from tqdm import tqdm

        if self.bar is None:
            self.bar = tqdm(total=total, initial=step - 1, unit="step")
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{metrics['loss']:.4f}", **_val(metrics))
        if step == total:
            self.bar.close()


def _val(metrics: dict) -> dict:
    return {"val": f"{metrics['val']['mean']:.3f}"} if metrics.get("val") else {}
