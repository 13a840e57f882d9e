"""Labeling's admin: judgements, leases and adjudications to look at, annotator profiles to deactivate."""

from django.contrib import admin, messages
from django.http import HttpRequest

from annotation.labeling.services import annotator_deactivate
from annotation.models import (
    Adjudication,
    AnnotatorProfile,
    Guideline,
    Judgement,
    PairLease,
    PairSkip,
)
from mhp.admin_base import BigTableAdmin

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
