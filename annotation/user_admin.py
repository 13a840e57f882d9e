"""The User admin: who may change whom, and the annotator deactivation action.

A user of the admin role manages annotators and reviewers, but never edits, resets or deletes a
superuser, never makes a superuser, and grants only permissions (and groups) they hold themselves
(the rule is annotation.roles.grant_problem). A refused change is a form error or a 403; nothing is
saved.
"""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from annotation.labeling.admin import DEACTIVATE_DESCRIPTION, annotators_deactivate_from_admin
from annotation.roles import grant_problem, staff_follows_role

User = get_user_model()
# django.contrib.auth registers its UserAdmin first (it comes before annotation in INSTALLED_APPS).
if admin.site.is_registered(User):
    admin.site.unregister(User)


def _guarded(form_class: type, editor) -> type:
    """`form_class` with the grant rule checked against `editor` in its clean()."""

    class GuardedUserForm(form_class):
        def clean(self):
            cleaned = super().clean()
            if "groups" in self.fields:  # the change form; the add form sets a name and a password only
                problem = grant_problem(
                    editor=editor,
                    user=self.instance,
                    is_superuser=bool(cleaned.get("is_superuser")),
                    is_staff=bool(cleaned.get("is_staff")),
                    groups=cleaned.get("groups") or [],
                    permissions=cleaned.get("user_permissions") or [],
                )
                if problem:
                    raise ValidationError(problem)
            return cleaned

    return GuardedUserForm


@admin.register(User)
class StudioUserAdmin(UserAdmin):
    actions = ("deactivate_annotators",)

    def get_form(self, request, obj=None, **kwargs):
        return _guarded(super().get_form(request, obj, **kwargs), request.user)

    def _touches_a_superuser(self, request: HttpRequest, obj) -> bool:
        return obj is not None and obj.is_superuser and not request.user.is_superuser

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        # Also guards the password reset page, which asks this of the user it resets.
        return not self._touches_a_superuser(request, obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return not self._touches_a_superuser(request, obj) and super().has_delete_permission(request, obj)

    def save_related(self, request, form, formsets, change) -> None:
        super().save_related(request, form, formsets, change)
        staff_follows_role(form.instance)

    def has_deactivate_annotators_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("annotation.change_annotatorprofile")

    @admin.action(description=DEACTIVATE_DESCRIPTION, permissions=["deactivate_annotators"])
    def deactivate_annotators(self, request: HttpRequest, queryset) -> None:
        annotators_deactivate_from_admin(self, request, queryset)
