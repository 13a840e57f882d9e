"""Admin pages of the datasets app: freeze a version, export one, watch an export and download its files.

The model admins in datasets/admin.py add these URLs with `get_urls`; the admin site's `admin_view`
wrapper requires an active staff user, and each view checks its permission.
"""

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path

from datasets.aggregation import LabelMode
from datasets.exporters import FORMATS
from datasets.exporters.webdataset import DEFAULT_SHARD_SIZE
from datasets.models import DatasetStatus, DatasetVersion, ExportJob
from datasets.services.export import ExportError
from datasets.services.export_jobs import export_job_create
from datasets.services.freeze import (
    FreezeError,
    FreezeOptions,
    dataset_version_create,
    dataset_version_freeze_later,
)
from mhp.jobs import FINISHED_STATUSES


class FreezeForm(forms.Form):
    """Typed values only: FreezeOptions.from_input checks them, with the messages `freeze_dataset` gives."""

    name = forms.SlugField(max_length=100)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    labels = forms.ChoiceField(choices=[(m.value, m.value) for m in LabelMode], initial=LabelMode.MAJORITY.value)
    min_agreement = forms.FloatField(required=False, help_text="0 to 1")
    val = forms.CharField(required=False, help_text="pairs (10000) or share (0.05); empty: the default")
    test = forms.CharField(required=False, help_text="pairs (10000) or share (0.05); empty: the default")
    seed = forms.IntegerField(initial=0)


class ExportForm(forms.Form):
    formats = forms.MultipleChoiceField(
        choices=[(name, name) for name in FORMATS], initial=["jsonl", "parquet"], widget=forms.CheckboxSelectMultiple
    )
    shard_size = forms.IntegerField(min_value=1, initial=DEFAULT_SHARD_SIZE, help_text="pairs per WebDataset shard")


def _context(model_admin: admin.ModelAdmin, request: HttpRequest, **extra) -> dict:
    return {**model_admin.admin_site.each_context(request), "opts": model_admin.model._meta, **extra}


def freeze_view(model_admin: admin.ModelAdmin, request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm("datasets.add_datasetversion"):
        raise PermissionDenied
    form = FreezeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            given = {key: data[key] for key in ("labels", "min_agreement", "val", "test", "seed")}
            options = FreezeOptions.from_input(**given)
            version = dataset_version_create(
                name=data["name"], options=options, description=data["description"], created_by=request.user
            )
        except FreezeError as error:
            form.add_error(None, str(error))
        else:
            dataset_version_freeze_later(version_id=version.pk)
            return redirect("admin:datasets_datasetversion_change", version.pk)
    context = _context(model_admin, request, form=form, title="Freeze a dataset version")
    return TemplateResponse(request, "datasets/admin_freeze.html", context)


def export_view(model_admin: admin.ModelAdmin, request: HttpRequest, version_id: int) -> HttpResponse:
    if not request.user.has_perm("datasets.add_exportjob"):
        raise PermissionDenied
    version = get_object_or_404(DatasetVersion, pk=version_id, status=DatasetStatus.FROZEN)
    form = ExportForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            job = export_job_create(
                version=version,
                formats=form.cleaned_data["formats"],
                shard_size=form.cleaned_data["shard_size"],
                created_by=request.user,
            )
        except ExportError as error:
            form.add_error(None, str(error))
        else:
            return redirect("admin:datasets_exportjob_progress", job.pk)
    context = _context(model_admin, request, form=form, version=version, title=f"Export {version.name}")
    return TemplateResponse(request, "datasets/admin_export.html", context)


def export_progress_view(model_admin: admin.ModelAdmin, request: HttpRequest, job_id: int) -> HttpResponse:
    if not request.user.has_perm("datasets.view_exportjob"):
        raise PermissionDenied
    job = get_object_or_404(ExportJob.objects.select_related("version"), pk=job_id)
    context = _context(
        model_admin,
        request,
        job=job,
        finished=job.status in FINISHED_STATUSES,
        percent=round(job.progress * 100),
        files=job.manifest.get("files", []),
        title=f"Export {job.pk} of {job.version.name}",
    )
    return TemplateResponse(request, "datasets/admin_export_progress.html", context)


def version_admin_urls(model_admin: admin.ModelAdmin) -> list[URLPattern]:
    wrap = model_admin.admin_site.admin_view
    return [
        path("freeze/", wrap(lambda request: freeze_view(model_admin, request)), name="datasets_datasetversion_freeze"),
        path(
            "<int:version_id>/export/",
            wrap(lambda request, version_id: export_view(model_admin, request, version_id)),
            name="datasets_datasetversion_export",
        ),
    ]


def export_job_admin_urls(model_admin: admin.ModelAdmin) -> list[URLPattern]:
    wrap = model_admin.admin_site.admin_view
    return [
        path(
            "<int:job_id>/progress/",
            wrap(lambda request, job_id: export_progress_view(model_admin, request, job_id)),
            name="datasets_exportjob_progress",
        )
    ]
