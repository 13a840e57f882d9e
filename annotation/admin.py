from django.contrib import admin
from django.shortcuts import redirect
from django.utils.html import format_html

from annotation.admin_images import image_admin_urls
from annotation.admin_prompts import (
    augmentation_job_admin_urls,
    category_admin_urls,
    import_job_admin_urls,
    prompt_admin_urls,
)
from annotation.admin_users import DEACTIVATE_DESCRIPTION, annotators_deactivate_from_admin
from annotation.models import (
    Adjudication,
    AnnotatorProfile,
    AugmentationJob,
    Category,
    Generator,
    Image,
    ImportJob,
    Judgement,
    Pair,
    PairLease,
    PairSkip,
    Prompt,
    PromptLease,
    PromptReview,
)
from annotation.services.pair_builder import pairs_build
from mhp.admin_base import JOB_FIELDS, BigTableAdmin


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


@admin.register(Generator)
class GeneratorAdmin(admin.ModelAdmin):
    list_display = ("name", "family", "version", "created_at")
    list_filter = ("family",)
    search_fields = ("name",)


def _thumbnail(image: Image, size: int = 96) -> str:
    source = image.thumbnail or image.file
    if not source:
        return "-"
    return format_html('<img src="{}" style="max-width:{}px;max-height:{}px" alt="">', source.url, size, size)


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
    raw_id_fields = ("prompt", "image_first", "image_second")
    readonly_fields = ("judgements_done", "created_at")
    list_select_related = ("prompt", "image_first", "image_second")

    @admin.display(description="first")
    def first_preview(self, pair: Pair) -> str:
        return _thumbnail(pair.image_first, 64)

    @admin.display(description="second")
    def second_preview(self, pair: Pair) -> str:
        return _thumbnail(pair.image_second, 64)


@admin.register(Judgement)
class JudgementAdmin(BigTableAdmin):
    list_display = (
        "id",
        "pair",
        "annotator",
        "aesthetics",
        "detail",
        "alignment",
        "overall",
        "left_side",
        "created_at",
    )
    list_filter = ("overall", "left_side")
    raw_id_fields = ("pair", "annotator")
    readonly_fields = ("client_token", "created_at")
    date_hierarchy = "created_at"


@admin.register(PairLease)
class PairLeaseAdmin(BigTableAdmin):
    list_display = ("pair", "annotator", "left_side", "expires_at")
    raw_id_fields = ("pair", "annotator")


@admin.register(PairSkip)
class PairSkipAdmin(BigTableAdmin):
    list_display = ("pair", "annotator", "reason", "created_at")
    raw_id_fields = ("pair", "annotator")


@admin.register(Adjudication)
class AdjudicationAdmin(admin.ModelAdmin):
    list_display = ("pair", "reviewer", "aesthetics", "detail", "alignment", "overall", "created_at")
    raw_id_fields = ("pair", "reviewer")


@admin.register(AnnotatorProfile)
class AnnotatorProfileAdmin(admin.ModelAdmin):
    list_display = ("user", "labeling_enabled", "judgements_excluded", "deactivated_at")
    list_filter = ("labeling_enabled", "judgements_excluded")
    raw_id_fields = ("user",)
    actions = ("deactivate",)

    @admin.action(description=DEACTIVATE_DESCRIPTION, permissions=["change"])
    def deactivate(self, request, queryset) -> None:
        annotators_deactivate_from_admin(self, request, (profile.user for profile in queryset.select_related("user")))


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
    readonly_fields = (
        *JOB_FIELDS,
        "generated_count",
        "kept_count",
        "duplicate_count",
        "malformed_count",
        "prompt_tokens",
        "completion_tokens",
    )
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
