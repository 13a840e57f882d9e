"""The prompt filter form (one prompt at a time, keyboard-first) and the reviewers' disagreement page;
thin doors onto services.prompt_filter and services.prompt_disagreements."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from annotation.models import Category, RejectionReason, ReviewDecision
from annotation.prompts.selectors import prompt_disagreements_list
from annotation.prompts.services.disagreements import prompt_disagreement_resolve
from annotation.prompts.services.filter import ReviewInput, prompt_lease_claim, prompt_review_submit
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


@login_required
@permission_required("annotation.filter_prompts", raise_exception=True)
def prompt_filter(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = PromptReviewForm(request.POST)
        if form.is_valid():
            try:
                prompt_review_submit(user=request.user, prompt_id=form.cleaned_data["prompt_id"], review=form.review())
            except ValidationError as error:
                messages.error(request, " ".join(error.messages))
        else:
            messages.error(request, "The review was not understood: " + form.errors.as_text())
        return redirect("annotation:prompt-filter")
    prompt = prompt_lease_claim(user=request.user)
    context = {
        "prompt": prompt,
        "reasons": list(enumerate(RejectionReason.choices, start=1)),
        "categories": Category.objects.filter(parent__isnull=True),
        "subcategories": Category.objects.filter(parent__isnull=False).select_related("parent"),
    }
    return render(request, "prompts/filter.html", context)


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
