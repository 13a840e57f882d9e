"""The prompt filter queue: hand out one prompt under a lease, record a review, settle the prompt.

Claiming locks candidate prompt rows with `SELECT ... FOR UPDATE SKIP LOCKED`, so two people
claiming at once walk past each other's rows; a prompt is handed out only while its reviews done
plus its live leases stay below the reviews it needs, so nobody gets a prompt that others already
cover. When the last needed review arrives, agreeing reviews settle the prompt and disagreeing ones
send it to a reviewer.
"""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, F, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from annotation.models import Category, Prompt, PromptLease, PromptReview, PromptStatus, RejectionReason, ReviewDecision
from annotation.prompts.selectors import prompt_filter_queue

# Prompts a claim may find taken after locking them, before it gives up for now.
_CLAIM_ATTEMPTS = 10


def _queue(user: AbstractBaseUser):
    return prompt_filter_queue(user=user)


def prompt_lease_claim(*, user: AbstractBaseUser) -> Prompt | None:
    """The prompt this user should review now (the one they hold, or a newly leased one); None when done."""
    now = timezone.now()
    held = PromptLease.objects.filter(user=user, expires_at__gt=now, prompt__in=_queue(user)).first()
    if held is not None:
        return held.prompt
    live_leases = (
        PromptLease.objects.filter(prompt=OuterRef("pk"), expires_at__gt=now)
        .values("prompt")
        .annotate(count=Count("id"))
        .values("count")
    )
    with transaction.atomic():
        PromptLease.objects.filter(user=user).delete()
        candidates = (
            _queue(user)
            .annotate(live=Coalesce(Subquery(live_leases, output_field=IntegerField()), 0))
            .filter(reviews_required__gt=F("reviews_done") + F("live"))
            .select_for_update(skip_locked=True, of=("self",))
        )
        tried: list[int] = []
        for _ in range(_CLAIM_ATTEMPTS):
            # One row at a time: locking a window would make concurrent claimers skip every row of it.
            prompt = candidates.exclude(pk__in=tried).first()
            if prompt is None or _has_room(prompt, now):
                break
            tried.append(prompt.pk)
        else:
            return None
        if prompt is not None:
            expires_at = now + timedelta(seconds=settings.LEASE_SECONDS)
            PromptLease.objects.create(prompt=prompt, user=user, expires_at=expires_at)
    return prompt


def _has_room(prompt: Prompt, now) -> bool:
    """Recount under the row lock: the claim query's snapshot may predate a lease committed meanwhile."""
    live = PromptLease.objects.filter(prompt=prompt, expires_at__gt=now).count()
    return prompt.reviews_done + live < prompt.reviews_required


@dataclass(frozen=True)
class ReviewInput:
    decision: str
    reasons: tuple[str, ...] = ()
    comment: str = ""
    category: Category | None = None
    subcategory: Category | None = None


def review_check(review: ReviewInput) -> None:
    if review.decision not in ReviewDecision.values:
        raise ValidationError(f"unknown decision {review.decision!r}")
    unknown = set(review.reasons) - set(RejectionReason.values)
    if unknown:
        raise ValidationError(f"unknown rejection reasons: {', '.join(sorted(unknown))}")
    if review.decision == ReviewDecision.REJECT and not review.reasons:
        raise ValidationError("a rejection needs at least one reason")
    if review.decision == ReviewDecision.ACCEPT and review.reasons:
        raise ValidationError("an accepted prompt has no rejection reasons")
    if RejectionReason.OTHER in review.reasons and not review.comment.strip():
        raise ValidationError("the reason 'other' needs a comment")
    if review.category and review.category.parent_id:
        raise ValidationError("the category must be a top-level category")
    if review.subcategory and review.subcategory.parent_id != getattr(review.category, "pk", None):
        raise ValidationError("the subcategory must belong to the chosen category")


def prompt_review_store(
    *, prompt: Prompt, reviewer: AbstractBaseUser, review: ReviewInput, is_final: bool = False
) -> PromptReview:
    """The PromptReview row of a checked review (callers hold the prompt's row lock)."""
    return PromptReview.objects.create(
        prompt=prompt,
        reviewer=reviewer,
        decision=review.decision,
        reasons=sorted(set(review.reasons)),
        comment=review.comment.strip(),
        category=review.category,
        subcategory=review.subcategory,
        is_final=is_final,
    )


def prompt_locked(prompt_id: int) -> Prompt:
    """The prompt's row, locked for this transaction; ValidationError when there is none."""
    prompt = Prompt.objects.select_for_update().filter(pk=prompt_id).first()
    if prompt is None:
        raise ValidationError(f"there is no prompt {prompt_id}")
    return prompt


def prompt_review_submit(*, user: AbstractBaseUser, prompt_id: int, review: ReviewInput) -> PromptReview:
    """Record one review of a prompt the user holds; a repeated submission returns the first review."""
    review_check(review)
    with transaction.atomic():
        prompt = prompt_locked(prompt_id)
        existing = PromptReview.objects.filter(prompt=prompt, reviewer=user).first()
        if existing is not None:
            return existing
        if not PromptLease.objects.filter(prompt=prompt, user=user).exists():
            raise ValidationError("this prompt is not handed to you (its lease ran out); take the next one")
        saved = prompt_review_store(prompt=prompt, reviewer=user, review=review)
        PromptLease.objects.filter(prompt=prompt, user=user).delete()
        Prompt.objects.filter(pk=prompt.pk).update(reviews_done=F("reviews_done") + 1)
        prompt.refresh_from_db()
        if prompt.reviews_done >= prompt.reviews_required:
            _prompt_settle(prompt)
    return saved


def prompt_review_change(*, user: AbstractBaseUser, prompt_id: int, review: ReviewInput) -> PromptReview:
    """The filter form's way back: replace the user's own review of a prompt and settle the prompt again from
    its reviews. Refused once a reviewer made the final decision or images were made for the prompt."""
    review_check(review)
    with transaction.atomic():
        prompt = prompt_locked(prompt_id)
        mine = PromptReview.objects.filter(prompt=prompt, reviewer=user, is_final=False).first()
        if mine is None:
            raise ValidationError("you have no review of this prompt to change")
        if prompt.reviews.filter(is_final=True).exists():
            raise ValidationError("a reviewer settled this prompt; its decision no longer changes here")
        if prompt.images.exists():
            raise ValidationError("images were made for this prompt; its decision stays")
        mine.decision, mine.reasons, mine.comment = review.decision, sorted(set(review.reasons)), review.comment.strip()
        mine.category, mine.subcategory = review.category, review.subcategory
        mine.save(update_fields=["decision", "reasons", "comment", "category", "subcategory"])
        prompt.status, prompt.needs_reviewer, prompt.rejection_reasons = PromptStatus.PENDING, False, []
        prompt.save(update_fields=["status", "needs_reviewer", "rejection_reasons", "updated_at"])
        if prompt.reviews_done >= prompt.reviews_required:
            _prompt_settle(prompt)
    return mine


def prompts_left_for(*, user: AbstractBaseUser) -> int:
    """Prompts still waiting for this user's review (the filter form's "left")."""
    return _queue(user).count()


def _prompt_settle(prompt: Prompt) -> None:
    reviews = list(prompt.reviews.order_by("created_at", "id"))
    decisions = {review.decision for review in reviews}
    if len(decisions) > 1:
        prompt.needs_reviewer = True
        prompt.save(update_fields=["needs_reviewer", "updated_at"])
        return
    latest = reviews[-1]
    prompt.status = PromptStatus.ACCEPTED if latest.decision == ReviewDecision.ACCEPT else PromptStatus.REJECTED
    prompt.rejection_reasons = sorted({reason for review in reviews for reason in review.reasons})
    if latest.category is not None:
        prompt.category, prompt.subcategory = latest.category, latest.subcategory
    prompt.save(update_fields=["status", "rejection_reasons", "category", "subcategory", "updated_at"])
