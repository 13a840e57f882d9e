from django.conf import settings
from django.db import models
from django.db.models import Q

from annotation.models import Choice, Side
from mhp.jobs import Job


class DatasetStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    FREEZING = "freezing", "Freezing"
    FROZEN = "frozen", "Frozen"
    FAILED = "failed", "Failed"


class Split(models.TextChoices):
    TRAIN = "train", "Train"
    VAL = "val", "Validation"
    TEST = "test", "Test"


class DatasetVersion(models.Model):
    """A named, frozen selection of pairs with aggregated labels and prompt-grouped splits."""

    name = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=DatasetStatus.choices, default=DatasetStatus.DRAFT)
    config = models.JSONField(default=dict, blank=True, help_text="Selection, aggregation and split options.")
    stats = models.JSONField(default=dict, blank=True, help_text="Counts per split, category, generator, label.")
    seed = models.BigIntegerField(default=0)
    progress = models.FloatField(default=0.0)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    frozen_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at",)
        constraints = [
            models.CheckConstraint(condition=Q(status__in=DatasetStatus.values), name="datasetversion_status"),
            models.CheckConstraint(
                condition=Q(status=DatasetStatus.FROZEN, frozen_at__isnull=False) | ~Q(status=DatasetStatus.FROZEN),
                name="datasetversion_frozen_has_time",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class DatasetItem(models.Model):
    """One pair in a frozen version: its split and the labels aggregated at freezing time."""

    version = models.ForeignKey(DatasetVersion, on_delete=models.CASCADE, related_name="items")
    pair = models.ForeignKey("annotation.Pair", on_delete=models.PROTECT, related_name="dataset_items")
    split = models.CharField(max_length=8, choices=Split.choices)
    labels = models.JSONField(help_text="dimension -> [p_first, p_second]")
    annotator_count = models.PositiveSmallIntegerField()
    agreement = models.FloatField(help_text="Share of judgement pairs that agree, averaged over dimensions.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["version", "pair"], name="datasetitem_pair_once_per_version"),
            models.CheckConstraint(condition=Q(split__in=Split.values), name="datasetitem_split_valid"),
        ]
        indexes = [models.Index(fields=["version", "split", "id"], name="datasetitem_version_split")]

    def __str__(self) -> str:
        return f"pair {self.pair_id} in {self.version_id} ({self.split})"


def _answer_field() -> models.CharField:
    return models.CharField(max_length=8, choices=Choice.choices)


class DatasetJudgement(models.Model):
    """One raw judgement as it stood when its version froze, so that anyone can aggregate them again: every
    judgement of a counted annotator, on any pair (complete or not, in the version or not)."""

    # Rows are read per version in (pair, annotator) order: the unique index serves that, so the
    # version foreign key needs no index of its own.
    version = models.ForeignKey(DatasetVersion, on_delete=models.CASCADE, related_name="judgements", db_index=False)
    pair = models.ForeignKey("annotation.Pair", on_delete=models.PROTECT, related_name="dataset_judgements")
    annotator = models.CharField(
        max_length=16, help_text="Pseudonym: the same person has the same one in every version."
    )
    aesthetics = _answer_field()
    detail = _answer_field()
    alignment = _answer_field()
    overall = _answer_field()
    left_side = models.CharField(max_length=8, choices=Side.choices, help_text="Which image was shown on the left.")
    duration_ms = models.PositiveIntegerField()
    created_at = models.DateTimeField(help_text="When the judgement was submitted.")
    split = models.CharField(
        max_length=8, choices=Split.choices, blank=True, help_text="The pair's split; empty: not in the version."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["version", "pair", "annotator"], name="datasetjudgement_once_per_version"),
            models.CheckConstraint(
                condition=Q(split="") | Q(split__in=Split.values), name="datasetjudgement_split_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"judgement of pair {self.pair_id} by {self.annotator} in {self.version_id}"


class ExportJob(Job):
    version = models.ForeignKey(DatasetVersion, on_delete=models.CASCADE, related_name="exports")
    formats = models.JSONField(default=list, help_text="Any of jsonl, parquet, webdataset.")
    output_dir = models.CharField(max_length=500, blank=True)
    manifest = models.JSONField(default=dict, blank=True)

    class Meta(Job.Meta):
        constraints = Job.job_constraints("exportjob")

    def __str__(self) -> str:
        return f"export {self.pk} of {self.version_id} ({self.status})"


class BenchmarkKind(models.TextChoices):
    IMAGEREWARD = "imagereward", "ImageReward test"
    HPDV2 = "hpdv2", "HPD v2 test"
    PICKAPIC = "pickapic", "Pick-a-Pic"
    PAIRS = "pairs", "Generic pair set"


class EvaluationSet(models.Model):
    """A public test set (or any external ranking file) that models are evaluated on."""

    name = models.SlugField(max_length=100, unique=True)
    kind = models.CharField(max_length=16, choices=BenchmarkKind.choices)
    source_file = models.CharField(max_length=500, blank=True)
    image_root = models.CharField(max_length=500, blank=True, help_text="Empty when the images are absent.")
    item_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("name",)
        constraints = [models.CheckConstraint(condition=Q(kind__in=BenchmarkKind.values), name="evaluationset_kind")]

    def __str__(self) -> str:
        return self.name


class EvaluationItem(models.Model):
    """One prompt of a benchmark with its images and their human ranking (1 = best; ties share a rank)."""

    evaluation_set = models.ForeignKey(EvaluationSet, on_delete=models.CASCADE, related_name="items")
    external_id = models.CharField(max_length=200)
    prompt = models.TextField()
    images = models.JSONField(help_text="Image paths relative to the set's image root, or ids.")
    ranking = models.JSONField(help_text="One rank per image, 1 = best.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["evaluation_set", "external_id"], name="evaluationitem_unique_id")
        ]

    def __str__(self) -> str:
        return f"{self.evaluation_set_id}/{self.external_id}"
