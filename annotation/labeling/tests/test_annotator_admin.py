import pytest
from django.urls import reverse

from annotation import roles
from annotation.labeling import queue
from annotation.labeling.tests.labeling_factories import make_pairs
from annotation.models import AnnotatorProfile
from annotation.tests.factories import make_user

pytestmark = pytest.mark.django_db


def _deactivate(client, profile):
    url = reverse("admin:annotation_annotatorprofile_changelist")
    return client.post(url, {"action": "deactivate", "_selected_action": [profile.pk]})


def _profile(user) -> AnnotatorProfile:
    return AnnotatorProfile.objects.get_or_create(user=user)[0]


@pytest.mark.parametrize("role", [roles.ANNOTATOR, roles.REVIEWER])
def test_non_staff_cannot_deactivate(client, role):
    target = _profile(make_user(roles.ANNOTATOR))
    client.force_login(make_user(role))
    response = _deactivate(client, target)
    assert response.status_code == 302 and response.url.startswith(reverse("admin:login"))
    target.refresh_from_db()
    assert target.labeling_enabled and not target.judgements_excluded and target.deactivated_at is None


def test_admin_deactivates_and_the_queue_then_refuses(client):
    make_pairs(2)
    annotator = make_user(roles.ANNOTATOR)
    bystander = _profile(make_user(roles.ANNOTATOR))
    target = _profile(annotator)
    client.force_login(make_user(roles.ADMIN))
    assert _deactivate(client, target).status_code == 302
    target.refresh_from_db()
    assert not target.labeling_enabled and target.judgements_excluded and target.deactivated_at is not None
    bystander.refresh_from_db()
    assert bystander.labeling_enabled and not bystander.judgements_excluded
    with pytest.raises(queue.LabelingDisabled):
        queue.pair_claim(annotator=annotator)
    client.force_login(annotator)
    assert client.get(reverse("annotation:label-form")).status_code == 403
