"""Admin pieces shared by the apps: big-table lists, job fields, and the extra pages a model admin adds."""

from collections.abc import Callable

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path

JOB_FIELDS = ("status", "progress", "error", "task_id", "created_by", "created_at", "started_at", "finished_at")


class BigTableAdmin(admin.ModelAdmin):
    # Tables here reach millions of rows: no exact COUNT(*) on every changelist page.
    show_full_result_count = False
    list_per_page = 50


def admin_context(model_admin: admin.ModelAdmin, request: HttpRequest, **extra) -> dict:
    """What the admin's templates expect (site header, breadcrumbs of the model), plus the page's own."""
    return {**model_admin.admin_site.each_context(request), "opts": model_admin.model._meta, **extra}


AdminPage = Callable[..., HttpResponse]


def admin_page(model_admin: admin.ModelAdmin, route: str, view: AdminPage, *, name: str, permission: str) -> URLPattern:
    """An extra page of `model_admin` at `route`: the site's staff check, then `permission`, then
    `view(model_admin, request, **url_kwargs)`."""

    def page(request: HttpRequest, **kwargs) -> HttpResponse:
        if not request.user.has_perm(permission):
            raise PermissionDenied
        return view(model_admin, request, **kwargs)

    return path(route, model_admin.admin_site.admin_view(page), name=name)
