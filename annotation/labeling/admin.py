"""Labeling's admin: judgements, leases, adjudications, reliabilities, flags and reliability fits to look at,
annotator profiles to deactivate."""

from django.contrib import admin, messages
from django.http import HttpRequest

from annotation.labeling.services import annotator_deactivate
from annotation.models import (
    Adjudication,
    AnnotatorFlag,
    AnnotatorProfile,
    AnnotatorReliability,
    DimensionPrior,
    Guideline,
    Judgement,
    PairLease,
    PairSkip,
    ReliabilityRun,
)
from mhp.admin_base import JOB_FIELDS, BigTableAdmin

DEACTIVATE_DESCRIPTION = "Deactivate and exclude from the next dataset version"


def annotators_deactivate_from_admin(model_admin: admin.ModelAdmin, request: HttpRequest, users) -> None:
    """Run the deactivation service for each selected person and say what it did."""
    users = list(users)
    for user in users:
        annotator_deactivate(user=user, note=f"deactivated by {request.user.get_username()}")
    model_admin.message_user(
        request,
        f"{len(users)} annotator(s) deactivated: labeling stopped, judgements left out of the next dataset version.",
        messages.SUCCESS,
    )


class ViewOnlyAdmin(BigTableAdmin):
    """Rows written only by the queue and the review services (which keep counters and rules right):
    the admin shows them and changes nothing."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Judgement)
class JudgementAdmin(ViewOnlyAdmin):
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
class PairLeaseAdmin(ViewOnlyAdmin):
    list_display = ("pair", "annotator", "left_side", "expires_at")
    raw_id_fields = ("pair", "annotator")


@admin.register(PairSkip)
class PairSkipAdmin(ViewOnlyAdmin):
    list_display = ("pair", "annotator", "reason", "created_at")
    raw_id_fields = ("pair", "annotator")


@admin.register(Adjudication)
class AdjudicationAdmin(ViewOnlyAdmin):
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


@admin.register(Guideline)
class GuidelineAdmin(admin.ModelAdmin):
    list_display = ("dimension", "text", "updated_at")


@admin.register(AnnotatorReliability)
class AnnotatorReliabilityAdmin(ViewOnlyAdmin):
    """Written by the reliability fit only."""

    list_display = ("annotator", "dimension", "accuracy", "informativeness", "judgements", "updated_at")
    list_filter = ("dimension",)
    raw_id_fields = ("annotator",)


@admin.register(DimensionPrior)
class DimensionPriorAdmin(ViewOnlyAdmin):
    list_display = ("dimension", "prior", "updated_at")


@admin.register(AnnotatorFlag)
class AnnotatorFlagAdmin(ViewOnlyAdmin):
    """Reviewed on the flags page (labeling/flags/), where stopping an annotator goes through its service."""

    list_display = ("annotator", "kind", "created_at", "reviewed_by", "reviewed_at")
    list_filter = ("kind", ("reviewed_at", admin.EmptyFieldListFilter))
    raw_id_fields = ("annotator", "reviewed_by")


@admin.register(ReliabilityRun)
class ReliabilityRunAdmin(ViewOnlyAdmin):
    """Started from the quality page, the beat schedule or `manage.py fit_reliabilities`."""

    list_display = ("id", "status", "judgements_used", "annotators_flagged", "created_at", "finished_at")
    list_filter = ("status",)
    readonly_fields = (*JOB_FIELDS, "config", "metrics", "judgements_used", "annotators_flagged")
