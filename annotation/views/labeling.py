"""The labeling form: works as a plain form post; the page's script upgrades it to the JSON API."""

import uuid

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from annotation.dimensions import DIMENSIONS
from annotation.selectors_labeling import annotator_counts, lease_images, lease_payload
from annotation.services import queue

SKIP_REASONS = (
    "An image does not load or is broken",
    "I cannot judge this prompt (language, knowledge)",
    "Offensive or unsafe content",
    "The two images are identical",
)
_ANSWER_CHOICES = [(answer, answer) for answer in queue.SCREEN_ANSWERS]


class JudgementForm(forms.Form):
    pair_id = forms.IntegerField(widget=forms.HiddenInput)
    client_token = forms.UUIDField(widget=forms.HiddenInput)
    duration_ms = forms.IntegerField(min_value=0, required=False, widget=forms.HiddenInput)
    aesthetics = forms.ChoiceField(choices=_ANSWER_CHOICES)
    detail = forms.ChoiceField(choices=_ANSWER_CHOICES)
    alignment = forms.ChoiceField(choices=_ANSWER_CHOICES)
    overall = forms.ChoiceField(choices=_ANSWER_CHOICES)


class SkipForm(forms.Form):
    pair_id = forms.IntegerField()
    reason = forms.CharField(max_length=200)


@login_required
@permission_required("annotation.label_pairs", raise_exception=True)
def label_form(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        _label_post(request)
        return redirect("annotation:label-form")
    try:
        lease = queue.pair_claim(annotator=request.user)
    except queue.LabelingDisabled as error:
        return render(request, "labeling/disabled.html", {"reason": str(error)}, status=403)
    context = {
        "lease": lease,
        "payload": lease_payload(lease) if lease else None,
        "images": lease_images(lease) if lease else None,
        "dimensions": DIMENSIONS,
        "answers": queue.SCREEN_ANSWERS,
        "counts": annotator_counts(user=request.user),
        "client_token": uuid.uuid4(),
        "skip_reasons": SKIP_REASONS,
    }
    return render(request, "labeling/form.html", context)


def _label_post(request: HttpRequest) -> None:
    """The no-script path: one judgement or one skip, then back to the form (post/redirect/get)."""
    if "reason" in request.POST:
        form = SkipForm(request.POST)
        if form.is_valid():
            _apply(request, lambda: queue.pair_skip(annotator=request.user, **form.cleaned_data), "Skipped.")
            return
    else:
        form = JudgementForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            answers = {dimension.key: data[dimension.key] for dimension in DIMENSIONS}
            _apply(
                request,
                lambda: queue.judgement_submit(
                    annotator=request.user,
                    pair_id=data["pair_id"],
                    answers=answers,
                    client_token=data["client_token"],
                    duration_ms=data["duration_ms"],
                ),
                "Saved.",
            )
            return
    messages.error(request, "Answer all four rows (left, tie or right) before submitting.")


def _apply(request: HttpRequest, action, done_message: str) -> None:
    try:
        action()
    except queue.QueueError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, done_message)
