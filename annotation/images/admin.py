"""Admin pages for images: upload a zip holding `manifest.jsonl` and its images, then read the import report.

ImageAdmin adds these URLs with `get_urls`; the admin site's `admin_view` wrapper requires an active
staff user, and `admin_page` checks each page's permission.
"""

from django import forms
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern
from django.utils.html import format_html

from annotation.images.services.zip_import import (
    MANIFEST_NAME,
    ZipImportError,
    image_zip_import_job_create,
    zip_open_checked,
)
from annotation.models import (
    Generator,
    Image,
    ImportJob,
    ImportKind,
    Pair,
)
from mhp.admin_base import BigTableAdmin, admin_context, admin_page
from mhp.jobs import FINISHED_STATUSES
from mhp.media import media_url


class ImageZipForm(forms.Form):
    file = forms.FileField(
        label="Zip file",
        widget=forms.ClearableFileInput(attrs={"accept": ".zip,application/zip"}),
        help_text=f"{MANIFEST_NAME} at the root of the zip, the images at the paths it names",
    )
    create_generators = forms.BooleanField(
        required=False,
        label="Create new generators",
        help_text="Add the generators the manifest names that do not exist yet; otherwise their lines are refused "
        "(a typo would make pairs count it as another model).",
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        # The zip's directory only (fast for 20,000 members): a refused archive is said at once.
        try:
            bundle, _ = zip_open_checked(upload)
        except ZipImportError as error:
            raise forms.ValidationError(str(error)) from None
        bundle.close()
        upload.seek(0)
        return upload


def image_zip_upload_view(model_admin: admin.ModelAdmin, request: HttpRequest) -> HttpResponse:
    form = ImageZipForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        job = image_zip_import_job_create(
            upload=form.cleaned_data["file"],
            created_by=request.user,
            create_generators=form.cleaned_data["create_generators"],
        )
        # Redirect so that reloading the progress page does not upload the zip again.
        return redirect("admin:annotation_image_zip_progress", job.pk)
    context = admin_context(
        model_admin, request, form=form, manifest_name=MANIFEST_NAME, title="Import images from a zip"
    )
    return TemplateResponse(request, "labeling/admin_image_zip_upload.html", context)


def image_zip_progress_view(model_admin: admin.ModelAdmin, request: HttpRequest, job_id: int) -> HttpResponse:
    job = get_object_or_404(ImportJob, pk=job_id, kind=ImportKind.IMAGES)
    summary = job.summary or {}
    context = admin_context(
        model_admin,
        request,
        job=job,
        finished=job.status in FINISHED_STATUSES,
        percent=round(job.progress * 100),
        summary=summary,
        refused_otherwise=summary.get("refused", 0) - summary.get("duplicates", 0),
        refused_unlisted=summary.get("refused", 0) - len(summary.get("refused_lines", [])),
        title=f"Image import {job.pk}: {job.original_name}",
    )
    return TemplateResponse(request, "labeling/admin_image_zip_progress.html", context)


def image_admin_urls(model_admin: admin.ModelAdmin) -> list[URLPattern]:
    return [
        admin_page(
            model_admin,
            "import-zip/",
            image_zip_upload_view,
            name="annotation_image_zip_upload",
            permission="annotation.add_image",
        ),
        admin_page(
            model_admin,
            "import-zip/<int:job_id>/",
            image_zip_progress_view,
            name="annotation_image_zip_progress",
            permission="annotation.view_importjob",
        ),
    ]


@admin.register(Generator)
class GeneratorAdmin(admin.ModelAdmin):
    list_display = ("name", "family", "version", "created_at")
    list_filter = ("family",)
    search_fields = ("name",)


def _thumbnail(image: Image, size: int = 96) -> str:
    source = image.thumbnail or image.file
    if not source:
        return "-"
    return format_html('<img src="{}" style="max-width:{}px;max-height:{}px" alt="">', media_url(source), size, size)


@admin.register(Image)
class ImageAdmin(BigTableAdmin):
    list_display = ("id", "preview", "prompt", "generator", "width", "height", "seed")
    list_filter = (("generator", admin.RelatedOnlyFieldListFilter),)
    search_fields = ("sha256", "prompt__text")
    raw_id_fields = ("prompt",)
    readonly_fields = ("preview", "sha256", "width", "height", "created_at")
    list_select_related = ("prompt", "generator")
    change_list_template = "labeling/admin_image_change_list.html"

    def get_urls(self):
        return image_admin_urls(self) + super().get_urls()

    @admin.display(description="preview")
    def preview(self, image: Image) -> str:
        return _thumbnail(image)


@admin.register(Pair)
class PairAdmin(BigTableAdmin):
    list_display = ("id", "first_preview", "second_preview", "prompt", "kind", "judgements_done", "is_gold")
    list_filter = ("kind", "is_gold")
    search_fields = ("prompt__text",)
    list_select_related = ("prompt", "image_first", "image_second")

    # Pairs come from build_pairs (canonical order, kind); gold answers from the disputes page, which
    # refuses a reviewer who judged the pair. Only how many judgements a pair needs is set here.
    def has_add_permission(self, request) -> bool:
        return False

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in Pair._meta.fields if field.name != "judgements_required"]

    @admin.display(description="first")
    def first_preview(self, pair: Pair) -> str:
        return _thumbnail(pair.image_first, 64)

    @admin.display(description="second")
    def second_preview(self, pair: Pair) -> str:
        return _thumbnail(pair.image_second, 64)
