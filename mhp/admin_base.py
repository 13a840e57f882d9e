"""Admin pieces shared by the apps."""

from django.contrib import admin

JOB_FIELDS = ("status", "progress", "error", "task_id", "created_by", "created_at", "started_at", "finished_at")


class BigTableAdmin(admin.ModelAdmin):
    # Tables here reach millions of rows: no exact COUNT(*) on every changelist page.
    show_full_result_count = False
    list_per_page = 50
