from django.contrib import admin

from training.models import EvaluationRun, PairScore, PairScoringRun, TrainingRun


class RunAdmin(admin.ModelAdmin):
    """Runs are made by the results page, the commands and their tasks. Their status, progress, paths and
    worker fields belong to the lifecycle (mhp.jobs, the reaper, resume), so none is typed in here; only
    the fields in `editable` (a cancel request) are."""

    editable: tuple[str, ...] = ()

    def has_add_permission(self, request) -> bool:
        return False

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields if field.name not in self.editable]


@admin.register(TrainingRun)
class TrainingRunAdmin(RunAdmin):
    list_display = ("name", "dataset_version", "preset", "status", "step", "total_steps", "progress", "created_at")
    list_filter = ("status", "preset")
    search_fields = ("name",)
    editable = ("cancel_requested",)


@admin.register(EvaluationRun)
class EvaluationRunAdmin(RunAdmin):
    list_display = ("id", "method", "benchmark", "training_run", "status", "progress", "created_at")
    list_filter = ("status", "method", "benchmark")


@admin.register(PairScoringRun)
class PairScoringRunAdmin(RunAdmin):
    list_display = ("id", "checkpoint_path", "training_run", "status", "progress", "pairs_scored", "created_at")
    list_filter = ("status",)
    editable = ("cancel_requested",)


@admin.register(PairScore)
class PairScoreAdmin(RunAdmin):
    """Written by the scoring job only."""

    list_display = ("run", "pair", "aesthetics", "detail", "alignment", "overall")
    list_filter = ("run",)
    list_select_related = ("run",)
    raw_id_fields = ("pair",)
