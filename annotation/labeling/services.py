"""Reviewers' and admins' writes on labeling: adjudications, gold answers, stopping an annotator."""

from collections.abc import Mapping

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from annotation.dimensions import DIMENSION_KEYS
from annotation.models import Adjudication, AnnotatorProfile, Choice, Judgement, Pair, PairLease


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
    """Store the reviewer's final answer for a pair (canonical first/second/tie); a second call replaces it.
    Refused to a reviewer who judged the pair: a disagreement is settled by someone outside it."""
    clean = _check_answers(answers)
    with transaction.atomic():
        pair = _pair_for_review(reviewer, pair_id)
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


def pair_gold_set(*, reviewer: AbstractBaseUser, pair_id: int, answers: Mapping[str, str]) -> Pair:
    """Make a pair a gold pair with these answers (canonical first/second/tie per dimension); refused to a
    reviewer who judged it (their own answers would become the key others are scored against).

    A gold pair asks for the fixed count PAIR_JUDGEMENTS_REQUIRED at least (adaptive redundancy made it
    with fewer): its judgements measure the judges, whatever its label's posterior."""
    clean = _check_answers(answers)
    with transaction.atomic():
        pair = _pair_for_review(reviewer, pair_id)
        pair.is_gold, pair.gold_answers = True, clean
        pair.judgements_required = max(pair.judgements_required, settings.PAIR_JUDGEMENTS_REQUIRED)
        pair.save(update_fields=["is_gold", "gold_answers", "judgements_required"])
    return pair


def _pair_for_review(reviewer: AbstractBaseUser, pair_id: int) -> Pair:
    """The pair, locked (two reviewers acting on one pair at once take turns), unless the reviewer judged it."""
    pair = Pair.objects.select_for_update().filter(pk=pair_id).first()
    if pair is None:
        raise ReviewError(f"no pair {pair_id}")
    if Judgement.objects.filter(pair=pair, annotator=reviewer).exists():
        raise ReviewError(f"you judged pair {pair_id} yourself; another reviewer settles it")
    return pair


def annotator_deactivate(*, user: AbstractBaseUser, note: str = "") -> AnnotatorProfile:
    """Stop a person labeling and leave their judgements out of the next dataset versions.

    Their leases are released at once (the pairs go back to the queue) and, since a submit needs a lease
    and a claim checks the profile under the same lock, nothing they send later is stored."""
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
        PairLease.objects.filter(annotator=user).delete()
    return profile
