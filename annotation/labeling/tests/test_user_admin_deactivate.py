"""Deactivating an annotator from the User admin: labeling stops and the next frozen version leaves them out."""

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from annotation import roles
from annotation.models import AnnotatorProfile
from annotation.tests.factories import make_user
from datasets.models import DatasetItem
from datasets.services.freeze import FreezeOptions, dataset_freeze
from datasets.tests.factories import JudgedPairs, judge

pytestmark = pytest.mark.django_db
USERS = reverse("admin:auth_user_changelist")


def _deactivate(client, *users):
    return client.post(USERS, {"action": "deactivate_annotators", "_selected_action": [user.pk for user in users]})


def _frozen_pairs(name: str) -> set[int]:
    version = dataset_freeze(name=name, options=FreezeOptions(val=0, test=0))
    return set(DatasetItem.objects.filter(version=version).values_list("pair_id", flat=True))


def _profile_state(user) -> tuple | None:
    row = AnnotatorProfile.objects.filter(user=user).values_list("labeling_enabled", "judgements_excluded").first()
    return tuple(row) if row else None


def test_the_next_dataset_version_leaves_out_a_deactivated_annotator(client):
    judged = JudgedPairs(annotators=4)
    a, b, c, d = judged.annotators
    without_d, with_d = judged.prompt_pairs(2)
    judged.judge_all(without_d, ["first", "second", "first"])  # a, b, c
    for annotator in (a, b, d):
        judge(with_d, annotator, "second")
    assert _frozen_pairs("before") == {without_d.pk, with_d.pk}

    admin = make_user(roles.ADMIN)
    client.force_login(admin)
    response = _deactivate(client, d)
    assert response.status_code == 302
    assert _profile_state(d) == (False, True)
    assert AnnotatorProfile.objects.get(user=d).note == f"deactivated by {admin.username}"
    assert _profile_state(a) is None  # nobody else touched

    # With d's judgement not counted, the pair d judged has only two of its three judgements.
    assert _frozen_pairs("after") == {without_d.pk}
    # The version frozen before is never rewritten.
    assert DatasetItem.objects.filter(version__name="before").count() == 2


def test_the_action_is_offered_on_the_user_list(client):
    client.force_login(make_user(roles.ADMIN))
    page = client.get(USERS).content.decode()
    assert 'value="deactivate_annotators"' in page
    assert "Deactivate and exclude from the next dataset version" in page


@pytest.mark.parametrize("role", [roles.ANNOTATOR, roles.REVIEWER])
def test_non_staff_cannot_deactivate_anyone(client, role):
    target = make_user(roles.ANNOTATOR)
    client.force_login(make_user(role))
    response = _deactivate(client, target)
    assert response.status_code == 302 and response.url.startswith(reverse("admin:login"))
    assert _profile_state(target) is None


def test_staff_without_the_profile_permission_gets_no_action(client):
    target = make_user(roles.ANNOTATOR)
    staff = make_user()
    staff.is_staff = True
    staff.save()
    staff.user_permissions.add(*Permission.objects.filter(codename__in=["view_user", "change_user"]))
    client.force_login(staff)
    assert 'value="deactivate_annotators"' not in client.get(USERS).content.decode()
    _deactivate(client, target)
    assert _profile_state(target) is None
