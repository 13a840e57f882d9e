from django.db import models

from mhp.jobs import Job


class TrainingRun(Job):
    """One MPS training run on a dataset version's export; `config` is the run's full configuration."""

    name = models.SlugField(max_length=100, unique=True)
    dataset_version = models.ForeignKey(
        "datasets.DatasetVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="training_runs"
    )
    preset = models.CharField(max_length=32, default="vit-h")
    step = models.PositiveIntegerField(default=0)
    total_steps = models.PositiveIntegerField(default=0)
    output_dir = models.CharField(max_length=500, blank=True)
    best_checkpoint = models.CharField(max_length=500, blank=True)
    last_checkpoint = models.CharField(max_length=500, blank=True)
    cancel_requested = models.BooleanField(default=False)
    # The step `last_checkpoint` was written at: where a resumed run continues from.
    checkpoint_step = models.PositiveIntegerField(default=0)
    # Who runs it and when it last said so: a run whose worker stopped beating is marked failed (training.liveness).
    worker_host = models.CharField(max_length=255, blank=True)
    worker_pid = models.PositiveIntegerField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta(Job.Meta):
        constraints = Job.job_constraints("trainingrun")

    def __str__(self) -> str:
        return self.name


class EvaluationRun(Job):
    """Evaluation of one checkpoint (or baseline) on the MHP test split or an imported benchmark."""

    training_run = models.ForeignKey(
        TrainingRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="evaluations"
    )
    method = models.CharField(max_length=64, default="mps", help_text="mps, clip, aesthetic, hpsv2, pickscore...")
    checkpoint_path = models.CharField(max_length=500, blank=True)
    benchmark = models.CharField(max_length=64)
    dataset_version = models.ForeignKey(
        "datasets.DatasetVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="evaluations"
    )
    evaluation_set = models.ForeignKey(
        "datasets.EvaluationSet", null=True, blank=True, on_delete=models.PROTECT, related_name="evaluations"
    )
    output_path = models.CharField(max_length=500, blank=True)

    class Meta(Job.Meta):
        constraints = Job.job_constraints("evaluationrun")

    def __str__(self) -> str:
        return f"{self.method} on {self.benchmark} ({self.status})"


class PairScoringRun(Job):
    """A checkpoint's preference probabilities for the open pairs (and judged ones, to find disagreements)."""

    training_run = models.ForeignKey(
        TrainingRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="pair_scorings"
    )
    checkpoint_path = models.CharField(max_length=500)
    pairs_scored = models.PositiveIntegerField(default=0)
    cancel_requested = models.BooleanField(default=False)

    class Meta(Job.Meta):
        constraints = Job.job_constraints("pairscoringrun")

    def __str__(self) -> str:
        return f"pair scoring {self.pk} ({self.status})"


class PairScore(models.Model):
    """P(first image preferred) on each dimension for one pair, by one scoring run's checkpoint."""

    run = models.ForeignKey(PairScoringRun, on_delete=models.CASCADE, related_name="scores")
    pair = models.ForeignKey("annotation.Pair", on_delete=models.CASCADE, related_name="model_scores")
    aesthetics = models.FloatField()
    detail = models.FloatField()
    alignment = models.FloatField()
    overall = models.FloatField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "pair"], name="pairscore_once_per_run")]

    def __str__(self) -> str:
        return f"scores of pair {self.pair_id} by run {self.run_id}"
