from django.contrib import admin

from datasets.models import DatasetItem, DatasetVersion, EvaluationItem, EvaluationSet, ExportJob
from mhp.admin_base import JOB_FIELDS, BigTableAdmin


@admin.register(DatasetVersion)
class DatasetVersionAdmin(admin.ModelAdmin):
    list_display = ("name", "status", "seed", "created_at", "frozen_at")
    list_filter = ("status",)
    search_fields = ("name",)
    readonly_fields = ("stats", "progress", "error", "created_at", "frozen_at")


@admin.register(DatasetItem)
class DatasetItemAdmin(BigTableAdmin):
    list_display = ("version", "pair", "split", "annotator_count", "agreement")
    list_filter = ("split", "version")
    raw_id_fields = ("pair",)

    def has_change_permission(self, request, obj=None) -> bool:
        # Items belong to frozen versions, which never change.
        return False


@admin.register(ExportJob)
class ExportJobAdmin(admin.ModelAdmin):
    list_display = ("id", "version", "formats", "status", "progress", "created_at")
    list_filter = ("status",)
    readonly_fields = (*JOB_FIELDS, "manifest", "output_dir")


@admin.register(EvaluationSet)
class EvaluationSetAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "item_count", "image_root", "created_at")
    list_filter = ("kind",)


@admin.register(EvaluationItem)
class EvaluationItemAdmin(BigTableAdmin):
    list_display = ("evaluation_set", "external_id", "prompt")
    list_filter = ("evaluation_set",)
    search_fields = ("external_id", "prompt")
