"""The training web UI: staff start a run on the gpu queue, watch its progress and curves, and cancel it."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from annotation import roles
from annotation.tests.factories import make_user
from datasets.models import DatasetVersion
from mhp.jobs import JobStatus
from training.models import TrainingRun
from training.runs import training_run_create, training_run_execute
from training.tests.test_train_mps_command import _frozen_version

RUNS = reverse("training-pages:runs")
TINY_FORM = {"preset": "tiny", "steps": "2", "batch_size": "4", "grad_accumulation": "1", "val_every": "1"}
TINY_FORM |= {"freeze_lower_blocks": "0", "seed": "0", "lr": "", "precision": "", "init_checkpoint": ""}


@pytest.fixture(autouse=True)
def _artifacts_in_tmp(settings, tmp_path):
    settings.ARTIFACTS_ROOT = tmp_path / "artifacts"
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def admin_client(client, db):
    client.force_login(make_user(roles.ADMIN))
    return client


def _polylines(html: str, chart_id: str) -> dict[str, int]:
    """Series key -> number of points of each polyline inside the figure with this id."""
    figure = re.search(rf'<figure class="linechart" id="{chart_id}">(.*?)</figure>', html, re.S).group(1)
    lines = re.findall(r'<polyline data-series="([^"]+)"[^>]*points="([^"]*)"', figure)
    return {key: len(points.split()) for key, points in lines}


def test_staff_starts_a_tiny_run_through_the_form_and_sees_it_succeed(admin_client, django_capture_on_commit_callbacks):
    version = _frozen_version("pages-v1")
    page = admin_client.get(RUNS).content.decode()
    assert f'<option value="{version.pk}">pages-v1</option>' in page and 'id="no-runs"' in page
    # Celery runs eagerly in tests: the queued task trains in the request once it commits.
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = admin_client.post(RUNS, {"dataset_version": version.pk, "name": "page-run", **TINY_FORM})
    run = TrainingRun.objects.get()
    assert len(callbacks) == 1
    assert response.status_code == 302 and response["Location"] == reverse("training-pages:run", args=[run.pk])
    assert (run.status, run.error, run.step, run.progress) == (JobStatus.SUCCEEDED, "", 2, 1.0)
    assert run.dataset_version == version and run.created_by.groups.filter(name=roles.ADMIN).exists()
    assert run.config == {
        "preset": "tiny", "steps": 2, "batch_size": 4, "grad_accumulation": 1, "lr": 1e-3, "warmup_steps": 1,
        "num_workers": 0, "precision": "fp32", "val_every": 1, "activation_checkpointing": False,
        "freeze_lower_blocks": 0, "seed": 0,
    }  # fmt: skip

    html = admin_client.get(response["Location"]).content.decode()
    assert '<b id="run-status" class="status-succeeded">Succeeded</b>' in html
    assert 'http-equiv="refresh"' not in html and 'id="cancel-run"' not in html
    assert f'<code id="best-checkpoint">{run.best_checkpoint}</code>' in html and run.best_checkpoint
    assert f'<code id="output-dir">{run.output_dir}</code>' in html
    last = run.metrics["val"][-1]
    assert f'<td class="num" id="latest-val">step 2: Aesthetics {last["aesthetics"]:.3f},' in html
    assert _polylines(html, "loss-chart") == {"loss": 2}
    assert _polylines(html, "val-chart") == {"aesthetics": 2, "detail": 2, "alignment": 2, "overall": 2}
    assert html.count("<svg ") == 2 and "<script" not in html
    for label in ("Aesthetics", "Detail quality", "Semantic alignment", "Overall"):
        assert f"</i>{label}</span>" in html

    listing = admin_client.get(RUNS).content.decode()
    row = re.search(r'<tr data-run="page-run">(.*?)</tr>', listing, re.S).group(1)
    assert "pages-v1" in row and "Succeeded" in row and "2 / 2" in row and 'value="1.0000"' in row
    best = max(point["mean"] for point in run.metrics["val"])
    assert f"{best:.3f}" in row

    status = admin_client.get(reverse("training-pages:run-json", args=[run.pk])).json()
    assert (status["status"], status["active"], status["step"], status["total_steps"]) == ("succeeded", False, 2, 2)
    assert [point["step"] for point in status["metrics"]["val"]] == [1, 2] and status["best_val_mean"] == best


def test_invalid_input_shows_the_errors_and_creates_nothing(admin_client):
    version = _frozen_version("pages-v2")
    draft = DatasetVersion.objects.create(name="draft-v")
    training_run_create(name="taken", version=version, options={"preset": "tiny", "steps": 1}, enqueue=False)
    cases = [
        ({"dataset_version": version.pk, "name": "taken"}, "A training run named &#x27;taken&#x27; exists already."),
        ({"dataset_version": draft.pk, "name": "fresh"}, "Choose a frozen dataset version"),
        ({"dataset_version": version.pk, "name": "fresh", "batch_size": "5", "grad_accumulation": "2"},
         "The batch size (5) must split evenly into 2 accumulation steps."),
        ({"dataset_version": version.pk, "name": "fresh", "steps": "0"}, "greater than or equal to 1"),
        ({"dataset_version": version.pk, "name": "not a slug"}, "Enter a valid “slug”"),
    ]  # fmt: skip
    for data, error in cases:
        response = admin_client.post(RUNS, {**TINY_FORM, **data})
        html = response.content.decode()
        assert response.status_code == 400 and 'class="errorlist' in html and error in html, error
    assert list(TrainingRun.objects.values_list("name", flat=True)) == ["taken"]
    assert f'<option value="{draft.pk}"' not in admin_client.get(RUNS).content.decode()


def test_cancel_a_queued_run_and_finished_runs_stay_as_they_are(admin_client):
    run = training_run_create(name="queued-run", version=_frozen_version("pages-v3"), options={"preset": "tiny"},
                              enqueue=False)  # fmt: skip
    page = reverse("training-pages:run", args=[run.pk])
    html = admin_client.get(page).content.decode()
    assert '<meta http-equiv="refresh" content="5">' in html and 'id="cancel-run"' in html
    assert 'id="loss-chart"' in html and "No training step recorded yet." in html and "<polyline" not in html
    response = admin_client.post(reverse("training-pages:run-cancel", args=[run.pk]))
    assert response.status_code == 302 and response["Location"] == page
    run.refresh_from_db()
    assert (run.status, run.cancel_requested) == (JobStatus.CANCELLED, True) and run.finished_at
    html = admin_client.get(page).content.decode()
    assert "Cancelled" in html and 'id="cancel-run"' not in html and 'http-equiv="refresh"' not in html
    finished_at = run.finished_at
    response = admin_client.post(reverse("training-pages:run-cancel", args=[run.pk]), follow=True)
    assert "is cancelled: nothing to cancel" in response.content.decode()
    run.refresh_from_db()
    assert (run.status, run.finished_at) == (JobStatus.CANCELLED, finished_at)
    assert admin_client.get(reverse("training-pages:run-cancel", args=[run.pk])).status_code == 405
    assert admin_client.get(reverse("training-pages:run", args=[run.pk + 1])).status_code == 404


def test_the_train_task_is_routed_to_the_gpu_queue():
    from mhp.celery import app

    assert app.amqp.router.route({}, "training.tasks.train_run")["queue"].name == "gpu"


def test_annotators_and_anonymous_users_get_nothing(client, db):
    version = _frozen_version("pages-v4")
    run = training_run_create(name="guarded", version=version, options={"preset": "tiny"}, enqueue=False)
    gets = [RUNS, reverse("training-pages:run", args=[run.pk]), reverse("training-pages:run-json", args=[run.pk])]
    posts = [
        (RUNS, {"dataset_version": version.pk, "name": "sneaky", **TINY_FORM}),
        (reverse("training-pages:run-cancel", args=[run.pk]), {}),
    ]
    for url in gets:
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), url
    client.force_login(make_user(roles.ANNOTATOR))
    for url in gets:
        assert client.get(url).status_code == 403, url
    for url, data in posts:
        assert client.post(url, data).status_code == 403, url
    run.refresh_from_db()
    assert list(TrainingRun.objects.values_list("name", flat=True)) == ["guarded"]
    assert (run.status, run.cancel_requested) == (JobStatus.QUEUED, False)


def test_viewers_without_add_permission_see_the_list_but_no_form(client, db):
    from django.contrib.auth.models import Permission

    user = make_user()
    user.user_permissions.add(Permission.objects.get(codename="view_trainingrun"))
    client.force_login(user)
    html = client.get(RUNS).content.decode()
    assert 'id="no-runs"' in html and 'id="start-run"' not in html
    assert client.post(RUNS, {"name": "x", **TINY_FORM}).status_code == 403
    assert not TrainingRun.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_run_page_draws_the_charts_in_chromium(browser_login, live_server):
    options = {"preset": "tiny", "steps": 3, "batch_size": 4, "val_every": 1, "lr": 1e-3, "warmup_steps": 1}
    options |= {"num_workers": 0, "precision": "fp32", "log_tensorboard": False}
    run = training_run_create(name="browser-run", version=_frozen_version("pages-v5"), options=options, enqueue=False)
    run = training_run_execute(run_id=run.pk)
    assert run.status == JobStatus.SUCCEEDED, run.error
    make_user(roles.ADMIN, username="runs-admin")
    page = browser_login("runs-admin")
    page.click("text=Train a model")
    page.click("text=browser-run")
    assert page.text_content("#run-status") == "Succeeded"
    assert page.locator("#loss-chart polyline").count() == 1
    assert page.locator("#val-chart polyline").count() == 4
    assert page.locator("#val-chart circle").count() == 12
    box = page.locator("#val-chart svg").bounding_box()
    assert box["width"] > 300 and box["height"] > 100
    # The loss line is drawn inside the plot: its rendered box is within the SVG's.
    line = page.locator("#loss-chart polyline").bounding_box()
    svg = page.locator("#loss-chart svg").bounding_box()
    assert svg["x"] <= line["x"] and line["x"] + line["width"] <= svg["x"] + svg["width"] + 1
