"""Staff pages of evaluation results. They only read EvaluationRun rows: no torch in the web process."""

from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from annotation.dimensions import DIMENSIONS
from mhp.jobs import JobStatus
from training.baselines.tables import GENERATOR_RANKING, latest_results, ranking_chart, results_tables
from training.models import EvaluationRun


def _succeeded():
    return EvaluationRun.objects.filter(status=JobStatus.SUCCEEDED).order_by("-finished_at", "-id")


def _percent_rows(table) -> list[tuple[str, list[float | None]]]:
    return [(label, [None if cell is None else 100 * cell for cell in cells]) for label, cells in table.rows]


@staff_member_required
def results(request: HttpRequest) -> HttpResponse:
    """The latest succeeded evaluation per (method, benchmark), as the paper's two tables."""
    runs = _succeeded().exclude(benchmark=GENERATOR_RANKING).values("method", "benchmark", "config", "metrics")
    overview, mhp = results_tables(latest_results(runs.iterator()))
    labels = {dimension.key: dimension.label for dimension in DIMENSIONS}
    context = {
        "overview": {"columns": overview.columns, "rows": _percent_rows(overview)},
        "mhp": [
            {"title": table.title, "columns": [labels.get(c, c) for c in table.columns], "rows": _percent_rows(table)}
            for table in mhp
        ],
    }
    return render(request, "training/results.html", context)


@staff_member_required
def generators(request: HttpRequest) -> HttpResponse:
    """The latest generator ranking as a bar chart per dimension (plain CSS) and a table."""
    run = _succeeded().filter(benchmark=GENERATOR_RANKING).first()
    context = {"run": run, "chart": ranking_chart(run.metrics) if run else []}
    return render(request, "training/generators.html", context)
