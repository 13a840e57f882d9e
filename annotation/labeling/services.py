"""Reviewers' and admins' writes on labeling: adjudications, gold answers, stopping an annotator."""

from collections.abc import Mapping

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from annotation.dimensions import DIMENSION_KEYS
from annotation.models import Adjudication, AnnotatorProfile, Choice, Pair


class ReviewError(ValueError):
    """The review action was refused; the message says why."""


def _check_answers(answers: Mapping[str, str]) -> dict[str, str]:
    missing = [key for key in DIMENSION_KEYS if key not in answers]
    if missing:
        raise ReviewError(f"missing answers for: {', '.join(missing)}")
    wrong = {key: answers[key] for key in DIMENSION_KEYS if answers[key] not in Choice.values}
    if wrong:
        raise ReviewError(f"answers must be first, second or tie; got {wrong}")
    return {key: answers[key] for key in DIMENSION_KEYS}


def pair_adjudicate(
    *, reviewer: AbstractBaseUser, pair_id: int, answers: Mapping[str, str], note: str = ""
) -> tuple[Adjudication, bool]:
    """Store the reviewer's final answer for a pair (canonical first/second/tie); a second call replaces it."""
    clean = _check_answers(answers)
    with transaction.atomic():
        # The pair row lock serialises two reviewers adjudicating the same pair at once.
        pair = Pair.objects.select_for_update().filter(pk=pair_id).first()
        if pair is None:
            raise ReviewError(f"no pair {pair_id}")
        adjudication = Adjudication.objects.filter(pair=pair).first()
        created = adjudication is None
        adjudication = adjudication or Adjudication(pair=pair)
        adjudication.reviewer = reviewer
        adjudication.note = note.strip()
        for key, value in clean.items():
            setattr(adjudication, key, value)
        try:
            adjudication.full_clean(validate_unique=False)
        except ValidationError as error:
            raise ReviewError("; ".join(error.messages)) from None
        adjudication.save()
    return adjudication, created


def pair_gold_set(*, pair_id: int, answers: Mapping[str, str]) -> Pair:
    """Make a pair a gold pair with these answers (canonical first/second/tie per dimension)."""
    clean = _check_answers(answers)
    with transaction.atomic():
        updated = Pair.objects.filter(pk=pair_id).update(is_gold=True, gold_answers=clean)
        if not updated:
            raise ReviewError(f"no pair {pair_id}")
    return Pair.objects.get(pk=pair_id)


def annotator_deactivate(*, user: AbstractBaseUser, note: str = "") -> AnnotatorProfile:
    """Stop a person labeling and leave their judgements out of the next dataset versions."""
    with transaction.atomic():
        AnnotatorProfile.objects.get_or_create(user=user)
        # Locked like the queue locks it, so a claim in flight finishes before the switch or sees it.
        profile = AnnotatorProfile.objects.select_for_update().get(user=user)
        profile.labeling_enabled = False
        profile.judgements_excluded = True
        profile.deactivated_at = profile.deactivated_at or timezone.now()
        if note:
            profile.note = f"{profile.note}\n{note}".strip()
        profile.save(update_fields=["labeling_enabled", "judgements_excluded", "deactivated_at", "note"])
    return profile
