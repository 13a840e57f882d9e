"""Admin pages of the datasets app: freeze a version, export one, watch an export and download its files.

The model admins in datasets/admin.py add these URLs with `get_urls`; the admin site's `admin_view`
wrapper requires an active staff user, and `admin_page` checks each page's permission.
"""

from django import forms
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern

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
from mhp.admin_base import admin_context, admin_page
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


def freeze_view(model_admin: admin.ModelAdmin, request: HttpRequest) -> HttpResponse:
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
    context = admin_context(model_admin, request, form=form, title="Freeze a dataset version")
    # A refused submission answers 400 (it changed nothing), like the other forms a client can shape.
    return TemplateResponse(request, "datasets/admin_freeze.html", context, status=400 if form.errors else 200)


def export_view(model_admin: admin.ModelAdmin, request: HttpRequest, version_id: int) -> HttpResponse:
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
    context = admin_context(model_admin, request, form=form, version=version, title=f"Export {version.name}")
    return TemplateResponse(request, "datasets/admin_export.html", context)


def export_progress_view(model_admin: admin.ModelAdmin, request: HttpRequest, job_id: int) -> HttpResponse:
    job = get_object_or_404(ExportJob.objects.select_related("version"), pk=job_id)
    context = admin_context(
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
    return [
        admin_page(
            model_admin,
            "freeze/",
            freeze_view,
            name="datasets_datasetversion_freeze",
            permission="datasets.add_datasetversion",
        ),
        admin_page(
            model_admin,
            "<int:version_id>/export/",
            export_view,
            name="datasets_datasetversion_export",
            permission="datasets.add_exportjob",
        ),
    ]


def export_job_admin_urls(model_admin: admin.ModelAdmin) -> list[URLPattern]:
    return [
        admin_page(
            model_admin,
            "<int:job_id>/progress/",
            export_progress_view,
            name="datasets_exportjob_progress",
            permission="datasets.view_exportjob",
        )
    ]
