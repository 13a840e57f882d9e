"""The User admin with the annotator deactivation action (the same service as the annotator profile admin's)."""

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.http import HttpRequest

from annotation.services.review import annotator_deactivate

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
