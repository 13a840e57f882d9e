"""A reviewer settles a prompt whose filter reviews disagree: a final review sets its status and category."""

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction

from annotation.models import Prompt, PromptReview, PromptStatus, ReviewDecision
from annotation.prompts.services.filter import ReviewInput, prompt_locked, prompt_review_store, review_check


def prompt_disagreement_resolve(*, reviewer: AbstractBaseUser, prompt_id: int, review: ReviewInput) -> PromptReview:
    """Record the reviewer's final decision; refused (nothing changes) when the prompt is not in dispute
    or the reviewer reviewed it already - a disagreement is settled by someone outside it."""
    if not reviewer.has_perm("annotation.resolve_prompt_disagreements"):
        raise ValidationError("you may not settle prompt disagreements")
    review_check(review)
    with transaction.atomic():
        prompt = prompt_locked(prompt_id)
        if not prompt.needs_reviewer or prompt.status != PromptStatus.PENDING:
            raise ValidationError("this prompt is not waiting for a reviewer (someone may have settled it)")
        if PromptReview.objects.filter(prompt=prompt, reviewer=reviewer).exists():
            raise ValidationError("you reviewed this prompt yourself; another reviewer settles it")
        final = prompt_review_store(prompt=prompt, reviewer=reviewer, review=review, is_final=True)
        _prompt_decide(prompt, final)
    return final


def _prompt_decide(prompt: Prompt, final: PromptReview) -> None:
    accepted = final.decision == ReviewDecision.ACCEPT
    prompt.status = PromptStatus.ACCEPTED if accepted else PromptStatus.REJECTED
    prompt.rejection_reasons = final.reasons
    prompt.needs_reviewer = False
    if final.category is not None:
        prompt.category, prompt.subcategory = final.category, final.subcategory
    prompt.save(
        update_fields=["status", "rejection_reasons", "needs_reviewer", "category", "subcategory", "updated_at"]
    )
