"""Reads for the prompt pipeline's pages and API."""

import math
from dataclasses import dataclass, field

from django.db.models import Count, F, Prefetch, Q, QuerySet

from annotation.models import AugmentationJob, Category, ImportJob, ImportKind, Prompt, PromptReview, PromptStatus


def prompt_filter_queue(*, user) -> QuerySet[Prompt]:
    """Prompts the filter form may still offer this user: pending, kept, not with a reviewer, short of reviews."""
    return (
        Prompt.objects.filter(
            status=PromptStatus.PENDING,
            near_duplicate_of__isnull=True,
            needs_reviewer=False,
            reviews_done__lt=F("reviews_required"),
        )
        .exclude(reviews__reviewer=user)
        .order_by("id")
    )


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


@dataclass(frozen=True)
class SubcategoryCount:
    category: Category
    accepted: int


@dataclass(frozen=True)
class CategoryBalance:
    category: Category
    target_share: float | None
    accepted: int
    share: float
    target_count: int
    deficit: int
    subcategories: list[SubcategoryCount] = field(default_factory=list)


@dataclass(frozen=True)
class Balance:
    total_accepted: int
    uncategorised: int
    rows: list[CategoryBalance]

    @property
    def total_deficit(self) -> int:
        return sum(row.deficit for row in self.rows)


def target_count(*, share: float | None, total: int) -> int:
    """The accepted prompts a category should have: share x total, rounded half up (no share: no target)."""
    return math.floor(share * total + 0.5) if share is not None else 0


def category_balance() -> Balance:
    """Accepted prompts per top-level category and subcategory against `Category.target_share`.

    The target counts are shares of all accepted prompts, uncategorised ones included: those still
    have to be categorised, and leaving them out would shrink every target.
    """
    accepted = Prompt.objects.filter(status=PromptStatus.ACCEPTED)
    by_category = dict(accepted.values_list("category_id").annotate(n=Count("id")).order_by())
    by_subcategory = dict(accepted.values_list("subcategory_id").annotate(n=Count("id")).order_by())
    total = sum(by_category.values())
    categories = list(Category.objects.all())
    children: dict[int, list[Category]] = {}
    for category in categories:
        if category.parent_id:
            children.setdefault(category.parent_id, []).append(category)
    rows = [
        _row(category, by_category.get(category.pk, 0), total, children.get(category.pk, []), by_subcategory)
        for category in categories
        if category.parent_id is None
    ]
    return Balance(total_accepted=total, uncategorised=by_category.get(None, 0), rows=rows)


def _row(category: Category, count: int, total: int, children: list[Category], by_sub: dict) -> CategoryBalance:
    wanted = target_count(share=category.target_share, total=total)
    return CategoryBalance(
        category=category,
        target_share=category.target_share,
        accepted=count,
        share=count / total if total else 0.0,
        target_count=wanted,
        deficit=max(0, wanted - count),
        subcategories=[SubcategoryCount(child, by_sub.get(child.pk, 0)) for child in children],
    )


def prompts_filtered(
    *, status: str = "", category: str = "", origin: str = "", source: str = "", search: str = ""
) -> QuerySet[Prompt]:
    """Prompts for the API list; `category` is a slug, top-level or subcategory."""
    prompts = Prompt.objects.select_related("category", "subcategory").order_by("id")
    if status:
        prompts = prompts.filter(status=status)
    if category:
        prompts = prompts.filter(Q(category__slug=category) | Q(subcategory__slug=category))
    if origin:
        prompts = prompts.filter(origin=origin)
    if source:
        prompts = prompts.filter(source=source)
    if search:
        prompts = prompts.filter(text__icontains=search)
    return prompts


def prompt_import_jobs_list() -> QuerySet[ImportJob]:
    return ImportJob.objects.filter(kind=ImportKind.PROMPTS).order_by("-created_at", "-id")


def augmentation_jobs_list() -> QuerySet[AugmentationJob]:
    return AugmentationJob.objects.select_related("category").order_by("-created_at", "-id")


def prompt_disagreements_list(*, reviewer) -> QuerySet[Prompt]:
    """Pending prompts whose reviews disagree, that this reviewer did not review (they settle others' reviews)."""
    reviews = Prefetch("reviews", queryset=PromptReview.objects.select_related("reviewer", "category", "subcategory"))
    return (
        Prompt.objects.filter(needs_reviewer=True, status=PromptStatus.PENDING)
        .exclude(reviews__reviewer=reviewer)
        .select_related("category", "subcategory")
        .prefetch_related(reviews)
        .order_by("id")
    )
