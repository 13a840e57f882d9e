import uuid

import pytest
from django.urls import reverse

from annotation import roles
from annotation.labeling.tests.labeling_factories import ANSWERS_LEFT, make_pairs
from annotation.models import AnnotatorProfile, Judgement, PairLease, PairSkip
from annotation.tests.factories import make_user

pytestmark = pytest.mark.django_db


def test_the_form_shows_a_leased_pair_with_the_four_rows_and_the_keys(client):
    (pair,) = make_pairs(1)
    client.force_login(make_user(roles.ANNOTATOR))
    page = client.get(reverse("annotation:label-form")).content.decode()
    lease = PairLease.objects.get()
    left = pair.image_first if lease.left_side == "first" else pair.image_second
    assert pair.prompt.text in page and f'id="left-image" src="{left.file.url}"' in page
    for label in ("Aesthetics", "Detail quality", "Semantic alignment", "Overall", "Enter", "guidelines"):
        assert label in page


def test_the_plain_form_post_stores_a_judgement_without_script(client):
    (pair,) = make_pairs(1)
    user = make_user(roles.ANNOTATOR)
    client.force_login(user)
    client.get(reverse("annotation:label-form"))
    body = {"pair_id": pair.pk, "client_token": str(uuid.uuid4()), "duration_ms": "", **ANSWERS_LEFT}
    response = client.post(reverse("annotation:label-form"), body, follow=True)
    assert b"Saved." in response.content and b"Nothing to judge right now" in response.content
    judgement = Judgement.objects.get()
    assert judgement.annotator == user and judgement.pair == pair and judgement.duration_ms >= 0


def test_an_incomplete_plain_post_is_refused(client):
    (pair,) = make_pairs(1)
    client.force_login(make_user(roles.ANNOTATOR))
    client.get(reverse("annotation:label-form"))
    body = {"pair_id": pair.pk, "client_token": str(uuid.uuid4()), "aesthetics": "left"}
    response = client.post(reverse("annotation:label-form"), body, follow=True)
    assert b"Answer all four rows" in response.content and not Judgement.objects.exists()


def test_the_plain_skip_post_records_the_reason(client):
    (pair,) = make_pairs(1)
    client.force_login(make_user(roles.ANNOTATOR))
    client.get(reverse("annotation:label-form"))
    client.post(reverse("annotation:label-form"), {"pair_id": pair.pk, "reason": "offensive"})
    assert PairSkip.objects.get().reason == "offensive" and not PairLease.objects.exists()


def test_people_without_the_role_or_disabled_cannot_open_the_form(client):
    make_pairs(1)
    client.force_login(make_user())
    assert client.get(reverse("annotation:label-form")).status_code == 403
    disabled = make_user(roles.ANNOTATOR)
    AnnotatorProfile.objects.create(user=disabled, labeling_enabled=False)
    client.force_login(disabled)
    assert client.get(reverse("annotation:label-form")).status_code == 403
    assert not PairLease.objects.exists()


def test_an_annotator_cannot_see_judgements_of_others_in_the_admin(client):
    make_pairs(1)
    client.force_login(make_user(roles.ANNOTATOR))
    response = client.get(reverse("admin:annotation_judgement_changelist"))
    assert response.status_code == 302 and "/admin/login/" in response.url


def test_home_links_to_the_form_for_annotators(client):
    client.force_login(make_user(roles.ANNOTATOR))
    assert reverse("annotation:label-form").encode() in client.get(reverse("home")).content
