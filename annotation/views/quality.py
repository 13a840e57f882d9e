"""Reviewer pages: quality figures, and the disputes list with adjudication and gold answers."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from annotation.dimensions import DIMENSIONS
from annotation.models import Choice
from annotation.selectors_quality import disputed_pairs, pair_vote_rows, quality_figures
from annotation.services import review

DISPUTES_SHOWN = 50


@login_required
@permission_required("annotation.view_quality", raise_exception=True)
def quality_page(request: HttpRequest) -> HttpResponse:
    figures = quality_figures()
    context = {
        "figures": figures,
        "dimensions": [
            (d, figures["dimensions"][d.key], _project_values(figures["dimensions"][d.key])) for d in DIMENSIONS
        ],
        "annotator_rows": [
            {**row, "per_dimension": [(d, row["dimensions"][d.key]) for d in DIMENSIONS]}
            for row in figures["annotators"]
        ],
    }
    return render(request, "labeling/quality.html", context)


def _project_values(fig: dict) -> list[tuple[str, float | None]]:
    return [
        ("agreement", fig["percent_agreement"]),
        ("kappa", fig["fleiss_kappa"]),
        ("alpha", fig["krippendorff_alpha"]),
    ]


class AdjudicationForm(forms.Form):
    pair_id = forms.IntegerField(widget=forms.HiddenInput)
    action = forms.ChoiceField(choices=[("adjudicate", "adjudicate"), ("gold", "gold")])
    aesthetics = forms.ChoiceField(choices=Choice.choices)
    detail = forms.ChoiceField(choices=Choice.choices)
    alignment = forms.ChoiceField(choices=Choice.choices)
    overall = forms.ChoiceField(choices=Choice.choices)
    note = forms.CharField(required=False, max_length=2000)


@login_required
@permission_required("annotation.adjudicate_pairs", raise_exception=True)
def disputes_page(request: HttpRequest) -> HttpResponse:
    rows = [
        {"pair": pair, "votes": pair_vote_rows(pair), "current": _current_answers(pair)}
        for pair in disputed_pairs(limit=DISPUTES_SHOWN)
    ]
    context = {"rows": rows, "dimensions": DIMENSIONS, "choices": Choice.choices}
    return render(request, "labeling/disputes.html", context)


def _current_answers(pair) -> dict[str, str]:
    """What the form shows checked: the adjudication if any, else the gold answers, else nothing."""
    adjudication = getattr(pair, "adjudication", None)
    if adjudication is not None:
        return {d.key: getattr(adjudication, d.key) for d in DIMENSIONS}
    return pair.gold_answers or {}


@login_required
@permission_required("annotation.adjudicate_pairs", raise_exception=True)
@require_POST
def dispute_post(request: HttpRequest) -> HttpResponse:
    form = AdjudicationForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose first, second or tie on all four dimensions.")
        return redirect("annotation:label-disputes")
    data = form.cleaned_data
    answers = {d.key: data[d.key] for d in DIMENSIONS}
    try:
        if data["action"] == "gold":
            review.pair_gold_set(pair_id=data["pair_id"], answers=answers)
            messages.success(request, f"Pair {data['pair_id']} is now a gold pair.")
        else:
            review.pair_adjudicate(reviewer=request.user, pair_id=data["pair_id"], answers=answers, note=data["note"])
            messages.success(request, f"Pair {data['pair_id']} adjudicated.")
    except review.ReviewError as error:
        messages.error(request, str(error))
    return redirect("annotation:label-disputes")
