"""The three roles are Django groups. Their permissions are set by migrations (0003_roles onwards)."""

from django.contrib.auth.models import AbstractBaseUser, Group

ANNOTATOR = "annotator"
REVIEWER = "reviewer"
ADMIN = "admin"
ROLES = (ANNOTATOR, REVIEWER, ADMIN)


def roles_of(user: AbstractBaseUser) -> list[str]:
    if not user.is_authenticated:
        return []
    names = set(user.groups.values_list("name", flat=True))
    if user.is_superuser:
        names.add(ADMIN)
    return [role for role in ROLES if role in names]


def role_assign(*, user: AbstractBaseUser, role: str) -> None:
    """Put a user in a role; admins are staff so they can reach the admin site."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    user.groups.add(Group.objects.get(name=role))
    if role == ADMIN and not user.is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
