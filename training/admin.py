from django.contrib import admin

from mhp.admin_base import JOB_FIELDS
from training.models import EvaluationRun, TrainingRun


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = ("name", "dataset_version", "preset", "status", "step", "total_steps", "progress", "created_at")
    list_filter = ("status", "preset")
    search_fields = ("name",)
    readonly_fields = (*JOB_FIELDS, "step", "metrics", "best_checkpoint", "last_checkpoint")


@admin.register(EvaluationRun)
class EvaluationRunAdmin(admin.ModelAdmin):
    list_display = ("id", "method", "benchmark", "training_run", "status", "progress", "created_at")
    list_filter = ("status", "method", "benchmark")
    readonly_fields = (*JOB_FIELDS, "metrics", "output_path")
