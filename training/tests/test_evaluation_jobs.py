"""Evaluations queued from the results page: the staff form, the gpu task (eager here) on tiny models, the
results it feeds, and the refusals that store nothing."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.urls import reverse

from annotation import roles
from annotation.tests.factories import make_user
from mhp.jobs import JobStatus
from training.evaluation.jobs import EvaluationOptions, evaluation_run_create, evaluation_run_execute
from training.models import EvaluationRun
from training.runs import training_run_create, training_run_execute
from training.tests.benchmark_sets import tiny_imagereward_set
from training.tests.test_baselines_command import tiny_weights
from training.tests.test_train_mps_command import _frozen_version

pytestmark = pytest.mark.django_db
RESULTS = reverse("training-pages:results")


@pytest.fixture(autouse=True)
def _artifacts_in_tmp(settings, tmp_path, weights):
    settings.ARTIFACTS_ROOT = tmp_path / "artifacts"
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MODEL_ROOTS = sorted({path.parent for path in weights.values()})  # where the baselines' weights are


@pytest.fixture(scope="module")
def weights(tmp_path_factory, mps_official_path):
    return tiny_weights(tmp_path_factory.mktemp("weights"), mps_official_path)


@pytest.fixture
def imagereward_set(tmp_path):
    return tiny_imagereward_set(tmp_path / "images")


@pytest.fixture
def staff(client):
    client.force_login(make_user(roles.ADMIN))
    return client


def _trained_run(version):
    options = {"preset": "tiny", "steps": 2, "batch_size": 4, "val_every": 1, "lr": 1e-3, "warmup_steps": 1}
    options |= {"num_workers": 0, "precision": "fp32", "log_tensorboard": False}
    run = training_run_execute(run_id=training_run_create(name="trained", version=version, options=options,
                                                          enqueue=False).pk)  # fmt: skip
    assert run.status == JobStatus.SUCCEEDED and run.best_checkpoint, run.error
    return run


def _post(client, data, django_capture_on_commit_callbacks):
    form = {"method": "mps", "training_run": "", "weights": "", "aesthetic_clip": "", "arch": "", "batch_size": "8"}
    with django_capture_on_commit_callbacks(execute=True):  # Celery is eager here: the task runs on commit
        return client.post(RESULTS, {**form, **data})


def test_staff_evaluates_a_trained_run_on_the_mhp_test_split_and_the_results_show_it(
    staff, django_capture_on_commit_callbacks
):
    version = _frozen_version("eval-v1")
    trained = _trained_run(version)
    page = staff.get(RESULTS).content.decode()
    assert f'<option value="version:{version.pk}">eval-v1 (MHP test split)</option>' in page
    assert f'<option value="{trained.pk}">trained</option>' in page and 'id="no-evaluations"' in page

    response = _post(staff, {"training_run": trained.pk, "benchmark": f"version:{version.pk}"},
                     django_capture_on_commit_callbacks)  # fmt: skip
    assert response.status_code == 302 and response["Location"] == RESULTS
    run = EvaluationRun.objects.get()
    assert (run.status, run.error, run.progress) == (JobStatus.SUCCEEDED, "", 1.0)
    assert (run.method, run.checkpoint_path, run.training_run, run.dataset_version) == (
        "mps", trained.best_checkpoint, trained, version
    )  # fmt: skip
    assert run.benchmark == "eval-v1" and run.metrics["kind"] == "pairs"
    dimensions = run.metrics["dimensions"]
    assert sorted(dimensions) == ["aesthetics", "alignment", "detail", "overall"]  # jsonb keeps no key order
    assert all(0 <= cell["accuracy"] <= 1 and cell["pairs"] >= 1 for cell in dimensions.values())

    html = staff.get(RESULTS).content.decode()
    row = re.search(rf'<tr data-evaluation="{run.pk}">(.*?)</tr>', html, re.S).group(1)
    assert "mps" in row and "(trained)" in row and "Succeeded" in row and "100%" in row
    assert "MHP accuracy by dimension: eval-v1" in html
    mhp_row = re.search(r'class="results mhp-table".*?<tr data-method="MPS">(.*?)</tr>', html, re.S).group(1)
    cells = [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", mhp_row, re.S)]
    keys = ("aesthetics", "detail", "alignment", "overall")
    assert cells == ["MPS", *(f"{100 * dimensions[d]['accuracy']:.1f}" for d in keys)]
    assert 'http-equiv="refresh"' not in html  # nothing queued or running


def test_a_baseline_from_the_page_gives_what_the_command_gives(
    staff, weights, imagereward_set, django_capture_on_commit_callbacks, capsys
):
    data = {"method": "clip", "weights": str(weights["clip"]), "arch": str(weights["arch"])}
    response = _post(staff, {**data, "benchmark": f"set:{imagereward_set.pk}"}, django_capture_on_commit_callbacks)
    assert response.status_code == 302
    run = EvaluationRun.objects.get()
    assert (run.status, run.evaluation_set, run.benchmark) == (JobStatus.SUCCEEDED, imagereward_set, "ir-tiny")
    call_command("evaluate_baselines", "--benchmark=ir-tiny", f"--method=clip={weights['clip']}",
                 f"--arch={weights['arch']}", "--device=cpu", "--verbosity=0", "--json")  # fmt: skip
    from_command = json.loads(capsys.readouterr().out)["results"][0]
    assert run.metrics["dimensions"] == from_command["dimensions"] and list(from_command["dimensions"]) == ["overall"]
    assert (run.metrics["prompts"], run.metrics["images"]) == (2, 5)
    overview = staff.get(RESULTS).content.decode()
    accuracy = 100 * run.metrics["dimensions"]["overall"]["accuracy"]
    assert re.search(rf'<tr data-method="CLIP score"><td>CLIP score</td><td class="num">{accuracy:.1f}</td>', overview)


def test_bad_input_is_a_form_error_and_stores_nothing(staff, weights, imagereward_set, tmp_path):
    version = _frozen_version("eval-v2")
    unfinished = training_run_create(name="unfinished", version=version, options={"preset": "tiny"}, enqueue=False)
    benchmark = f"set:{imagereward_set.pk}"
    cases = [
        ({"method": "clip", "weights": str(weights["clip"].parent / "missing.bin"), "benchmark": benchmark},
         f"clip: nothing at {weights['clip'].parent / 'missing.bin'}"),
        ({"method": "clip", "weights": str(tmp_path / "missing.bin"), "benchmark": benchmark},
         "clip: only paths under ARTIFACTS_ROOT or MODEL_ROOTS are read"),
        ({"method": "clip", "weights": str(weights["clip"]), "benchmark": "set:999999"}, "Unknown benchmark"),
        ({"method": "clip", "weights": str(weights["clip"]), "benchmark": ""}, "This field is required."),
        ({"method": "mps", "benchmark": benchmark}, "Give the path of the weights"),
        ({"method": "mps", "training_run": unfinished.pk, "benchmark": benchmark}, "Select a valid choice."),
        ({"method": "clip", "training_run": "", "weights": "", "benchmark": benchmark}, "Give the path of the weights"),
        ({"method": "aesthetic", "weights": str(weights["aesthetic"]), "benchmark": benchmark},
         "aesthetic: no CLIP ViT-L/14 weights for it"),
        ({"method": "dalle", "weights": str(weights["clip"]), "benchmark": benchmark}, "Select a valid choice."),
    ]  # fmt: skip
    form = {"training_run": "", "weights": "", "aesthetic_clip": "", "arch": "", "batch_size": "8"}
    for data, error in cases:
        response = staff.post(RESULTS, {**form, **data})
        html = response.content.decode()
        assert response.status_code == 400 and 'class="errorlist' in html and error in html, error
    assert not EvaluationRun.objects.exists()


def test_a_failure_on_the_worker_is_recorded_on_the_run(weights, imagereward_set):
    run = evaluation_run_create(method="clip", weights=str(weights["clip"]), evaluation_set=imagereward_set,
                                options=EvaluationOptions(arch=str(weights["arch"])), enqueue=False)  # fmt: skip
    shutil.rmtree(Path(imagereward_set.image_root) / "p2")  # the images went away after it was queued
    run = evaluation_run_execute(run_id=run.pk)
    assert run.status == JobStatus.FAILED and run.finished_at is not None
    assert run.error.startswith("ValueError: 2 images are missing under") and "p2/a.png" in run.error
    assert evaluation_run_execute(run_id=run.pk).status == JobStatus.FAILED  # a redelivered task does nothing


def test_the_form_is_for_staff_with_the_add_permission(client, weights, imagereward_set):
    data = {"method": "clip", "weights": str(weights["clip"]), "benchmark": f"set:{imagereward_set.pk}"}
    response = client.post(RESULTS, data)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    client.force_login(make_user(roles.ANNOTATOR))
    response = client.post(RESULTS, data)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    viewer = make_user()
    viewer.is_staff = True
    viewer.save()
    viewer.user_permissions.add(Permission.objects.get(codename="view_evaluationrun"))
    client.force_login(viewer)
    assert 'id="start-evaluation"' not in client.get(RESULTS).content.decode()
    assert client.post(RESULTS, data).status_code == 403
    assert not EvaluationRun.objects.exists()


def test_the_evaluate_task_is_routed_to_the_gpu_queue():
    from mhp.celery import app

    assert app.amqp.router.route({}, "training.tasks.evaluate_run")["queue"].name == "gpu"
    assert app.amqp.router.route({}, "training.reap_dead_runs")["queue"].name == "default"


def test_an_unexpected_error_fails_the_run_and_a_retry_after_the_fix_completes(
    weights, imagereward_set, monkeypatch, django_capture_on_commit_callbacks
):
    from training.evaluation import jobs

    def broken(*args):
        raise KeyError("a bug nobody expected")

    monkeypatch.setattr(jobs, "_target_source", broken)
    run = evaluation_run_create(method="clip", weights=str(weights["clip"]), evaluation_set=imagereward_set,
                                options=EvaluationOptions(arch=str(weights["arch"])), enqueue=False)  # fmt: skip
    run = evaluation_run_execute(run_id=run.pk)
    assert run.status == JobStatus.FAILED and run.finished_at is not None
    assert run.error.startswith("unexpected error (KeyError: 'a bug nobody expected')")

    monkeypatch.undo()
    with django_capture_on_commit_callbacks(execute=True):  # Celery is eager here: the task runs on commit
        jobs.evaluation_run_retry(run_id=run.pk)
    run.refresh_from_db()
    assert (run.status, run.error, run.progress) == (JobStatus.SUCCEEDED, "", 1.0)
    assert (run.metrics["prompts"], run.metrics["images"]) == (2, 5)


def test_the_page_scores_untrained_dimensions_only_when_allowed(
    staff, settings, tmp_path, imagereward_set, mps_official_path, django_capture_on_commit_callbacks
):
    """MPS on an imported benchmark is evaluated on all four dimensions; the published release was trained on
    overall only, so the queued run is refused by the scorer unless the form's box (the commands' flag) is set."""
    settings.MODEL_ROOTS = [*settings.MODEL_ROOTS, tmp_path / "published"]
    call_command("import_mps_checkpoint", str(mps_official_path), str(tmp_path / "published"))
    form = {"weights": str(tmp_path / "published"), "benchmark": f"set:{imagereward_set.pk}"}
    for allowed in ({}, {"allow_untrained_dimensions": "on"}):
        assert _post(staff, {**form, **allowed}, django_capture_on_commit_callbacks).status_code == 302
    refused, allowed = EvaluationRun.objects.order_by("pk")
    assert (refused.config["allow_untrained_dimensions"], allowed.config["allow_untrained_dimensions"]) == (False, True)
    assert refused.status == JobStatus.FAILED and "trained on overall only, not on aesthetics" in refused.error
    assert allowed.status == JobStatus.SUCCEEDED, allowed.error
