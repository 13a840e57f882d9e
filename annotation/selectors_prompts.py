"""Reads for the prompt pipeline's pages and API."""

from django.db.models import Count, Prefetch, QuerySet

from annotation.models import Prompt


def near_duplicate_groups_list() -> QuerySet[Prompt]:
    """Kept prompts that have near-duplicates, each with its members prefetched, newest groups first."""
    members = Prefetch("near_duplicates", queryset=Prompt.objects.order_by("id").only("id", "text", "status"))
    return (
        Prompt.objects.annotate(member_count=Count("near_duplicates"))
        .filter(member_count__gt=0)
        .select_related("category")
        .prefetch_related(members)
        .order_by("-id")
    )
