from django.db import models
from django.db.models import Q

from mhp.jobs import Job


class ImportKind(models.TextChoices):
    PROMPTS = "prompts", "Prompts"
    IMAGES = "images", "Images"


class ImportJob(Job):
    """An upload of prompts or images, run by a Celery task; `summary` is the import report."""

    kind = models.CharField(max_length=8, choices=ImportKind.choices)
    upload = models.FileField(upload_to="imports/%Y/%m/", max_length=255, blank=True)
    original_name = models.CharField(max_length=255, blank=True)
    summary = models.JSONField(default=dict, blank=True)

    class Meta(Job.Meta):
        constraints = [
            *Job.job_constraints("importjob"),
            models.CheckConstraint(condition=Q(kind__in=ImportKind.values), name="importjob_kind_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} import {self.pk} ({self.status})"


class AugmentationJob(Job):
    """LLM generation of new prompts for an under-represented category (all deficits when none)."""

    # What a run counts, as the admin and the API show it.
    TALLY_FIELDS = (
        "generated_count",
        "kept_count",
        "duplicate_count",
        "malformed_count",
        "prompt_tokens",
        "completion_tokens",
    )

    category = models.ForeignKey(
        "annotation.Category", null=True, blank=True, on_delete=models.PROTECT, related_name="augmentation_jobs"
    )
    requested_count = models.PositiveIntegerField()
    llm_model = models.CharField(max_length=100, default="gpt-4o")
    generated_count = models.PositiveIntegerField(default=0)
    kept_count = models.PositiveIntegerField(default=0)
    duplicate_count = models.PositiveIntegerField(default=0)
    malformed_count = models.PositiveIntegerField(default=0)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)

    class Meta(Job.Meta):
        constraints = [
            *Job.job_constraints("augmentationjob"),
            models.CheckConstraint(condition=Q(requested_count__gte=1), name="augmentationjob_requested_positive"),
        ]

    def __str__(self) -> str:
        return f"augmentation {self.pk} ({self.status})"

    @property
    def tokens_used(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class ReliabilityRun(Job):
    """A Dawid-Skene fit over the judgements: annotator reliabilities, class priors and spammer flags."""

    judgements_used = models.PositiveIntegerField(default=0)
    annotators_flagged = models.PositiveIntegerField(default=0)

    class Meta(Job.Meta):
        constraints = Job.job_constraints("reliabilityrun")

    def __str__(self) -> str:
        return f"reliability fit {self.pk} ({self.status})"
