"""The admin role's limits in the User admin: each forbidden change is refused (form error or 403), nothing changes."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.urls import reverse

from annotation import roles
from annotation.tests.factories import make_user

pytestmark = pytest.mark.django_db
User = get_user_model()


def _permission(code: str) -> Permission:
    app_label, codename = code.split(".")
    return Permission.objects.get(content_type__app_label=app_label, codename=codename)


def _state(user) -> tuple:
    user = User.objects.get(pk=user.pk)
    return (
        user.username,
        user.password,
        user.is_superuser,
        user.is_staff,
        user.is_active,
        sorted(user.groups.values_list("name", flat=True)),
        sorted(user.user_permissions.values_list("codename", flat=True)),
    )


def _form(user, **changes) -> dict:
    data = {
        "username": user.username,
        "first_name": "",
        "last_name": "",
        "email": "",
        "is_active": "on",
        "groups": [g.pk for g in user.groups.all()],
        "user_permissions": [p.pk for p in user.user_permissions.all()],
        "last_login_0": "",
        "last_login_1": "",
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
    }
    data.update({"is_staff": "on"} if user.is_staff else {})
    data.update({"is_superuser": "on"} if user.is_superuser else {})
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


@pytest.fixture
def people(client):
    editor = make_user(roles.ADMIN, username="editor")
    client.force_login(editor)
    owners = Group.objects.create(name="owners")
    owners.permissions.add(_permission("auth.change_group"))
    return {
        "editor": editor,
        "annotator": make_user(roles.ANNOTATOR, username="annotator"),
        "root": User.objects.create_superuser("root", password="pw-123456"),
        "owners": owners,
    }


def _change(client, user, **changes):
    return client.post(reverse("admin:auth_user_change", args=[user.pk]), _form(user, **changes))


FORBIDDEN = {
    "make-annotator-superuser": (
        "annotator",
        lambda p: {"is_superuser": "on"},
        "only a superuser can make someone a superuser",
    ),
    "make-self-superuser": (
        "editor",
        lambda p: {"is_superuser": "on"},
        "only a superuser can make someone a superuser",
    ),
    "make-annotator-staff-by-hand": (
        "annotator",
        lambda p: {"is_staff": "on"},
        "staff status comes with the admin role",
    ),
    "grant-permission-not-held": (
        "annotator",
        lambda p: {"user_permissions": [_permission("auth.delete_user").pk]},
        "you cannot grant permissions you do not hold: auth.delete_user",
    ),
    "grant-self-permission-not-held": (
        "editor",
        lambda p: {"user_permissions": [_permission("auth.change_group").pk]},
        "you cannot grant permissions you do not hold: auth.change_group",
    ),
    "grant-group-carrying-permissions-not-held": (
        "annotator",
        lambda p: {"groups": [p["owners"].pk]},
        "you cannot grant the group &#x27;owners&#x27;: it carries permissions you do not hold (auth.change_group)",
    ),
    "edit-superuser": ("root", lambda p: {"username": "renamed", "is_superuser": None}, 403),
}


@pytest.mark.parametrize("case", list(FORBIDDEN))
def test_an_admin_role_user_cannot_escalate(client, people, case):
    target_name, changes, refusal = FORBIDDEN[case]
    target = people[target_name]
    before = {name: _state(user) for name, user in people.items() if name != "owners"}
    response = _change(client, target, **changes(people))
    if refusal == 403:
        assert response.status_code == 403
    else:
        assert response.status_code == 200, response.get("Location")
        assert refusal in response.content.decode()
    assert {name: _state(user) for name, user in people.items() if name != "owners"} == before


def test_an_admin_role_user_cannot_reset_or_delete_a_superuser(client, people):
    root = people["root"]
    before = _state(root)
    reset = reverse("admin:auth_user_password_change", args=[root.pk])
    assert client.get(reset).status_code == 403
    assert client.post(reset, {"password1": "new-pw-98765!", "password2": "new-pw-98765!"}).status_code == 403
    assert client.post(reverse("admin:auth_user_delete", args=[root.pk]), {"post": "yes"}).status_code == 403
    assert client.get(reverse("admin:auth_user_change", args=[root.pk])).status_code == 200  # viewing is fine
    assert _state(root) == before


def test_an_admin_role_user_manages_annotators_and_reviewers(client, people):
    annotator = people["annotator"]
    reviewer = Group.objects.get(name=roles.REVIEWER)
    held = _permission("annotation.view_pair")
    response = _change(client, annotator, groups=[reviewer.pk], user_permissions=[held.pk])
    assert response.status_code == 302
    state = _state(annotator)
    assert (state[5], state[6], state[3]) == ([roles.REVIEWER], ["view_pair"], False)
    # The admin role (whose permissions the editor holds) may be given; staff status comes with it.
    admin_group = Group.objects.get(name=roles.ADMIN)
    assert _change(client, annotator, groups=[admin_group.pk]).status_code == 302
    assert _state(annotator)[3] is True


def test_a_superuser_may_do_all_of_it(client, people):
    client.force_login(people["root"])
    response = _change(client, people["annotator"], is_superuser="on", is_staff="on")
    assert response.status_code == 302 and _state(people["annotator"])[2:4] == (True, True)
