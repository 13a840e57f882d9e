"""Reads for the home pages: each role's work, the reviewer's queues, the pipeline at a glance."""

from datetime import date, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.db.models import Count, F, Q
from django.db.models.functions import TruncDate
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token

from annotation.dimensions import DIMENSION_KEYS
from annotation.labeling.selectors import (
    annotator_counts,
    annotator_flags_open_count,
    annotator_reliability,
    open_pairs_count,
    quality_figures,
)
from annotation.models import (
    AugmentationJob,
    Generator,
    Image,
    ImportJob,
    ImportKind,
    Judgement,
    Pair,
    PairSkip,
    Prompt,
    PromptReview,
    PromptStatus,
)
from annotation.prompts.selectors import category_balance, prompt_disagreements_list, prompt_filter_queue
from datasets.models import DatasetVersion, ExportJob
from mhp.jobs import JobStatus
from training.models import EvaluationRun, TrainingRun

# Quality figures are a pass over every judgement (seconds at 300,000): the home pages read them at most
# this often, whatever the judgement fingerprint says, so annotators opening their home do not recompute
# them after each of their colleagues' judgements.
HOME_FIGURES_SECONDS = 600
# Below these, a percentage says more about chance than about the annotator.
MIN_AGREEMENT_COMPARISONS = 20
MIN_GOLD_JUDGED = 10
CHART_DAYS = 14
JOBS_LISTED = 10


def pipeline_counts() -> dict[str, int]:
    prompt_counts = Prompt.objects.aggregate(
        total=Count("id"),
        pending=Count("id", filter=Q(status=PromptStatus.PENDING)),
        accepted=Count("id", filter=Q(status=PromptStatus.ACCEPTED)),
        rejected=Count("id", filter=Q(status=PromptStatus.REJECTED)),
    )
    pairs = Pair.objects.aggregate(
        total=Count("id"),
        fresh=Count("id", filter=Q(judgements_done=0)),
        partial=Count("id", filter=Q(judgements_done__gt=0, judgements_done__lt=F("judgements_required"))),
        done=Count("id", filter=Q(judgements_done__gte=F("judgements_required"))),
    )
    return {
        "prompts": prompt_counts["total"],
        "prompts_pending": prompt_counts["pending"],
        "prompts_accepted": prompt_counts["accepted"],
        "prompts_rejected": prompt_counts["rejected"],
        "images": Image.objects.count(),
        "pairs": pairs["total"],
        "pairs_fresh": pairs["fresh"],
        "pairs_partial": pairs["partial"],
        "pairs_done": pairs["done"],
        "judgements": Judgement.objects.count(),
    }


def judgements_today(*, user: AbstractBaseUser) -> int:
    return annotator_counts(user=user)["today"]


def _home_quality_figures() -> dict:
    figures = cache.get("home-quality-figures")
    if figures is None:
        figures = quality_figures()
        cache.set("home-quality-figures", figures, HOME_FIGURES_SECONDS)
    return figures


def annotator_quality(*, user: AbstractBaseUser) -> dict:
    """This annotator's agreement with others and gold accuracy (overall dimension), None until enough data."""
    row = next((row for row in _home_quality_figures()["annotators"] if row["user_id"] == user.pk), None)
    overall = row["dimensions"]["overall"] if row else {}
    comparisons, gold = overall.get("agreement_comparisons", 0), overall.get("gold_judged", 0)
    return {
        "agreement": overall["agreement"] if comparisons >= MIN_AGREEMENT_COMPARISONS else None,
        "agreement_comparisons": comparisons,
        "gold_accuracy": overall["gold_accuracy"] if gold >= MIN_GOLD_JUDGED else None,
        "gold_judged": gold,
        "min_comparisons": MIN_AGREEMENT_COMPARISONS,
        "min_gold": MIN_GOLD_JUDGED,
    }


def pairs_waiting(*, user: AbstractBaseUser) -> int:
    """Open pairs this annotator has neither judged nor skipped.

    The project's open pairs (a cached count: it walks an index of up to a million entries) less the open pairs
    among this annotator's own judgements and skips, which are as many as their own work, not the project's.
    """
    still_open = Q(pair__judgements_done__lt=F("pair__judgements_required"))
    judged = Judgement.objects.filter(still_open, annotator=user).values_list("pair_id", flat=True)
    skipped = PairSkip.objects.filter(still_open, annotator=user).values_list("pair_id", flat=True)
    return max(0, open_pairs_count() - len(set(judged) | set(skipped)))


def prompts_waiting(*, user: AbstractBaseUser) -> int:
    return prompt_filter_queue(user=user).count()


def annotator_home(*, user: AbstractBaseUser) -> dict:
    start = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    reviews = PromptReview.objects.filter(reviewer=user)
    return {
        "pairs_waiting": pairs_waiting(user=user),
        "prompts_waiting": prompts_waiting(user=user),
        "judgements": annotator_counts(user=user),
        "reviews": {"today": reviews.filter(created_at__gte=start).count(), "total": reviews.count()},
        "quality": annotator_quality(user=user),
        "reliability": annotator_reliability(user=user),
    }


def disputes_open() -> int:
    """Pairs with two or more judgements that differ on some dimension and no adjudication yet."""
    differs = Q()
    for key in DIMENSION_KEYS:
        differs |= Q(**{f"{key}_answers__gt": 1})
    return (
        Pair.objects.filter(judgements_done__gte=2, adjudication__isnull=True)
        .annotate(**{f"{key}_answers": Count(f"judgements__{key}", distinct=True) for key in DIMENSION_KEYS})
        .filter(differs)
        .count()
    )


def reviewer_home(*, user: AbstractBaseUser) -> dict:
    figures = _home_quality_figures()
    return {
        "disputes": disputes_open(),
        "prompt_disagreements": prompt_disagreements_list(reviewer=user).count(),
        "flags_open": annotator_flags_open_count(),
        "quality": figures["dimensions"],
        "judgements": figures["judgements"],
        "pairs_judged": figures["pairs_judged"],
    }


def images_per_generator() -> list[dict]:
    rows = Generator.objects.annotate(n=Count("images")).order_by("name").values_list("name", "n")
    return [{"name": name, "images": n} for name, n in rows]


def judgements_per_day(*, days: int = CHART_DAYS) -> list[tuple[date, int]]:
    """(day, judgements) for the last `days` days, today included, days without any as 0."""
    today = timezone.localdate()
    first = today - timedelta(days=days - 1)
    start = timezone.make_aware(timezone.datetime.combine(first, timezone.datetime.min.time()))
    counted = dict(
        Judgement.objects.filter(created_at__gte=start)
        .annotate(day=TruncDate("created_at"))
        .values_list("day")
        .annotate(n=Count("id"))
        .order_by()
    )
    return [(first + timedelta(days=i), counted.get(first + timedelta(days=i), 0)) for i in range(days)]


def dataset_versions(*, limit: int = JOBS_LISTED) -> list[DatasetVersion]:
    return list(DatasetVersion.objects.order_by("-created_at")[:limit])


def _job_row(kind: str, job, url: str) -> dict:
    return {"kind": kind, "job": job, "url": url, "created_at": job.created_at}


def _import_url(job: ImportJob) -> str:
    if job.kind == ImportKind.IMAGES:
        return reverse("admin:annotation_image_zip_progress", args=[job.pk])
    return reverse("admin:annotation_importjob_prompt_progress", args=[job.pk])


def _url_by_name(name: str):
    return lambda job: reverse(name, args=[job.pk])


# kind shown, the job rows, the page that follows one job.
_JOB_KINDS = (
    ("import", ImportJob.objects.all(), _import_url),
    ("augmentation", AugmentationJob.objects.all(), _url_by_name("admin:annotation_augmentationjob_change")),
    ("export", ExportJob.objects.all(), _url_by_name("admin:datasets_exportjob_progress")),
    ("training", TrainingRun.objects.all(), _url_by_name("training-pages:run")),
    ("evaluation", EvaluationRun.objects.all(), _url_by_name("admin:training_evaluationrun_change")),
)


def jobs_recent(*, limit: int = JOBS_LISTED) -> dict[str, list[dict]]:
    """Every queued or running job, and the `limit` latest finished ones, newest first, each with its page."""
    active, finished = [], []
    live = Q(status__in=(JobStatus.QUEUED, JobStatus.RUNNING))
    for kind, jobs, url in _JOB_KINDS:
        active += [_job_row(kind, job, url(job)) for job in jobs.filter(live).order_by("-created_at")]
        finished += [_job_row(kind, job, url(job)) for job in jobs.exclude(live).order_by("-created_at")[:limit]]
    newest = lambda rows: sorted(rows, key=lambda row: row["created_at"], reverse=True)  # noqa: E731
    return {"active": newest(active), "recent": newest(finished)[:limit]}


def pipeline_overview() -> dict:
    return {
        "counts": pipeline_counts(),
        "balance": category_balance(),
        "generators": images_per_generator(),
        "per_day": judgements_per_day(),
        "versions": dataset_versions(),
        "jobs": jobs_recent(),
    }


def api_tokens_of(*, user: AbstractBaseUser) -> list[Token]:
    return list(Token.objects.filter(user=user))
