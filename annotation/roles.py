"""The three roles are Django groups. Their permissions are set by migrations (0003_roles onwards)."""

from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser, Group, Permission

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


def _code(permission: Permission) -> str:
    return f"{permission.content_type.app_label}.{permission.codename}"


def grant_problem(
    *,
    editor: AbstractBaseUser,
    user: AbstractBaseUser,
    is_superuser: bool,
    is_staff: bool,
    groups: Iterable[Group],
    permissions: Iterable[Permission],
) -> str:
    """Why `editor` may not give `user` these flags, groups and permissions ("" when they may).

    Only a superuser makes a superuser or sets staff status by hand; anyone else grants only what they
    hold themselves: a permission they have, a group whose every permission they have (staff status
    comes with the admin role, see staff_follows_role). What `user` holds already is not re-judged."""
    if editor.is_superuser:
        return ""
    if is_superuser and not user.is_superuser:
        return "only a superuser can make someone a superuser"
    if is_staff and not user.is_staff:
        return "staff status comes with the admin role: give the role instead"
    held = editor.get_all_permissions()
    known_groups = set(user.groups.values_list("pk", flat=True)) if user.pk else set()
    known_permissions = set(user.user_permissions.values_list("pk", flat=True)) if user.pk else set()
    missing = sorted(_code(p) for p in permissions if p.pk not in known_permissions and _code(p) not in held)
    if missing:
        return f"you cannot grant permissions you do not hold: {', '.join(missing)}"
    for group in groups:
        if group.pk in known_groups:
            continue
        carried = map(_code, group.permissions.select_related("content_type"))
        lacking = sorted(code for code in carried if code not in held)
        if lacking:
            return (
                f"you cannot grant the group {group.name!r}: it carries permissions you do not hold "
                f"({', '.join(lacking)})"
            )
    return ""


def staff_follows_role(user: AbstractBaseUser) -> None:
    """Admins are staff: a user given the admin role in a form becomes staff as role_assign makes them."""
    if not user.is_staff and user.groups.filter(name=ADMIN).exists():
        user.is_staff = True
        user.save(update_fields=["is_staff"])
