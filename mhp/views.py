from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from annotation.roles import roles_of
from mhp import selectors


@login_required
def home(request: HttpRequest) -> HttpResponse:
    context = {
        "roles": roles_of(request.user),
        "judged_today": selectors.judgements_today(user=request.user),
        # Project-wide figures are for staff; an annotator sees only their own work.
        "counts": selectors.pipeline_counts() if request.user.is_staff else None,
    }
    return render(request, "home.html", context)


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok", "database": connection.vendor})
