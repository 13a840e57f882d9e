"""The User admin with the annotator deactivation action (the same service as the annotator profile admin's)."""

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
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


User = get_user_model()
# django.contrib.auth registers its UserAdmin first (it comes before annotation in INSTALLED_APPS).
if admin.site.is_registered(User):
    admin.site.unregister(User)


@admin.register(User)
class StudioUserAdmin(UserAdmin):
    actions = ("deactivate_annotators",)

    def has_deactivate_annotators_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("annotation.change_annotatorprofile")

    @admin.action(description=DEACTIVATE_DESCRIPTION, permissions=["deactivate_annotators"])
    def deactivate_annotators(self, request: HttpRequest, queryset) -> None:
        annotators_deactivate_from_admin(self, request, queryset)


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


@admin.register(Guideline)
class GuidelineAdmin(admin.ModelAdmin):
    list_display = ("dimension", "text", "updated_at")
