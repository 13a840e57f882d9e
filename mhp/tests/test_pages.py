import pytest
from django.urls import reverse

from annotation import roles
from annotation.tests.factories import make_pair, make_user

pytestmark = pytest.mark.django_db


def test_pages_need_login(client):
    response = client.get(reverse("home"))
    assert response.status_code == 302 and response.url.startswith(reverse("login"))


def test_login_then_home_shows_roles_and_logout_works(client):
    make_user(roles.ANNOTATOR, username="ann")
    response = client.post(reverse("login"), {"username": "ann", "password": "pw-123456"}, follow=True)
    assert response.status_code == 200
    assert b"Your roles: annotator" in response.content
    client.post(reverse("logout"))
    assert client.get(reverse("home")).status_code == 302


def test_wrong_password_is_refused_with_a_message(client):
    make_user(roles.ANNOTATOR, username="ann")
    response = client.post(reverse("login"), {"username": "ann", "password": "nope"})
    assert response.status_code == 200
    assert b"didn't match" in response.content


def test_annotator_sees_no_project_figures_and_no_admin(client):
    make_pair()
    client.force_login(make_user(roles.ANNOTATOR))
    home = client.get(reverse("home"))
    assert b"awaiting filtering" not in home.content
    admin = client.get(reverse("admin:annotation_pair_changelist"))
    assert admin.status_code == 302 and "/admin/login/" in admin.url


def test_admin_sees_pairs_in_the_admin(client):
    pair = make_pair()
    client.force_login(make_user(roles.ADMIN))
    assert b"awaiting filtering" in client.get(reverse("home")).content
    response = client.get(reverse("admin:annotation_pair_changelist"))
    assert response.status_code == 200
    assert f"pair {pair.pk}".encode() in response.content or str(pair.pk).encode() in response.content
    assert client.get(reverse("admin:annotation_image_changelist")).status_code == 200
    assert client.get(reverse("admin:annotation_prompt_changelist")).status_code == 200


def test_reviewer_permissions_differ_from_annotator():
    annotator, reviewer = make_user(roles.ANNOTATOR), make_user(roles.REVIEWER)
    assert annotator.has_perm("annotation.label_pairs")
    assert not annotator.has_perm("annotation.adjudicate_pairs")
    assert reviewer.has_perm("annotation.adjudicate_pairs") and reviewer.has_perm("annotation.view_quality")
    assert not reviewer.is_staff


def test_healthz_reports_the_database(client):
    assert client.get(reverse("healthz")).json()["status"] == "ok"


def test_the_admin_role_holds_every_permission_of_the_apps_models_added_later_included():
    from django.contrib.auth.models import Group, Permission

    admin = Group.objects.get(name="admin")
    for app_label in ("annotation", "datasets", "training"):
        missing = Permission.objects.filter(content_type__app_label=app_label).exclude(group=admin)
        assert list(missing.values_list("codename", flat=True)) == [], app_label
    assert admin.permissions.filter(codename="change_guideline").exists()
