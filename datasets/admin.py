from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from annotation.dimensions import DIMENSION_KEYS
from datasets.admin_views import export_job_admin_urls, version_admin_urls
from datasets.models import (
    DatasetItem,
    DatasetJudgement,
    DatasetStatus,
    DatasetVersion,
    EvaluationItem,
    EvaluationSet,
    ExportJob,
)
from datasets.stats_display import version_stats_html
from mhp.admin_base import JOB_FIELDS, BigTableAdmin


def _table(rows: dict[str, dict[str, int]], element_id: str) -> str:
    """A split x key table of counts (rows: split -> key -> count)."""
    keys = sorted({key for per_split in rows.values() for key in per_split})
    splits = sorted(rows)
    head = format_html_join("", "<th>{}</th>", ((split,) for split in splits))
    body = format_html_join(
        "",
        "<tr><th>{}</th>{}</tr>",
        ((key, format_html_join("", "<td>{}</td>", ((rows[s].get(key, 0),) for s in splits))) for key in keys),
    )
    return format_html('<table id="{}"><tr><th></th>{}</tr>{}</table>', element_id, head, body)


def _changeable(version: DatasetVersion | None) -> bool:
    return version is None or version.status not in (DatasetStatus.FREEZING, DatasetStatus.FROZEN)


@admin.register(DatasetVersion)
class DatasetVersionAdmin(admin.ModelAdmin):
    list_display = ("name", "status", "seed", "pairs", "created_at", "frozen_at")
    list_filter = ("status",)
    search_fields = ("name",)
    readonly_fields = (
        "counts",
        "stats_charts",
        "export_link",
        "config",
        "stats",
        "progress",
        "error",
        "created_at",
        "frozen_at",
    )
    change_list_template = "datasets/admin_datasetversion_change_list.html"

    def get_urls(self):
        return version_admin_urls(self) + super().get_urls()

    def has_add_permission(self, request) -> bool:
        # Versions are made by the freeze page (or `freeze_dataset`), never typed in.
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        # A version being frozen or frozen is read-only (the page still shows it); the database refuses too.
        return _changeable(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return _changeable(obj) and super().has_delete_permission(request, obj)

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.status != DatasetStatus.DRAFT:
            # A frozen version never changes.
            return [f.name for f in self.model._meta.fields] + list(self.readonly_fields)
        return self.readonly_fields

    def get_fields(self, request, obj=None):
        # The statistics show as tables ("counts") and charts; their raw JSON would only repeat them.
        return [name for name in super().get_fields(request, obj) if name != "stats"]

    @admin.display(description="charts")
    def stats_charts(self, version: DatasetVersion) -> str:
        return version_stats_html(version.stats)

    @admin.display(description="pairs")
    def pairs(self, version: DatasetVersion) -> int | None:
        return version.stats.get("pairs")

    @admin.display(description="counts")
    def counts(self, version: DatasetVersion) -> str:
        stats = version.stats
        if not stats:
            return "-"
        splits = {
            split: {"pairs": n, "prompts": stats["prompts"].get(split, 0)} for split, n in stats["splits"].items()
        }
        labels = {
            split: {f"{key}: {cls}": n for key, per_class in per_key.items() for cls, n in per_class.items()}
            for split, per_key in stats["labels"].items()
        }
        return format_html(
            "{}<h4>categories</h4>{}<h4>generators (images)</h4>{}<h4>labels</h4>{}",
            _table(splits, "counts-splits"),
            _table(stats["categories"], "counts-categories"),
            _table(stats["generators"], "counts-generators"),
            _table(labels, "counts-labels"),
        )

    @admin.display(description="export")
    def export_link(self, version: DatasetVersion) -> str:
        if version.status != DatasetStatus.FROZEN:
            return "only a frozen version can be exported"
        url = reverse("admin:datasets_datasetversion_export", args=[version.pk])
        return format_html('<a class="button" id="export-button" href="{}">Export…</a>', url)


@admin.register(DatasetItem)
class DatasetItemAdmin(BigTableAdmin):
    list_display = ("version", "pair", "split", "annotator_count", "agreement")
    list_filter = ("split", "version")
    raw_id_fields = ("pair",)

    # Items (and raw judgements, whose admin inherits this one) are written by the freeze alone and belong
    # to versions that never change: view only.
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(DatasetJudgement)
class DatasetJudgementAdmin(DatasetItemAdmin):
    list_display = ("version", "pair", "annotator", *DIMENSION_KEYS, "left_side", "duration_ms", "split")
    list_filter = ("split", "version")
    search_fields = ("=annotator",)
    list_select_related = ("version", "pair")


@admin.register(ExportJob)
class ExportJobAdmin(admin.ModelAdmin):
    list_display = ("id", "version", "formats", "status", "progress", "progress_link", "created_at")
    list_filter = ("status",)
    readonly_fields = (*JOB_FIELDS, "manifest", "output_dir")

    def get_urls(self):
        return export_job_admin_urls(self) + super().get_urls()

    @admin.display(description="progress and files")
    def progress_link(self, job: ExportJob) -> str:
        return format_html('<a href="{}">open</a>', reverse("admin:datasets_exportjob_progress", args=[job.pk]))


@admin.register(EvaluationSet)
class EvaluationSetAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "item_count", "image_root", "created_at")
    list_filter = ("kind",)


@admin.register(EvaluationItem)
class EvaluationItemAdmin(BigTableAdmin):
    list_display = ("evaluation_set", "external_id", "prompt")
    list_filter = ("evaluation_set",)
    search_fields = ("external_id", "prompt")
