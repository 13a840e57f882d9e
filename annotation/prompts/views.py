"""The prompt filter form (one prompt at a time, keyboard-first) and the reviewers' disagreement page;
thin doors onto services.prompt_filter and services.prompt_disagreements."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from annotation.models import Category, PromptReview, RejectionReason, ReviewDecision
from annotation.prompts.selectors import prompt_disagreements_list
from annotation.prompts.services.disagreements import prompt_disagreement_resolve
from annotation.prompts.services.filter import (
    ReviewInput,
    prompt_lease_claim,
    prompt_review_change,
    prompt_review_submit,
    prompts_left_for,
)
from mhp.inputs import form_id

DISAGREEMENTS_PER_PAGE = 50


class PromptReviewForm(forms.Form):
    prompt_id = form_id(widget=forms.HiddenInput)
    decision = forms.ChoiceField(choices=ReviewDecision.choices)
    reasons = forms.MultipleChoiceField(choices=RejectionReason.choices, required=False)
    comment = forms.CharField(required=False, max_length=2000)
    category = forms.ModelChoiceField(Category.objects.filter(parent__isnull=True), required=False)
    subcategory = forms.ModelChoiceField(Category.objects.filter(parent__isnull=False), required=False)

    def review(self) -> ReviewInput:
        data = self.cleaned_data
        return ReviewInput(
            decision=data["decision"],
            reasons=tuple(data["reasons"]),
            comment=data["comment"],
            category=data["category"],
            subcategory=data["subcategory"],
        )


class PromptChangeForm(PromptReviewForm):
    change = forms.BooleanField(required=True, widget=forms.HiddenInput)


@login_required
@permission_required("annotation.filter_prompts", raise_exception=True)
def prompt_filter(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        _filter_post(request)
        return redirect("annotation:prompt-filter")
    changing = _review_to_change(request)
    prompt = changing.prompt if changing else prompt_lease_claim(user=request.user)
    context = {
        "prompt": prompt,
        "changing": changing,
        "left": prompts_left_for(user=request.user),
        "last": PromptReview.objects.filter(reviewer=request.user, is_final=False).order_by("-created_at").first(),
        "reasons": list(enumerate(RejectionReason.choices, start=1)),
        "categories": Category.objects.filter(parent__isnull=True),
        "subcategories": Category.objects.filter(parent__isnull=False).select_related("parent"),
    }
    return render(request, "prompts/filter.html", context)


def _review_to_change(request: HttpRequest) -> PromptReview | None:
    """With ?change=N: the user's own review of prompt N, to show again and change."""
    field = form_id()
    try:
        prompt_id = field.clean(request.GET.get("change")) if "change" in request.GET else None
    except ValidationError:
        return None
    if prompt_id is None:
        return None
    return PromptReview.objects.select_related("prompt").filter(prompt_id=prompt_id, reviewer=request.user).first()


def _filter_post(request: HttpRequest) -> None:
    changing = "change" in request.POST
    form = (PromptChangeForm if changing else PromptReviewForm)(request.POST)
    if not form.is_valid():
        messages.error(request, "The review was not understood: " + form.errors.as_text())
        return
    prompt_id, review = form.cleaned_data["prompt_id"], form.review()
    submit = prompt_review_change if changing else prompt_review_submit
    try:
        submit(user=request.user, prompt_id=prompt_id, review=review)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return
    verb = "accepted" if review.decision == ReviewDecision.ACCEPT else "rejected"
    messages.success(request, f"Prompt #{prompt_id} {'changed: ' if changing else ''}{verb}.")


@login_required
@permission_required("annotation.resolve_prompt_disagreements", raise_exception=True)
def prompt_disagreements(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = PromptReviewForm(request.POST)
        if form.is_valid():
            try:
                prompt_disagreement_resolve(
                    reviewer=request.user, prompt_id=form.cleaned_data["prompt_id"], review=form.review()
                )
            except ValidationError as error:
                messages.error(request, " ".join(error.messages))
            else:
                messages.success(request, f"Prompt {form.cleaned_data['prompt_id']} decided.")
        else:
            messages.error(request, "The decision was not understood: " + form.errors.as_text())
        return redirect("annotation:prompt-disagreements")
    context = {
        "prompts": prompt_disagreements_list(reviewer=request.user)[:DISAGREEMENTS_PER_PAGE],
        "reasons": RejectionReason.choices,
        "categories": Category.objects.filter(parent__isnull=True),
        "subcategories": Category.objects.filter(parent__isnull=False).select_related("parent"),
    }
    return render(request, "prompts/disagreements.html", context)
