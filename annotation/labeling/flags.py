"""Reviewers' answers to annotator flags (spammers from the reliability fit, contradictions from model
scoring): dismiss the flag with a note, or stop the annotator's labeling through the deactivation service."""

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from annotation.labeling.services import annotator_deactivate
from annotation.models import AnnotatorFlag


def annotator_flag_open(*, annotator_id: int, kind: str, detail: str, figures: dict) -> AnnotatorFlag | None:
    """A new open flag, or None where one of this kind is open already (the partial unique index decides,
    also against another run flagging them meanwhile)."""
    try:
        with transaction.atomic():
            return AnnotatorFlag.objects.create(annotator_id=annotator_id, kind=kind, detail=detail, figures=figures)
    except IntegrityError:
        return None


class FlagReviewError(ValueError):
    """The review was refused; `status` is the HTTP status a page answers with."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def _open_flag_for(reviewer: AbstractBaseUser, flag_id: int) -> AnnotatorFlag:
    """The flag, locked (two reviewers on one flag take turns), while open and not about the reviewer."""
    flag = AnnotatorFlag.objects.select_for_update().select_related("annotator").filter(pk=flag_id).first()
    if flag is None:
        raise FlagReviewError(f"no annotator flag {flag_id}", status=404)
    if flag.reviewed_at is not None:
        raise FlagReviewError(f"flag {flag_id} was already reviewed", status=409)
    if flag.annotator_id == reviewer.pk:
        raise FlagReviewError("this flag is about you; another reviewer reviews it", status=403)
    return flag


def _close(flags, reviewer: AbstractBaseUser, note: str) -> None:
    flags.update(reviewed_by=reviewer, reviewed_at=timezone.now(), review_note=note)


def annotator_flag_dismiss(*, reviewer: AbstractBaseUser, flag_id: int, note: str) -> AnnotatorFlag:
    """Close the flag, the annotator keeps labeling; the note (required) says why the figures mislead."""
    note = note.strip()
    if not note:
        raise FlagReviewError("say in a note why the flag is dismissed")
    with transaction.atomic():
        flag = _open_flag_for(reviewer, flag_id)
        _close(AnnotatorFlag.objects.filter(pk=flag.pk), reviewer, note)
    flag.refresh_from_db()
    return flag


def annotator_flag_stop(*, reviewer: AbstractBaseUser, flag_id: int, note: str = "") -> AnnotatorFlag:
    """Stop the flagged annotator's labeling (and leave their judgements out of the next dataset versions);
    every open flag of theirs is closed with the same note, since they all led to this decision."""
    note = note.strip() or "labeling stopped"
    with transaction.atomic():
        flag = _open_flag_for(reviewer, flag_id)
        annotator_deactivate(
            user=flag.annotator, note=f"stopped by {reviewer.get_username()} on {flag.kind} flag {flag.pk}: {note}"
        )
        _close(AnnotatorFlag.objects.filter(annotator=flag.annotator, reviewed_at__isnull=True), reviewer, note)
    flag.refresh_from_db()
    return flag
