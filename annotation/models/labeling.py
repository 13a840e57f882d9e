import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from annotation.dimensions import DIMENSION_KEYS, DIMENSIONS
from mhp.jobs import Job


class PairKind(models.TextChoices):
    CROSS_GENERATOR = "cross", "Across generators"
    SAME_GENERATOR = "same", "Same generator"


class Choice(models.TextChoices):
    """A judgement on one dimension, relative to the pair's canonical order (not to screen sides)."""

    FIRST = "first", "First image"
    SECOND = "second", "Second image"
    TIE = "tie", "Tie"


class Side(models.TextChoices):
    FIRST = "first", "First image on the left"
    SECOND = "second", "Second image on the left"


def _choice_field() -> models.CharField:
    return models.CharField(max_length=8, choices=Choice.choices)


def _dimension_constraints(prefix: str) -> list[models.CheckConstraint]:
    return [
        models.CheckConstraint(condition=Q(**{f"{key}__in": Choice.values}), name=f"{prefix}_{key}_choice")
        for key in DIMENSION_KEYS
    ]


# The queue rank of every pair no guided order placed (and of every pair created later): with no order
# applied all fresh pairs share it and are served by id, as before ranks existed.
QUEUE_RANK_LAST = 2_147_483_647


class Pair(models.Model):
    """Two images of the same prompt, stored in canonical order (smaller image id first)."""

    # Each judgement updates its pair's row (judgements_done, which the queue index holds): every
    # index on the table is written again, so none is kept that another one already serves.
    prompt = models.ForeignKey("annotation.Prompt", on_delete=models.PROTECT, related_name="pairs")
    image_first = models.ForeignKey(
        "annotation.Image", on_delete=models.PROTECT, related_name="pairs_as_first", db_index=False
    )
    image_second = models.ForeignKey("annotation.Image", on_delete=models.PROTECT, related_name="pairs_as_second")
    kind = models.CharField(max_length=8, choices=PairKind.choices)
    judgements_required = models.PositiveSmallIntegerField(default=3)
    judgements_done = models.PositiveSmallIntegerField(default=0)
    is_gold = models.BooleanField(default=False)
    gold_answers = models.JSONField(
        default=dict, blank=True, help_text="For gold pairs: dimension -> first/second/tie, set by a reviewer."
    )
    # Fresh pairs are served in (queue_rank, id) order. A guided order (annotation.labeling.queue_order)
    # gives the pairs it places consecutive ranks; pairs created after it keep the database default and come after
    # them, so a new import never jumps ahead of the pairs a model chose.
    queue_rank = models.IntegerField(default=QUEUE_RANK_LAST, db_default=QUEUE_RANK_LAST)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("id",)
        permissions = [
            ("label_pairs", "Can judge image pairs"),
            ("adjudicate_pairs", "Can adjudicate disputed pairs and set gold answers"),
            ("view_quality", "Can see quality and agreement figures"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["image_first", "image_second"], name="pair_unique_images"),
            models.CheckConstraint(condition=Q(image_first__lt=F("image_second")), name="pair_canonical_order"),
            models.CheckConstraint(condition=Q(kind__in=PairKind.values), name="pair_kind_valid"),
            models.CheckConstraint(condition=Q(judgements_required__gte=1), name="pair_required_positive"),
            models.CheckConstraint(condition=Q(queue_rank__gte=0), name="pair_queue_rank_not_negative"),
            models.CheckConstraint(
                condition=Q(judgements_done__lte=F("judgements_required")), name="pair_done_within_required"
            ),
        ]
        indexes = [
            # The labeling queue: open pairs, most-judged first.
            models.Index(
                F("judgements_done").desc(),
                "id",
                condition=Q(judgements_done__lt=F("judgements_required")),
                name="pair_open_queue",
            ),
            # Gold pairs are few: a partial index finds them and costs nothing on the other rows.
            models.Index(F("judgements_done").desc(), "id", condition=Q(is_gold=True), name="pair_gold"),
            # Fresh pairs in serving order, per kind. A pair leaves it with its first judgement (the new
            # row version is not indexed), so it costs the judgements after that nothing.
            models.Index("is_gold", "queue_rank", "id", condition=Q(judgements_done=0), name="pair_fresh_queue"),
        ]

    def __str__(self) -> str:
        return f"pair {self.pk} ({self.image_first_id} vs {self.image_second_id})"


class QueueFront(models.Model):
    """Where claims start looking for fresh pairs of a kind: no unjudged pair comes before
    (`fresh_rank`, `fresh_from`) in serving order.

    Every pair taken leaves a dead queue-index entry at the start of the fresh pairs until a vacuum, and
    a walk from the start stepped over all of them. Claims move the front themselves every few seconds
    (migration 0008), a queue order moves it when it ranks the pairs (migration 0013); a pair below it is
    still found, last.
    """

    is_gold = models.BooleanField(unique=True)
    fresh_rank = models.IntegerField(default=QUEUE_RANK_LAST, help_text="The queue rank the front is at.")
    fresh_from = models.BigIntegerField(help_text="No unjudged pair of a lower rank, or of this rank and a lower id.")
    moved_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{'gold' if self.is_gold else 'regular'} fresh pairs from rank {self.fresh_rank}, id {self.fresh_from}"


class QueueOrder(Job):
    """One change of the order fresh pairs are served in, applied by a job; the latest that succeeded is the
    order in force.

    Guided: a scoring run's uncertainties with a share of random pairs (annotation.labeling.queue_order).
    Not guided: plain id order (a reset).
    """

    guided = models.BooleanField()
    scoring_run = models.ForeignKey(
        "training.PairScoringRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="queue_orders"
    )
    random_share = models.FloatField(null=True, blank=True, help_text="The share of pairs placed at random (0 to 1).")
    seed = models.BigIntegerField(null=True, blank=True, help_text="The random draw's seed.")
    pairs_ranked = models.PositiveIntegerField(default=0)

    class Meta(Job.Meta):
        ordering = ("-created_at", "-id")
        constraints = [
            *Job.job_constraints("queueorder"),
            models.CheckConstraint(
                condition=Q(random_share__isnull=True) | Q(random_share__gte=0.0, random_share__lte=1.0),
                name="queueorder_share_0_1",
            ),
        ]

    def __str__(self) -> str:
        if not self.guided:
            return f"queue order {self.pk}: id order ({self.status})"
        return (
            f"queue order {self.pk}: guided by scoring run {self.scoring_run_id} with random share "
            f"{self.random_share:g} ({self.status})"
        )


class PairLease(models.Model):
    """A pair handed to one annotator until `expires_at`; an expired lease frees the slot."""

    # Every judgement inserts and deletes a lease: no index of its own where the unique (pair,
    # annotator) index already serves lookups by pair.
    pair = models.ForeignKey(Pair, on_delete=models.CASCADE, related_name="leases", db_index=False)
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="pair_leases")
    left_side = models.CharField(max_length=8, choices=Side.choices, default=Side.FIRST)
    expires_at = models.DateTimeField(db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["pair", "annotator"], name="pair_lease_once_per_annotator")]

    def __str__(self) -> str:
        return f"lease of pair {self.pair_id} to {self.annotator_id} until {self.expires_at:%H:%M}"


class Judgement(models.Model):
    # Lookups by pair use the unique (pair, annotator) index and by annotator the (annotator,
    # created_at) one: separate indexes would only cost every insert.
    pair = models.ForeignKey(Pair, on_delete=models.PROTECT, related_name="judgements", db_index=False)
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="judgements", db_index=False
    )
    aesthetics = _choice_field()
    detail = _choice_field()
    alignment = _choice_field()
    overall = _choice_field()
    left_side = models.CharField(
        max_length=8, choices=Side.choices, help_text="Which of the pair's images was shown on the left."
    )
    duration_ms = models.PositiveIntegerField(help_text="Time from the pair being shown to submission.")
    client_token = models.UUIDField(default=uuid.uuid4, unique=True, help_text="Makes a retried submit idempotent.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ("id",)
        constraints = [
            models.UniqueConstraint(fields=["pair", "annotator"], name="judgement_once_per_annotator"),
            models.CheckConstraint(condition=Q(left_side__in=Side.values), name="judgement_left_side_valid"),
            *_dimension_constraints("judgement"),
        ]
        indexes = [models.Index(fields=["annotator", "created_at"], name="judgement_annotator_day")]

    def __str__(self) -> str:
        return f"judgement {self.pk} on pair {self.pair_id} by {self.annotator_id}"

    def choices(self) -> dict[str, str]:
        return {key: getattr(self, key) for key in DIMENSION_KEYS}


class PairSkip(models.Model):
    """An annotator declined a pair (with a reason); they are not offered it again."""

    pair = models.ForeignKey(Pair, on_delete=models.CASCADE, related_name="skips")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="pair_skips")
    reason = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["pair", "annotator"], name="pair_skip_once_per_annotator")]

    def __str__(self) -> str:
        return f"skip of pair {self.pair_id} by {self.annotator_id}"


class Adjudication(models.Model):
    """A reviewer's final answer for a disputed pair; it wins over the annotators' votes."""

    pair = models.OneToOneField(Pair, on_delete=models.CASCADE, related_name="adjudication")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="adjudications")
    aesthetics = _choice_field()
    detail = _choice_field()
    alignment = _choice_field()
    overall = _choice_field()
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = _dimension_constraints("adjudication")

    def __str__(self) -> str:
        return f"adjudication of pair {self.pair_id}"


class AnnotatorProfile(models.Model):
    """Labeling status of a person: an admin can stop them and exclude their judgements from datasets."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="annotator_profile")
    labeling_enabled = models.BooleanField(default=True)
    judgements_excluded = models.BooleanField(
        default=False, help_text="Leave this person's judgements out of the next dataset versions."
    )
    deactivated_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"profile of {self.user}"


class Guideline(models.Model):
    """What a dimension asks of the annotators, shown beside the labeling form; admins edit it."""

    dimension = models.CharField(max_length=16, choices=[(d.key, d.label) for d in DIMENSIONS], unique=True)
    text = models.TextField(help_text="Shown in the labeling page's guidelines panel (plain text).")
    example_image = models.ImageField(upload_to="guidelines/", blank=True, help_text="Optional example.")
    example_caption = models.CharField(max_length=300, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"guideline for {self.dimension}"


def _dimension_field(**kwargs) -> models.CharField:
    return models.CharField(max_length=16, choices=[(d.key, d.label) for d in DIMENSIONS], **kwargs)


class AnnotatorReliability(models.Model):
    """How one annotator answers on one dimension, as the latest Dawid-Skene fit estimates it.

    `confusion[t][a]` is the probability of answer `a` when the true label is `t`, both indexed in
    `annotation.labeling.consensus.CLASSES` order (first, tie, second).
    """

    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reliabilities")
    dimension = _dimension_field()
    confusion = models.JSONField(help_text="3x3 rows: true label first/tie/second; columns: the answer.")
    accuracy = models.FloatField(help_text="Probability that an answer equals the true label (under the class prior).")
    informativeness = models.FloatField(
        help_text="0 for answers independent of the truth (a spammer), 1 for answers that always tell it."
    )
    judgements = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("annotator_id", "dimension")
        constraints = [
            models.UniqueConstraint(fields=["annotator", "dimension"], name="reliability_once_per_dimension"),
            models.CheckConstraint(
                condition=Q(accuracy__gte=0.0) & Q(accuracy__lte=1.0), name="reliability_accuracy_0_1"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.annotator_id} on {self.dimension}: {self.accuracy:.2f}"


class DimensionPrior(models.Model):
    """The class prior of one dimension's true labels (first, tie, second), from the latest Dawid-Skene fit."""

    dimension = _dimension_field(unique=True)
    prior = models.JSONField(help_text="[first, tie, second], summing to 1.")
    default_confusion = models.JSONField(help_text="3x3: how an annotator with no estimate yet is assumed to answer.")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"prior of {self.dimension}"


class FlagKind(models.TextChoices):
    SPAMMER = "spammer", "Answers independent of the images"
    CONTRADICTS = "contradicts", "Contradicts both the consensus and the model"


class AnnotatorFlag(models.Model):
    """An annotator a job found suspicious, waiting for a reviewer's look; at most one open flag per kind."""

    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="flags")
    kind = models.CharField(max_length=16, choices=FlagKind.choices)
    detail = models.TextField(help_text="What the job measured, in words.")
    figures = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_note = models.TextField(blank=True)

    class Meta:
        ordering = ("-created_at",)
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=FlagKind.values), name="annotatorflag_kind_valid"),
            models.UniqueConstraint(
                fields=["annotator", "kind"], condition=Q(reviewed_at__isnull=True), name="annotatorflag_one_open"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} flag on {self.annotator_id}"
