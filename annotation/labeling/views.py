"""Labeling pages: the labeling form (a plain form post the page's script upgrades to the JSON API), and the
reviewer pages: quality figures with the reliability fit, the disputes list with adjudication and gold answers,
the annotator flags with their review."""

import uuid

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from annotation.dimensions import DIMENSIONS
from annotation.labeling import flags, queue, queue_order, reliability
from annotation.labeling import services as review
from annotation.labeling.disagreements import model_disagreements
from annotation.labeling.selectors import (
    annotator_counts,
    annotator_flags_open,
    annotator_flags_reviewed,
    disputed_pairs,
    guidelines,
    lease_payload,
    open_pairs_count,
    pair_vote_rows,
    quality_figures,
    reliabilities_by_annotator,
    reliability_run_latest,
    scoring_runs_succeeded,
)
from annotation.models import Choice
from mhp.inputs import INT_MAX, form_id
from mhp.jobs import JobStatus

SKIP_REASONS = (
    "An image does not load or is broken",
    "I cannot judge this prompt (language, knowledge)",
    "Offensive or unsafe content",
    "The two images are identical",
)
_ANSWER_CHOICES = [(answer, answer) for answer in queue.SCREEN_ANSWERS]


class JudgementForm(forms.Form):
    pair_id = form_id(widget=forms.HiddenInput)
    client_token = forms.UUIDField(widget=forms.HiddenInput)
    duration_ms = forms.IntegerField(min_value=0, max_value=INT_MAX, required=False, widget=forms.HiddenInput)
    aesthetics = forms.ChoiceField(choices=_ANSWER_CHOICES)
    detail = forms.ChoiceField(choices=_ANSWER_CHOICES)
    alignment = forms.ChoiceField(choices=_ANSWER_CHOICES)
    overall = forms.ChoiceField(choices=_ANSWER_CHOICES)


class SkipForm(forms.Form):
    pair_id = form_id()
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
        "dimensions": DIMENSIONS,
        "answers": queue.SCREEN_ANSWERS,
        "counts": annotator_counts(user=request.user),
        "client_token": uuid.uuid4(),
        "skip_reasons": SKIP_REASONS,
        "guidelines": guidelines(),
        "open_pairs": open_pairs_count(),
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


DISPUTES_SHOWN = 50
QUEUE_ORDER_RUNS_SHOWN = 50


@login_required
@permission_required("annotation.view_quality", raise_exception=True)
def quality_page(request: HttpRequest) -> HttpResponse:
    figures = quality_figures()
    by_dimension = [
        (d, figures["dimensions"][d.key], _project_values(figures["dimensions"][d.key])) for d in DIMENSIONS
    ]
    context = {
        "figures": figures,
        "dimensions": by_dimension,
        "dimension_chart": bar_chart([(d.key, d.label, values) for d, _, values in by_dimension]),
        "annotator_chart": bar_chart(
            [(row["username"], row["username"], _annotator_values(row)) for row in figures["annotators"]]
        ),
        "annotator_rows": _annotator_rows(figures["annotators"], reliabilities_by_annotator()),
        "reliability_run": _run_display(reliability_run_latest()),
        "spammer_threshold": settings.SPAMMER_INFORMATIVENESS,
    }
    return render(request, "labeling/quality.html", context)


def _annotator_rows(annotators: list[dict], reliabilities: dict[int, dict[str, dict]]) -> list[dict]:
    """Each annotator's figures per dimension, the reliability fit's beside them (None before a fit)."""
    rows = []
    for row in annotators:
        fitted = reliabilities.get(row["user_id"], {})
        per_dimension = [(d, row["dimensions"][d.key], fitted.get(d.key)) for d in DIMENSIONS]
        rows.append({**row, "per_dimension": per_dimension})
    return rows


def _run_display(run) -> dict | None:
    if run is None:
        return None
    live = run.status in (JobStatus.QUEUED, JobStatus.RUNNING)
    return {"run": run, "live": live, "percent": round(run.progress * 100), "skipped": run.metrics.get("skipped")}


@login_required
@permission_required("annotation.view_quality", raise_exception=True)
@require_POST
def reliability_refit(request: HttpRequest) -> HttpResponse:
    """The quality page's "Refit reliabilities": a new fit queued, or the one already under way shown."""
    run, created = reliability.reliability_run_request(created_by=request.user)
    if created:
        messages.success(request, f"Reliability fit {run.pk} queued.")
    else:
        messages.info(request, f"Reliability fit {run.pk} is already {run.get_status_display().lower()}.")
    return redirect(f"{reverse('annotation:label-quality')}#reliability-run")


def _project_values(fig: dict) -> list[tuple[str, float | None]]:
    return [
        ("agreement", fig["percent_agreement"]),
        ("kappa", fig["fleiss_kappa"]),
        ("alpha", fig["krippendorff_alpha"]),
    ]


def _annotator_values(row: dict) -> list[tuple[str, float | None]]:
    """The overall dimension tells a careless annotator apart first: agreement, gold accuracy, ties."""
    overall = row["dimensions"]["overall"]
    return [("agreement", overall["agreement"]), ("gold", overall["gold_accuracy"]), ("ties", overall["tie_rate"])]


# Horizontal bar chart geometry (viewBox units): labels on the left, one bar per figure, a group per row.
CHART_WIDTH, LABEL_WIDTH, VALUE_WIDTH = 640, 190, 50
BAR_HEIGHT, BAR_GAP, GROUP_GAP = 14, 4, 14
FIGURE_COLOURS = {
    "agreement": "#3457d5",
    "kappa": "#0891b2",
    "alpha": "#7c3aed",
    "gold": "#16a34a",
    "ties": "#d97706",
}


def bar_chart(groups: list[tuple[str, str, list[tuple[str, float | None]]]]) -> dict:
    """Bars for values in [-1, 1] (kappa and alpha go below 0); the axis starts at -1 only when one does."""
    lower = -1.0 if any(v is not None and v < 0 for _, _, values in groups for _, v in values) else 0.0
    plot = CHART_WIDTH - LABEL_WIDTH - VALUE_WIDTH

    def x_of(value: float) -> float:
        return round(LABEL_WIDTH + plot * (max(lower, min(1.0, value)) - lower) / (1.0 - lower), 1)

    rows, y = [], GROUP_GAP / 2
    for key, label, values in groups:
        bars = [_bar(figure, value, y + i * (BAR_HEIGHT + BAR_GAP), x_of) for i, (figure, value) in enumerate(values)]
        height = len(values) * (BAR_HEIGHT + BAR_GAP) - BAR_GAP
        rows.append({"key": key, "label": label, "bars": bars, "label_y": y + height / 2 + 4})
        y += height + GROUP_GAP
    ticks = {x_of(t): f"{t:g}" for t in (lower, 0.0, 0.5, 1.0)}
    return {
        "width": CHART_WIDTH,
        "height": round(y),
        "view_height": round(y) + 20,
        "tick_y": round(y) + 14,
        "rows": rows,
        "zero_x": x_of(0.0),
        "ticks": [{"x": x, "label": text} for x, text in sorted(ticks.items())],
        "legend": [(figure, FIGURE_COLOURS[figure]) for figure, _ in (groups[0][2] if groups else [])],
    }


def _bar(figure: str, value: float | None, top: float, x_of) -> dict:
    """One bar from zero to the value (leftwards when negative); a value of None draws only an 'n/a' text."""
    bar = {"figure": figure, "value": value, "y": top, "height": BAR_HEIGHT, "text_y": top + BAR_HEIGHT - 3}
    if value is None:
        return bar | {"text_x": x_of(0.0) + 4}
    left, right = sorted((x_of(0.0), x_of(value)))
    return bar | {"x": left, "width": max(right - left, 1.0), "colour": FIGURE_COLOURS[figure], "text_x": right + 4}


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
    context = {"rows": rows, "dimensions": DIMENSIONS, "choices": Choice.choices, **_model_disagreement_context()}
    return render(request, "labeling/disputes.html", context)


def _model_disagreement_context() -> dict:
    """The disputes page's section of pairs a model confidently contradicts (annotation.labeling.disagreements)."""
    run, pairs = model_disagreements(limit=DISPUTES_SHOWN)
    rows = [
        {
            "pair": pair,
            "current": _current_answers(pair),
            "votes": [
                {
                    **vote,
                    "model_first": getattr(pair, f"model_{vote['key']}"),
                    "contradicted": vote["key"] in pair.contradicted_keys,
                }
                for vote in pair_vote_rows(pair)
            ],
        }  # fmt: skip
        for pair in pairs
    ]
    return {"scoring_run": run, "model_rows": rows}


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
            review.pair_gold_set(reviewer=request.user, pair_id=data["pair_id"], answers=answers)
            messages.success(request, f"Pair {data['pair_id']} is now a gold pair.")
        else:
            review.pair_adjudicate(reviewer=request.user, pair_id=data["pair_id"], answers=answers, note=data["note"])
            messages.success(request, f"Pair {data['pair_id']} adjudicated.")
    except review.ReviewError as error:
        messages.error(request, str(error))
    return redirect("annotation:label-disputes")


class FlagReviewForm(forms.Form):
    flag_id = form_id(widget=forms.HiddenInput)
    action = forms.ChoiceField(choices=[("dismiss", "dismiss"), ("stop", "stop")])
    note = forms.CharField(required=False, max_length=2000)


def _flags_render(request: HttpRequest, status: int = 200) -> HttpResponse:
    context = {"open_flags": annotator_flags_open(), "reviewed_flags": annotator_flags_reviewed()}
    return render(request, "labeling/flags.html", context, status=status)


@login_required
@permission_required("annotation.adjudicate_pairs", raise_exception=True)
def flags_page(request: HttpRequest) -> HttpResponse:
    """Open annotator flags (spammers, contradictions) with their figures, and the latest reviews."""
    return _flags_render(request)


@login_required
@permission_required("annotation.adjudicate_pairs", raise_exception=True)
@require_POST
def flag_review(request: HttpRequest) -> HttpResponse:
    """Dismiss a flag with a note, or stop the annotator; a refusal answers 4xx with the list and why."""
    form = FlagReviewForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose dismiss or stop on a flag of the list (a note is at most 2000 characters).")
        return _flags_render(request, status=400)
    data = form.cleaned_data
    try:
        if data["action"] == "stop":
            flag = flags.annotator_flag_stop(reviewer=request.user, flag_id=data["flag_id"], note=data["note"])
            messages.success(request, f"{flag.annotator.get_username()} can no longer label; flag closed.")
        else:
            flag = flags.annotator_flag_dismiss(reviewer=request.user, flag_id=data["flag_id"], note=data["note"])
            messages.success(request, f"Flag on {flag.annotator.get_username()} dismissed.")
    except flags.FlagReviewError as error:
        messages.error(request, str(error))
        return _flags_render(request, status=error.status)
    return redirect("annotation:label-flags")


class QueueOrderForm(forms.Form):
    action = forms.ChoiceField(choices=[("apply", "apply"), ("reset", "reset")])
    scoring_run = form_id(required=False)
    random_share = forms.FloatField(required=False, min_value=0.0, max_value=1.0)

    def clean(self):
        data = super().clean()
        if data.get("action") != "apply":
            return data
        if data.get("random_share") is None:
            self.add_error("random_share", "Give the share of pairs served at random (0 to 1).")
        run = scoring_runs_succeeded().filter(pk=data.get("scoring_run") or 0).first()
        if run is None:
            self.add_error("scoring_run", "Choose a pair scoring run that succeeded.")
        data["run"] = run
        return data


@login_required
@permission_required("annotation.view_queueorder", raise_exception=True)
@require_http_methods(["GET", "POST"])
def queue_order_page(request: HttpRequest) -> HttpResponse:
    """The order fresh pairs are served in: see it, apply a scoring run's guided order, or reset to id order."""
    if request.method == "GET":
        return _queue_order_render(request, QueueOrderForm(initial={"random_share": settings.QUEUE_RANDOM_SHARE}))
    if not request.user.has_perm("annotation.add_queueorder"):
        raise PermissionDenied
    form = QueueOrderForm(request.POST)
    if not form.is_valid():
        return _queue_order_render(request, form, status=400)
    data = form.cleaned_data
    if data["action"] == "reset":
        queue_order.queue_order_request(created_by=request.user)
        messages.success(request, "Id order queued: the page shows it in force once its job is done.")
    else:
        queue_order.queue_order_request(run=data["run"], random_share=data["random_share"], created_by=request.user)
        messages.success(
            request, f"Order by scoring run {data['run'].pk} queued: the page shows it in force once its job is done."
        )
    return redirect("annotation:label-queue-order")


def _queue_order_render(request: HttpRequest, form: QueueOrderForm, status: int = 200) -> HttpResponse:
    context = {
        "form": form,
        "current": queue_order.queue_order_current(),
        "pending": queue_order.queue_orders_pending(),
        "runs": scoring_runs_succeeded()[:QUEUE_ORDER_RUNS_SHOWN],
        "can_change": request.user.has_perm("annotation.add_queueorder"),
    }
    return render(request, "labeling/queue_order.html", context, status=status)
