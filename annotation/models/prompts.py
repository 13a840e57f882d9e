from django.conf import settings
from django.db import models
from django.db.models import Q


class Category(models.Model):
    """A Parti-derived prompt category; subcategories point at their top-level parent."""

    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=100, unique=True)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    description = models.TextField(blank=True)
    target_share = models.FloatField(
        null=True, blank=True, help_text="Wanted share of accepted prompts (0-1), for the balance page."
    )
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ("position", "name")
        verbose_name_plural = "categories"
        constraints = [
            models.UniqueConstraint(fields=["parent", "name"], name="category_unique_name_in_parent"),
            models.UniqueConstraint(
                fields=["name"], condition=Q(parent__isnull=True), name="category_unique_top_level_name"
            ),
            models.CheckConstraint(
                condition=Q(target_share__isnull=True) | (Q(target_share__gte=0) & Q(target_share__lte=1)),
                name="category_target_share_0_1",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.parent.name} / {self.name}" if self.parent_id else self.name


class PromptStatus(models.TextChoices):
    PENDING = "pending", "Pending review"
    ACCEPTED = "accepted", "Accepted"
    REJECTED = "rejected", "Rejected"


class PromptOrigin(models.TextChoices):
    COLLECTED = "collected", "Collected"
    AUGMENTED = "augmented", "Augmented (LLM)"


class RejectionReason(models.TextChoices):
    INCOHERENT = "incoherent", "Incoherent"
    INCOMPREHENSIBLE = "incomprehensible", "Incomprehensible"
    PUNCTUATION = "punctuation", "Punctuation errors"
    UNSAFE = "unsafe", "Unsafe"
    DUPLICATE = "duplicate", "Duplicate"
    OTHER = "other", "Other"


class Prompt(models.Model):
    text = models.TextField()
    normalized_text = models.TextField(help_text="Case, whitespace, unicode and punctuation runs folded.")
    normalized_hash = models.CharField(max_length=64, unique=True, help_text="sha256 of the normalised text")
    source = models.CharField(max_length=64, blank=True, db_index=True)
    source_id = models.CharField(max_length=128, blank=True)
    category = models.ForeignKey(Category, null=True, blank=True, on_delete=models.PROTECT, related_name="prompts")
    subcategory = models.ForeignKey(
        Category, null=True, blank=True, on_delete=models.PROTECT, related_name="subcategory_prompts"
    )
    status = models.CharField(max_length=16, choices=PromptStatus.choices, default=PromptStatus.PENDING, db_index=True)
    rejection_reasons = models.JSONField(default=list, blank=True)
    origin = models.CharField(max_length=16, choices=PromptOrigin.choices, default=PromptOrigin.COLLECTED)
    augmentation_job = models.ForeignKey(
        "annotation.AugmentationJob", null=True, blank=True, on_delete=models.SET_NULL, related_name="prompts"
    )
    near_duplicate_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="near_duplicates"
    )
    reviews_required = models.PositiveSmallIntegerField(default=1)
    reviews_done = models.PositiveSmallIntegerField(default=0)
    needs_reviewer = models.BooleanField(default=False, help_text="Reviews disagree: a reviewer decides.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("id",)
        permissions = [
            ("filter_prompts", "Can filter and categorise prompts"),
            ("resolve_prompt_disagreements", "Can decide prompts whose reviews disagree"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "source_id"], condition=~Q(source_id=""), name="prompt_unique_source_id"
            ),
            models.CheckConstraint(condition=Q(reviews_required__gte=1), name="prompt_reviews_required_positive"),
            models.CheckConstraint(condition=Q(status__in=PromptStatus.values), name="prompt_status_valid"),
        ]
        indexes = [models.Index(fields=["status", "category"], name="prompt_status_category")]

    def __str__(self) -> str:
        return self.text[:80]


class ReviewDecision(models.TextChoices):
    ACCEPT = "accept", "Accept"
    REJECT = "reject", "Reject"


class PromptReview(models.Model):
    """One reviewer's decision on one prompt."""

    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="reviews")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="prompt_reviews")
    decision = models.CharField(max_length=8, choices=ReviewDecision.choices)
    reasons = models.JSONField(default=list, blank=True)
    comment = models.TextField(blank=True)
    category = models.ForeignKey(Category, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    subcategory = models.ForeignKey(Category, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    is_final = models.BooleanField(default=False, help_text="A reviewer's decision that settles a disagreement.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-created_at",)
        constraints = [
            models.UniqueConstraint(fields=["prompt", "reviewer"], name="prompt_review_once_per_reviewer"),
            models.CheckConstraint(condition=Q(decision__in=ReviewDecision.values), name="prompt_review_decision"),
        ]

    def __str__(self) -> str:
        return f"{self.reviewer} {self.decision} prompt {self.prompt_id}"


class PromptLease(models.Model):
    """A prompt handed to one person in the filter form, so nobody else gets it at the same time."""

    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="leases")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="prompt_leases")
    expires_at = models.DateTimeField(db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["prompt", "user"], name="prompt_lease_once_per_user")]

    def __str__(self) -> str:
        return f"lease of prompt {self.prompt_id} to {self.user_id}"
