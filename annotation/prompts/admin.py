"""Admin pages of the prompt pipeline: prompt imports, near-duplicate groups, category balance, augmentation.

The model admins in annotation/admin.py add these URLs with `get_urls`; the admin site's own
`admin_view` wrapper requires an active staff user, and `admin_page` checks each page's permission.
"""

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern

from annotation.images.services.pair_builder import pairs_build
from annotation.models import (
    AugmentationJob,
    Category,
    ImportJob,
    ImportKind,
    Prompt,
    PromptLease,
    PromptReview,
)
from annotation.prompts.llm import MISSING_KEY_MESSAGE, llm_configured
from annotation.prompts.selectors import augmentation_jobs_list, category_balance, near_duplicate_groups_list
from annotation.prompts.services.augmentation import MAX_REQUESTED_COUNT, augmentation_jobs_create
from annotation.prompts.services.import_jobs import prompt_import_job_create
from annotation.prompts.services.imports import ImportFileError
from mhp.admin_base import JOB_FIELDS, BigTableAdmin, admin_context, admin_page
from mhp.jobs import FINISHED_STATUSES, JobStatus

GROUPS_PER_PAGE = 25


class PromptImportForm(forms.Form):
    file = forms.FileField(help_text="JSONL, CSV, Parquet (.jsonl, .csv, .parquet) or plain text, one prompt a line")
    source = forms.CharField(max_length=64, required=False, help_text="for rows that name no source")
    category = forms.ModelChoiceField(
        Category.objects.all(), required=False, to_field_name="slug", help_text="for rows that name no category"
    )


def prompt_import_upload_view(model_admin: admin.ModelAdmin, request: HttpRequest) -> HttpResponse:
    form = PromptImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        category = form.cleaned_data["category"]
        try:
            job = prompt_import_job_create(
                upload=form.cleaned_data["file"],
                created_by=request.user,
                source=form.cleaned_data["source"],
                category_slug=category.slug if category else "",
            )
        except ImportFileError as error:
            form.add_error("file", str(error))
        else:
            return redirect("admin:annotation_importjob_prompt_progress", job.pk)
    context = admin_context(model_admin, request, form=form, title="Import prompts")
    return TemplateResponse(request, "prompts/admin_import_upload.html", context)


def prompt_import_progress_view(model_admin: admin.ModelAdmin, request: HttpRequest, job_id: int) -> HttpResponse:
    job = get_object_or_404(ImportJob, pk=job_id, kind=ImportKind.PROMPTS)
    context = admin_context(
        model_admin,
        request,
        job=job,
        finished=job.status in FINISHED_STATUSES,
        percent=round(job.progress * 100),
        title=f"Prompt import {job.pk}: {job.original_name}",
    )
    return TemplateResponse(request, "prompts/admin_import_progress.html", context)


def near_duplicate_groups_view(model_admin: admin.ModelAdmin, request: HttpRequest) -> HttpResponse:
    page = Paginator(near_duplicate_groups_list(), GROUPS_PER_PAGE).get_page(request.GET.get("page"))
    context = admin_context(model_admin, request, page=page, title="Near-duplicate prompt groups")
    return TemplateResponse(request, "prompts/admin_near_duplicate_groups.html", context)


def import_job_admin_urls(model_admin: admin.ModelAdmin) -> list[URLPattern]:
    return [
        admin_page(
            model_admin,
            "upload-prompts/",
            prompt_import_upload_view,
            name="annotation_importjob_prompt_upload",
            permission="annotation.add_importjob",
        ),
        admin_page(
            model_admin,
            "<int:job_id>/prompt-progress/",
            prompt_import_progress_view,
            name="annotation_importjob_prompt_progress",
            permission="annotation.view_importjob",
        ),
    ]


def prompt_admin_urls(model_admin: admin.ModelAdmin) -> list[URLPattern]:
    return [
        admin_page(
            model_admin,
            "near-duplicates/",
            near_duplicate_groups_view,
            name="annotation_prompt_near_duplicates",
            permission="annotation.view_prompt",
        )
    ]


class AugmentationStartForm(forms.Form):
    category = forms.ModelChoiceField(
        Category.objects.filter(parent__isnull=True),
        required=False,
        empty_label="All categories with a deficit",
        help_text="With all deficits, one job per category, each asking for its deficit up to the count.",
    )
    requested_count = forms.IntegerField(min_value=1, max_value=MAX_REQUESTED_COUNT, initial=20, label="Count")
    llm_model = forms.CharField(max_length=100, label="Model")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["llm_model"].initial = settings.OPENAI_MODEL


def augmentation_start_view(model_admin: admin.ModelAdmin, request: HttpRequest) -> HttpResponse:
    form = AugmentationStartForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            jobs = augmentation_jobs_create(
                category=data["category"],
                requested_count=data["requested_count"],
                llm_model=data["llm_model"],
                created_by=request.user,
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            _report_started(request, jobs)
            return redirect("admin:annotation_augmentationjob_changelist")
    context = admin_context(
        model_admin,
        request,
        form=form,
        configured=llm_configured(),
        missing_key=MISSING_KEY_MESSAGE,
        recent=augmentation_jobs_list()[:10],
        title="Start augmentation",
    )
    return TemplateResponse(request, "prompts/admin_augmentation_start.html", context)


def _report_started(request: HttpRequest, jobs: list[AugmentationJob]) -> None:
    """Say what really happened: without a broker the jobs ran already, and some may have failed at once."""
    for job in jobs:
        job.refresh_from_db()
    failed = [job for job in jobs if job.status == JobStatus.FAILED]
    if failed:
        messages.error(request, f"{len(failed)} of {len(jobs)} augmentation job(s) failed: {failed[0].error}")
    else:
        messages.success(request, f"{len(jobs)} augmentation job(s) started.")


def balance_view(model_admin: admin.ModelAdmin, request: HttpRequest) -> HttpResponse:
    balance = category_balance()
    scale = max([1, *(max(row.accepted, row.target_count) for row in balance.rows)])
    context = admin_context(
        model_admin,
        request,
        balance=balance,
        bars=[
            (row, round(100 * row.accepted / scale, 1), round(100 * row.target_count / scale, 1))
            for row in balance.rows
        ],
        fill_count=min(max([1, *(row.deficit for row in balance.rows)]), MAX_REQUESTED_COUNT),
        can_augment=request.user.has_perm("annotation.add_augmentationjob"),
        configured=llm_configured(),
        settings_model=settings.OPENAI_MODEL,
        title="Category balance",
    )
    return TemplateResponse(request, "prompts/admin_balance.html", context)


def augmentation_job_admin_urls(model_admin: admin.ModelAdmin) -> list[URLPattern]:
    return [
        admin_page(
            model_admin,
            "start/",
            augmentation_start_view,
            name="annotation_augmentationjob_start",
            permission="annotation.add_augmentationjob",
        )
    ]


def category_admin_urls(model_admin: admin.ModelAdmin) -> list[URLPattern]:
    return [
        admin_page(
            model_admin,
            "balance/",
            balance_view,
            name="annotation_category_balance",
            permission="annotation.view_prompt",
        )
    ]


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ("name", "parent", "slug", "target_share", "position")
    list_filter = (("parent", admin.RelatedOnlyFieldListFilter),)
    list_editable = ("target_share", "position")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    change_list_template = "prompts/admin_category_change_list.html"

    def get_urls(self):
        return category_admin_urls(self) + super().get_urls()


class PromptReviewInline(admin.TabularInline):
    model = PromptReview
    extra = 0
    fields = ("reviewer", "decision", "reasons", "comment", "category", "subcategory", "is_final", "created_at")
    readonly_fields = ("created_at",)
    raw_id_fields = ("reviewer",)


@admin.register(Prompt)
class PromptAdmin(BigTableAdmin):
    list_display = ("id", "short_text", "category", "subcategory", "status", "origin", "source", "reviews_done")
    list_filter = ("status", "origin", "source", "needs_reviewer", ("category", admin.RelatedOnlyFieldListFilter))
    search_fields = ("text", "source_id")
    raw_id_fields = ("near_duplicate_of", "augmentation_job")
    readonly_fields = ("normalized_text", "normalized_hash", "created_at", "updated_at")
    list_select_related = ("category", "subcategory")
    inlines = (PromptReviewInline,)
    change_list_template = "prompts/admin_prompt_change_list.html"

    actions = ("build_pairs",)

    def get_urls(self):
        return prompt_admin_urls(self) + super().get_urls()

    def has_build_pairs_permission(self, request) -> bool:
        return request.user.has_perm("annotation.add_pair")

    @admin.action(description="Build pairs for selected prompts", permissions=["build_pairs"])
    def build_pairs(self, request, queryset) -> None:
        summary = pairs_build(prompt_ids=list(queryset.values_list("pk", flat=True)))
        skipped = ", ".join(f"{count} {reason}" for reason, count in sorted(summary.skipped.items()))
        self.message_user(
            request,
            f"{summary.total_created} pairs created ({summary.created['cross']} cross-generator, "
            f"{summary.created['same']} same-generator)" + (f"; prompts skipped: {skipped}" if skipped else ""),
        )

    @admin.display(description="text")
    def short_text(self, prompt: Prompt) -> str:
        return prompt.text if len(prompt.text) <= 100 else prompt.text[:97] + "..."


@admin.register(PromptReview)
class PromptReviewAdmin(BigTableAdmin):
    list_display = ("prompt", "reviewer", "decision", "reasons", "is_final", "created_at")
    list_filter = ("decision", "is_final")
    raw_id_fields = ("prompt", "reviewer")


@admin.register(PromptLease)
class PromptLeaseAdmin(admin.ModelAdmin):
    list_display = ("prompt", "user", "expires_at")
    raw_id_fields = ("prompt", "user")


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = ("id", "kind", "original_name", "status", "progress", "created_at")
    list_filter = ("kind", "status")
    readonly_fields = (*JOB_FIELDS, "summary")
    change_list_template = "prompts/admin_importjob_change_list.html"

    def get_urls(self):
        return import_job_admin_urls(self) + super().get_urls()


@admin.register(AugmentationJob)
class AugmentationJobAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "category",
        "requested_count",
        "kept_count",
        "duplicate_count",
        "malformed_count",
        "tokens_used",
        "llm_model",
        "status",
        "progress",
        "short_error",
        "created_at",
    )
    list_filter = ("status",)
    readonly_fields = (*JOB_FIELDS, *AugmentationJob.TALLY_FIELDS)
    change_list_template = "prompts/admin_augmentationjob_change_list.html"

    def get_urls(self):
        return augmentation_job_admin_urls(self) + super().get_urls()

    def add_view(self, request, form_url="", extra_context=None):
        # A job made by the plain add form would never be queued: the start page creates and queues it.
        return redirect("admin:annotation_augmentationjob_start")

    @admin.display(description="tokens")
    def tokens_used(self, job: AugmentationJob) -> int:
        return job.tokens_used

    @admin.display(description="error")
    def short_error(self, job: AugmentationJob) -> str:
        return job.error if len(job.error) <= 80 else job.error[:77] + "..."
