"""Reads of labeling: the annotator's lease and counts, quality figures, reliabilities and flags, disputed pairs."""

import hashlib
import json

from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.db.models import Count, Exists, F, FloatField, Max, OuterRef, Q, QuerySet
from django.db.models.functions import Cast, Greatest
from django.utils import timezone

from annotation.dimensions import DIMENSION_KEYS, DIMENSIONS
from annotation.labeling.quality import CATEGORIES, QualityTally, Rating
from annotation.models import (
    Adjudication,
    AnnotatorFlag,
    AnnotatorProfile,
    AnnotatorReliability,
    Guideline,
    Image,
    Judgement,
    Pair,
    PairLease,
    ReliabilityRun,
    Side,
)
from mhp.jobs import JobStatus
from mhp.media import media_url


def _image_payload(image: Image) -> dict:
    return {
        "url": media_url(image.file),
        "thumbnail_url": media_url(image.thumbnail or image.file),
        "width": image.width,
        "height": image.height,
    }


def lease_images(lease: PairLease) -> tuple[Image, Image]:
    """(left, right) as this annotator sees them."""
    pair = lease.pair
    if lease.left_side == Side.FIRST:
        return pair.image_first, pair.image_second
    return pair.image_second, pair.image_first


def lease_payload(lease: PairLease) -> dict:
    """What the form needs to show a leased pair. Nothing tells a gold pair or a generator apart."""
    left, right = lease_images(lease)
    return {
        "pair_id": lease.pair_id,
        "prompt": lease.pair.prompt.text,
        "left": _image_payload(left),
        "right": _image_payload(right),
        "lease_expires_at": lease.expires_at.isoformat(),
    }


def guidelines() -> list[dict]:
    """Each dimension's guideline as admins wrote it, else the built-in one."""
    edited = {guideline.dimension: guideline for guideline in Guideline.objects.all()}
    rows = []
    for dimension in DIMENSIONS:
        guideline = edited.get(dimension.key)
        image = guideline.example_image if guideline else None
        rows.append({
            "key": dimension.key,
            "label": dimension.label,
            "text": guideline.text if guideline else dimension.guideline,
            "example_url": image.url if image else "",
            "example_caption": guideline.example_caption if guideline else "",
        })  # fmt: skip
    return rows


# Counting open pairs walks an index of up to a million entries: a figure a few seconds old is as good.
OPEN_PAIRS_CACHE_SECONDS = 30


def open_pairs_count() -> int:
    """Pairs still waiting for judgements, project-wide (the labeling page's "left in the queue")."""
    return cache.get_or_set(
        "labeling:open-pairs",
        lambda: Pair.objects.filter(judgements_done__lt=F("judgements_required")).count(),
        OPEN_PAIRS_CACHE_SECONDS,
    )


def annotator_counts(*, user: AbstractBaseUser) -> dict[str, int]:
    start = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    mine = Judgement.objects.filter(annotator=user)
    return {"today": mine.filter(created_at__gte=start).count(), "total": mine.count()}


# Rows fetched per round trip while streaming the judgements table.
CHUNK = 5000
# The figures are cached under a fingerprint of their inputs, so a new judgement, a gold answer or an
# exclusion is seen at once. The fingerprint cannot see a judgement edited in place in the admin or a
# renamed user; the timeout bounds how long those stay unseen.
QUALITY_CACHE_SECONDS = 300


def _stream_pairs(judgements: QuerySet[Judgement]):
    """(pair id, its ratings) for every judged pair, one pair at a time, in one ordered pass."""
    rows = judgements.order_by("pair_id", "id").values_list("pair_id", "annotator_id", "duration_ms", *DIMENSION_KEYS)
    current, ratings = None, []
    for pair_id, annotator_id, duration_ms, *choices in rows.iterator(chunk_size=CHUNK):
        if pair_id != current and ratings:
            yield current, ratings
            ratings = []
        current = pair_id
        ratings.append(Rating(annotator_id, dict(zip(DIMENSION_KEYS, choices, strict=True)), duration_ms))
    if ratings:
        yield current, ratings


def quality_figures() -> dict:
    """Project figures per dimension and each annotator's figures, over every stored judgement (cached)."""
    gold = dict(Pair.objects.filter(is_gold=True).values_list("pk", "gold_answers"))
    key = _figures_cache_key(gold)
    figures = cache.get(key)
    if figures is None:
        figures = _figures_compute(gold)
        cache.set(key, figures, QUALITY_CACHE_SECONDS)
    return figures


def _figures_cache_key(gold: dict[int, dict]) -> str:
    """A fingerprint of everything the figures read, from index lookups and small tables only.

    Judgements: count (a deletion), highest id and latest time (an addition; the time also tells apart
    rows that reuse the ids of rolled-back ones on SQLite). Gold answers and exclusions are few rows,
    read whole. Adjudications do not enter the figures, so they are not part of it.
    """
    latest = Judgement.objects.aggregate(last_id=Max("id"), last_at=Max("created_at"))
    excluded = sorted(AnnotatorProfile.objects.filter(judgements_excluded=True).values_list("user_id", flat=True))
    marker = [Judgement.objects.count(), latest["last_id"], latest["last_at"], sorted(gold.items()), excluded]
    digest = hashlib.sha256(json.dumps(marker, default=str, sort_keys=True).encode()).hexdigest()
    return f"quality-figures:{digest}"


def _figures_compute(gold: dict[int, dict]) -> dict:
    tally = QualityTally()
    pairs = judgements = 0
    for pair_id, ratings in _stream_pairs(Judgement.objects.all()):
        tally.add_pair(ratings, gold.get(pair_id))
        pairs += 1
        judgements += len(ratings)
    figures = tally.figures()
    return {
        "judgements": judgements,
        "pairs_judged": pairs,
        "dimensions": figures["dimensions"],
        "annotators": _annotator_rows(figures["annotators"]),
    }


def _annotator_rows(by_id: dict) -> list[dict]:
    users = dict(get_user_model().objects.filter(pk__in=by_id).values_list("pk", "username"))
    excluded = set(
        AnnotatorProfile.objects.filter(user_id__in=by_id, judgements_excluded=True).values_list("user_id", flat=True)
    )
    rows = [
        {"user_id": user_id, "username": users[user_id], "excluded": user_id in excluded, **figures}
        for user_id, figures in by_id.items()
    ]
    return sorted(rows, key=lambda row: row["username"])


def _choice_count(key: str, category: str) -> Count:
    return Count("judgements", filter=Q(**{f"judgements__{key}": category}))


def disputed_pairs(*, limit: int = 50) -> list[Pair]:
    """Pairs with two or more judgements, most disputed first: not yet adjudicated, complete, lowest majority share.

    The majority share is the share of all the pair's ratings (four dimensions) that went to each
    dimension's largest answer: 1.0 when everyone agreed on everything.
    """
    counts = {f"{key}_{category}": _choice_count(key, category) for key in DIMENSION_KEYS for category in CATEGORIES}
    majority = sum(
        (Greatest(*(F(f"{key}_{category}") for category in CATEGORIES)) for key in DIMENSION_KEYS[1:]),
        Greatest(*(F(f"{DIMENSION_KEYS[0]}_{category}") for category in CATEGORIES)),
    )
    rated = Count("judgements")
    return list(
        Pair.objects.filter(judgements_done__gte=2)
        .annotate(**counts, rated=rated)
        .annotate(
            majority_share=Cast(majority, FloatField()) / Cast(F("rated") * len(DIMENSION_KEYS), FloatField()),
            adjudicated=Exists(Adjudication.objects.filter(pair=OuterRef("pk"))),
            complete=Q(judgements_done__gte=F("judgements_required")),
        )
        .select_related("prompt", "image_first", "image_second", "adjudication")
        .order_by("adjudicated", "-complete", "majority_share", "id")[:limit]
    )


def pair_vote_rows(pair: Pair) -> list[dict]:
    """Per dimension, how many judgements chose first, second and tie (attributes set by `disputed_pairs`)."""
    return [
        {"key": key, **{category: getattr(pair, f"{key}_{category}") for category in CATEGORIES}}
        for key in DIMENSION_KEYS
    ]


def reliabilities_by_annotator() -> dict[int, dict[str, dict]]:
    """user id -> dimension -> accuracy and informativeness, as the latest reliability fit left them."""
    rows = AnnotatorReliability.objects.values_list("annotator_id", "dimension", "accuracy", "informativeness")
    table: dict[int, dict[str, dict]] = {}
    for user_id, key, accuracy, informativeness in rows:
        table.setdefault(user_id, {})[key] = {"accuracy": accuracy, "informativeness": informativeness}
    return table


def annotator_reliability(*, user: AbstractBaseUser) -> list[dict]:
    """This annotator's reliability per dimension (empty before their first fit)."""
    rows = AnnotatorReliability.objects.filter(annotator=user).values(
        "dimension", "accuracy", "informativeness", "judgements"
    )
    mine = {row["dimension"]: row for row in rows}
    return [{"label": d.label, **mine[d.key]} for d in DIMENSIONS if d.key in mine]


def reliability_run_latest() -> ReliabilityRun | None:
    return ReliabilityRun.objects.order_by("-created_at", "-pk").first()


def annotator_flags_open() -> list[AnnotatorFlag]:
    return list(
        AnnotatorFlag.objects.filter(reviewed_at__isnull=True)
        .select_related("annotator", "annotator__annotator_profile")
        .order_by("created_at", "pk")
    )


def annotator_flags_open_count() -> int:
    return AnnotatorFlag.objects.filter(reviewed_at__isnull=True).count()


def annotator_flags_reviewed(*, limit: int = 20) -> list[AnnotatorFlag]:
    return list(
        AnnotatorFlag.objects.filter(reviewed_at__isnull=False)
        .select_related("annotator", "reviewed_by")
        .order_by("-reviewed_at", "-pk")[:limit]
    )


def scoring_runs_succeeded() -> QuerySet:
    """The succeeded pair scoring runs, newest first (training's model, read by name: annotation never imports
    training): the runs a queue order can be taken from, and the disputes page's latest."""
    run_model = apps.get_model("training", "PairScoringRun")
    return run_model.objects.filter(status=JobStatus.SUCCEEDED).order_by("-created_at", "-id")
