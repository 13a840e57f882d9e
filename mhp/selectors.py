"""Reads for pages and the API."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Q
from django.utils import timezone

from annotation.models import Image, Judgement, Pair, Prompt, PromptStatus


def pipeline_counts() -> dict[str, int]:
    prompt_counts = Prompt.objects.aggregate(
        total=Count("id"),
        pending=Count("id", filter=Q(status=PromptStatus.PENDING)),
        accepted=Count("id", filter=Q(status=PromptStatus.ACCEPTED)),
    )
    return {
        "prompts": prompt_counts["total"],
        "prompts_pending": prompt_counts["pending"],
        "prompts_accepted": prompt_counts["accepted"],
        "images": Image.objects.count(),
        "pairs": Pair.objects.count(),
        "judgements": Judgement.objects.count(),
    }


def judgements_today(*, user: AbstractBaseUser) -> int:
    start = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    return Judgement.objects.filter(annotator=user, created_at__gte=start).count()
