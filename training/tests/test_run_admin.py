"""A run's status and lifecycle fields are the lifecycle's: the admin shows them and nobody types them in."""

import pytest
from django.urls import reverse

from annotation import roles
from annotation.tests.factories import make_user
from mhp.jobs import JobStatus
from training.models import TrainingRun

pytestmark = pytest.mark.django_db


def test_a_training_runs_status_cannot_be_typed_in(client):
    run = TrainingRun.objects.create(name="run-1", status=JobStatus.RUNNING, total_steps=10, output_dir="/runs/run-1")
    client.force_login(make_user(roles.ADMIN))
    change = reverse("admin:training_trainingrun_change", args=[run.pk])
    page = client.get(change).content.decode()
    assert 'name="status"' not in page and 'name="output_dir"' not in page and 'name="cancel_requested"' in page
    response = client.post(
        change, {"status": JobStatus.SUCCEEDED, "progress": "1", "output_dir": "/etc", "name": "renamed", "step": "10"}
    )
    assert response.status_code == 302
    assert TrainingRun.objects.values_list("name", "status", "progress", "output_dir", "step").get() == (
        "run-1",
        JobStatus.RUNNING,
        0.0,
        "/runs/run-1",
        0,
    )
    client.post(change, {"cancel_requested": "on"})
    assert TrainingRun.objects.get().cancel_requested is True
    assert client.get(reverse("admin:training_trainingrun_add")).status_code == 403
    assert client.get(reverse("admin:training_evaluationrun_add")).status_code == 403
