from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from annotation.roles import roles_of
from mhp import navigation, selectors, services

CHART_WIDTH, CHART_HEIGHT, CHART_LABELS = 560, 160, 20


def _day_bars(per_day: list) -> dict:
    """Geometry of the judgements-per-day bar chart (an inline SVG; no script, no chart library)."""
    top = max((n for _, n in per_day), default=0) or 1
    step = CHART_WIDTH / max(len(per_day), 1)
    bars = []
    for index, (day, n) in enumerate(per_day):
        height = round(n / top * (CHART_HEIGHT - CHART_LABELS - 12), 1)
        bars.append(
            {
                "day": day,
                "n": n,
                "x": round(index * step + 2, 1),
                "width": round(step - 4, 1),
                "y": round(CHART_HEIGHT - CHART_LABELS - height, 1),
                "height": height,
                "label_x": round(index * step + step / 2, 1),
                "label_y": round(CHART_HEIGHT - CHART_LABELS - height - 2, 1),
            }
        )
    return {
        "bars": bars,
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "base": CHART_HEIGHT - CHART_LABELS,
        "top": top,
        "label_y": CHART_HEIGHT - 5,
    }


@login_required
def home(request: HttpRequest) -> HttpResponse:
    user = request.user
    context = {"roles": roles_of(user), "sections": navigation.sections_for(user)}
    if user.has_perm("annotation.label_pairs") or user.has_perm("annotation.filter_prompts"):
        context["work"] = selectors.annotator_home(user=user)
    if user.has_perm("annotation.view_quality") or user.has_perm("annotation.adjudicate_pairs"):
        context["review"] = selectors.reviewer_home(user=user)
    # Project-wide figures are for staff; an annotator sees only their own work.
    if user.is_staff:
        overview = selectors.pipeline_overview()
        context["pipeline"] = {**overview, "chart": _day_bars(overview["per_day"])}
    return render(request, "home.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def api_tokens(request: HttpRequest) -> HttpResponse:
    """The user's key for scripts (`Authorization: Token <key>`): create (or replace) and revoke."""
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "create":
            services.api_token_create(user=request.user)
            messages.success(request, "New API token created; the previous one, if any, no longer works.")
        elif action == "revoke":
            revoked = services.api_token_revoke(user=request.user)
            messages.success(request, "API token revoked." if revoked else "You had no API token.")
        else:
            return HttpResponseBadRequest("action must be create or revoke")
        return redirect("api-tokens")
    return render(request, "tokens.html", {"tokens": selectors.api_tokens_of(user=request.user)})


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok", "database": connection.vendor})
