"""Staff pages of training runs and evaluation results. They read rows and call services: no torch in the
web process (`training.runs` imports torch only inside the functions a GPU worker runs)."""

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from annotation.dimensions import DIMENSIONS
from training import selectors
from training.baselines.tables import GENERATOR_RANKING, latest_results, ranking_chart, results_tables
from training.charts import loss_chart, validation_chart
from training.evaluation.jobs import EvaluationError, EvaluationOptions, evaluation_run_create
from training.forms import EvaluationRunForm, PairScoringRunForm, TrainingRunForm
from training.liveness import training_runs_reap
from training.pair_scoring import PairScoringError, pair_scoring_run_cancel, pair_scoring_run_create
from training.runs import (
    TrainingError,
    training_run_can_resume,
    training_run_cancel,
    training_run_create,
    training_run_resume,
)

REFRESH_SECONDS = 5
EVALUATIONS_LISTED = 50


def _percent_rows(table) -> list[tuple[str, list[float | None]]]:
    return [(label, [None if cell is None else 100 * cell for cell in cells]) for label, cells in table.rows]


@staff_member_required
@require_http_methods(["GET", "POST"])
def results(request: HttpRequest) -> HttpResponse:
    """The latest succeeded evaluation per (method, benchmark), as the paper's two tables; the evaluation
    runs with their status; and the form that queues one on the gpu queue."""
    can_start = request.user.has_perm("training.add_evaluationrun")
    form = EvaluationRunForm(request.POST or None) if can_start else None
    if request.method == "POST":
        if not can_start:
            raise PermissionDenied
        if form.is_valid() and _start_evaluation(request, form):
            return redirect("training-pages:results")
    runs = (
        selectors.succeeded_evaluations()
        .exclude(benchmark=GENERATOR_RANKING)
        .values("method", "benchmark", "config", "metrics")
    )
    overview, mhp = results_tables(latest_results(runs.iterator()))
    labels = {dimension.key: dimension.label for dimension in DIMENSIONS}
    evaluations = selectors.evaluation_run_list(limit=EVALUATIONS_LISTED)
    context = {
        "overview": {"columns": overview.columns, "rows": _percent_rows(overview)},
        "mhp": [
            {"title": table.title, "columns": [labels.get(c, c) for c in table.columns], "rows": _percent_rows(table)}
            for table in mhp
        ],
        "form": form,
        "evaluations": evaluations,
        "refresh_seconds": REFRESH_SECONDS if any(selectors.job_is_active(run) for run in evaluations) else None,
    }
    return render(request, "training/results.html", context, status=400 if form is not None and form.errors else 200)


def _start_evaluation(request: HttpRequest, form: EvaluationRunForm) -> bool:
    data = form.cleaned_data
    options = EvaluationOptions(
        arch=data["arch"].strip(),
        aesthetic_clip=data["aesthetic_clip"].strip(),
        batch_size=data["batch_size"],
        allow_untrained_dimensions=data["allow_untrained_dimensions"],
    )
    try:
        run = evaluation_run_create(
            method=data["method"],
            weights=data["weights"].strip(),
            training_run=data["training_run"],
            options=options,
            created_by=request.user,
            **form.benchmark_target(),
        )
    except EvaluationError as error:
        form.add_error(None, str(error))
        return False
    messages.success(request, f"Evaluation {run.pk} ({run.method} on {run.benchmark}) queued on the gpu queue.")
    return True


@staff_member_required
def generators(request: HttpRequest) -> HttpResponse:
    """The latest generator ranking as a bar chart per dimension (plain CSS) and a table."""
    run = selectors.succeeded_evaluations().filter(benchmark=GENERATOR_RANKING).first()
    context = {"run": run, "chart": ranking_chart(run.metrics) if run else []}
    return render(request, "training/generators.html", context)


@login_required
@permission_required("training.view_trainingrun", raise_exception=True)
@require_http_methods(["GET", "POST"])
def runs(request: HttpRequest) -> HttpResponse:
    """The list of training runs and the form that starts one on the gpu queue."""
    can_start = request.user.has_perm("training.add_trainingrun")
    form = TrainingRunForm(request.POST or None) if can_start else None
    if request.method == "POST":
        if not can_start:
            raise PermissionDenied
        if form.is_valid():
            try:
                run = training_run_create(
                    name=form.cleaned_data["name"],
                    version=form.cleaned_data["dataset_version"],
                    options=form.options(),
                    created_by=request.user,
                    enqueue=True,
                )
            except TrainingError as error:
                form.add_error(None, str(error))
            else:
                messages.success(request, f"Training run {run.name} queued on the gpu queue.")
                return redirect("training-pages:run", run_id=run.pk)
    training_runs_reap()  # a run whose worker died shows as failed even where no beat task runs
    context = {"rows": selectors.training_run_list(), "form": form}
    return render(request, "training/runs.html", context, status=400 if form is not None and form.errors else 200)


def _run_or_404(run_id: int):
    run = selectors.training_run_get(run_id=run_id)
    if run is None:
        raise Http404("no training run with this id")
    return run


@login_required
@permission_required("training.view_trainingrun", raise_exception=True)
@require_GET
def run(request: HttpRequest, run_id: int) -> HttpResponse:
    """One run: status, progress, output paths, configuration, loss and validation charts."""
    training_runs_reap()
    run = _run_or_404(run_id)
    active = selectors.training_run_is_active(run)
    context = {
        "run": run,
        "active": active,
        "refresh_seconds": REFRESH_SECONDS if active else None,
        "can_cancel": active and not run.cancel_requested and request.user.has_perm("training.change_trainingrun"),
        "can_resume": training_run_can_resume(run) and request.user.has_perm("training.change_trainingrun"),
        "best_val_mean": selectors.best_validation_mean(run.metrics),
        "latest_val": selectors.latest_validation(run.metrics),
        "config_rows": sorted(run.config.items()),
        "loss_chart": loss_chart(run.metrics),
        "val_chart": validation_chart(run.metrics),
    }
    return render(request, "training/run.html", context)


@login_required
@permission_required("training.view_trainingrun", raise_exception=True)
@require_GET
def run_json(request: HttpRequest, run_id: int) -> JsonResponse:
    """The run's progress and metric history, for scripts and pages that poll."""
    training_runs_reap()
    return JsonResponse(selectors.training_run_status(_run_or_404(run_id)))


@login_required
@permission_required("training.change_trainingrun", raise_exception=True)
@require_POST
def run_cancel(request: HttpRequest, run_id: int) -> HttpResponse:
    """Ask a queued or running run to stop (a running one stops after its current step)."""
    run = _run_or_404(run_id)
    if selectors.training_run_is_active(run):
        training_run_cancel(run=run)
        messages.success(request, f"Cancel requested for training run {run.name}.")
    else:
        messages.error(request, f"Training run {run.name} is {run.status}: nothing to cancel.")
    return redirect("training-pages:run", run_id=run.pk)


@login_required
@permission_required("training.change_trainingrun", raise_exception=True)
@require_POST
def run_resume(request: HttpRequest, run_id: int) -> HttpResponse:
    """Queue a failed or cancelled run again on the gpu queue, from its last checkpoint."""
    run = _run_or_404(run_id)
    try:
        run = training_run_resume(run=run)
    except TrainingError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"Training run {run.name} queued to resume from step {run.checkpoint_step}.")
    return redirect("training-pages:run", run_id=run.pk)


PAIR_SCORINGS_LISTED = 50


@staff_member_required
@permission_required("training.view_pairscoringrun", raise_exception=True)
@require_http_methods(["GET", "POST"])
def pair_scorings(request: HttpRequest) -> HttpResponse:
    """The pair scoring runs with their status and figures, and the form that queues one on the gpu queue."""
    can_start = request.user.has_perm("training.add_pairscoringrun")
    form = PairScoringRunForm(request.POST or None) if can_start else None
    if request.method == "POST":
        if not can_start:
            raise PermissionDenied
        if form.is_valid() and _start_pair_scoring(request, form):
            return redirect("training-pages:pair-scorings")
    scorings = selectors.pair_scoring_run_list(limit=PAIR_SCORINGS_LISTED)
    context = {
        "form": form,
        "scorings": scorings,
        "can_cancel": request.user.has_perm("training.change_pairscoringrun"),
        "active_statuses": selectors.ACTIVE_STATUSES,
        "refresh_seconds": REFRESH_SECONDS if any(selectors.job_is_active(run) for run in scorings) else None,
    }
    status = 400 if form is not None and form.errors else 200
    return render(request, "training/pair_scorings.html", context, status=status)


@staff_member_required
@permission_required("training.change_pairscoringrun", raise_exception=True)
@require_POST
def pair_scoring_cancel(request: HttpRequest, run_id: int) -> HttpResponse:
    """Stop a queued pair scoring run at once, a running one after its current block."""
    run = selectors.pair_scoring_run_get(run_id=run_id)
    if run is None:
        raise Http404("no pair scoring run with this id")
    try:
        pair_scoring_run_cancel(run=run)
    except PairScoringError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"Cancel requested for pair scoring run {run.pk}.")
    return redirect("training-pages:pair-scorings")


def _start_pair_scoring(request: HttpRequest, form: PairScoringRunForm) -> bool:
    data = form.cleaned_data
    try:
        run = pair_scoring_run_create(
            checkpoint=data["checkpoint"],
            training_run=data["training_run"],
            batch_size=data["batch_size"],
            allow_untrained_dimensions=data["allow_untrained_dimensions"],
            created_by=request.user,
        )
    except PairScoringError as error:
        form.add_error(None, str(error))
        return False
    messages.success(request, f"Pair scoring run {run.pk} queued on the gpu queue.")
    return True
