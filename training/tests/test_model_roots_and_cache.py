"""Checkpoints and weights are opened only under ARTIFACTS_ROOT and MODEL_ROOTS, and the scoring worker
keeps the models it loaded (by path and modification time)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.urls import reverse

from annotation import roles
from annotation.tests.factories import make_generator, make_image, make_prompt, make_user
from datasets.models import EvaluationSet
from mhp.env import env_paths
from mhp.jobs import JobStatus
from training import scoring
from training.evaluation.jobs import EvaluationError, EvaluationOptions, evaluation_run_create, evaluation_run_execute
from training.model_paths import OutsideModelRoots, model_path_allowed
from training.models import EvaluationRun
from training.mps import DIMENSIONS, MPSModel, save_checkpoint, tiny_config
from training.tests.benchmark_sets import tiny_imagereward_set

OUTSIDE = "only paths under ARTIFACTS_ROOT or MODEL_ROOTS are read"


@pytest.fixture
def roots(settings, tmp_path):
    settings.ARTIFACTS_ROOT = tmp_path / "artifacts"
    settings.MODEL_ROOTS = [tmp_path / "models"]
    for root in (settings.ARTIFACTS_ROOT, *settings.MODEL_ROOTS):
        root.mkdir()
    return tmp_path


def test_paths_under_a_root_are_accepted_and_the_rest_refused_alike(roots):
    (roots / "models" / "mps").mkdir()
    assert model_path_allowed(roots / "models" / "mps") == (roots / "models" / "mps").resolve()
    assert model_path_allowed(str(roots / "artifacts" / "runs" / "a" / "best_model")).name == "best_model"
    refusals = set()
    for path in ("/etc/passwd", "/nowhere/ckpt", str(roots / "models" / ".." / "secret"), "bad\x00path", "x" * 6000):
        with pytest.raises(OutsideModelRoots) as refusal:
            model_path_allowed(path)
        refusals.add(str(refusal.value))
    assert refusals == {f"checkpoint: {OUTSIDE} (the settings of the GPU workers)"}  # nothing about the path


def test_a_symbolic_link_cannot_lead_out_of_the_roots(roots):
    (roots / "outside").mkdir()
    (roots / "models" / "link").symlink_to(roots / "outside")
    with pytest.raises(OutsideModelRoots):
        model_path_allowed(roots / "models" / "link")


def test_model_roots_are_absolute_paths_read_strictly(monkeypatch, tmp_path):
    monkeypatch.setenv("MODEL_ROOTS", f"{tmp_path}/a, ~/b")
    assert env_paths("MODEL_ROOTS", []) == [(tmp_path / "a").resolve(), Path("~/b").expanduser().resolve()]
    for value in ("relative/models", f"{tmp_path},", f"{tmp_path},,/b"):
        monkeypatch.setenv("MODEL_ROOTS", value)
        with pytest.raises(ImproperlyConfigured, match="MODEL_ROOTS"):
            env_paths("MODEL_ROOTS", [])
    monkeypatch.delenv("MODEL_ROOTS")
    assert env_paths("MODEL_ROOTS", []) == []


@pytest.mark.django_db
def test_scoring_api_says_the_same_for_every_path_outside_the_roots(client, roots):
    image = make_image(make_prompt(), make_generator())
    client.force_login(make_user(roles.ADMIN))
    answers = []
    for path in ("/etc/passwd", "/nowhere/ckpt", "/root"):
        response = client.post(
            reverse("training:score-jobs"),
            {"image_ids": [image.pk], "checkpoint": path},
            content_type="application/json",
        )
        answers.append((response.status_code, response.json()))
    assert answers == [(400, {"checkpoint": [f"checkpoint: {OUTSIDE} (the settings of the GPU workers)"]})] * 3


@pytest.mark.django_db
def test_the_scoring_task_refuses_a_path_outside_the_roots_itself(roots):
    with pytest.raises(scoring.ScoringFailed, match=OUTSIDE):
        scoring.stored_images_score(prompt="x", image_ids=[1], dimensions=["overall"], checkpoint="/etc/passwd")


@pytest.mark.django_db
def test_an_evaluation_with_weights_outside_the_roots_is_refused_and_nothing_is_stored(roots):
    benchmark = EvaluationSet.objects.create(name="ir", kind="imagereward", image_root=str(roots / "images"))
    for weights, aesthetic_clip in (("/etc/passwd", ""), (str(roots / "models" / "mlp.pth"), "/etc/passwd")):
        with pytest.raises(EvaluationError, match=OUTSIDE):
            evaluation_run_create(
                method="aesthetic",
                weights=weights,
                evaluation_set=benchmark,
                options=EvaluationOptions(aesthetic_clip=aesthetic_clip),
                enqueue=False,
            )
    assert not EvaluationRun.objects.exists()


def _tiny_checkpoint(path, seed: int):
    torch.manual_seed(seed)
    save_checkpoint(MPSModel(tiny_config()).eval(), path)
    return path


@pytest.fixture
def empty_cache(monkeypatch):
    monkeypatch.setattr(scoring, "_scorers", scoring.OrderedDict())


@pytest.mark.django_db
def test_the_worker_keeps_a_loaded_model_until_its_file_changes(roots, empty_cache):
    checkpoint = _tiny_checkpoint(roots / "models" / "tiny", seed=0)
    prompt, generator = make_prompt("a red kite over a beach"), make_generator()
    images = [make_image(prompt, generator) for _ in range(2)]
    request = {"prompt": prompt.text, "image_ids": [image.pk for image in images], "dimensions": ["overall"]}
    first = scoring.stored_images_score(**request, checkpoint=str(checkpoint))
    loaded = scoring.cached_scorer(checkpoint.resolve())
    again = scoring.stored_images_score(**request, checkpoint=str(checkpoint))
    assert scoring.cached_scorer(checkpoint.resolve()) is loaded and again == first
    _tiny_checkpoint(checkpoint, seed=1)  # trained further: other weights, a newer modification time
    later = os.stat(checkpoint / "model.safetensors").st_mtime_ns + 10**9
    os.utime(checkpoint / "model.safetensors", ns=(later, later))
    changed = scoring.stored_images_score(**request, checkpoint=str(checkpoint))
    assert scoring.cached_scorer(checkpoint.resolve()) is not loaded
    assert changed["scores"]["overall"] != pytest.approx(first["scores"]["overall"], abs=1e-4)
    assert len(scoring._scorers) == 1  # the old version left


@pytest.mark.django_db
def test_the_cache_holds_at_most_its_size_least_recently_used_first(roots, empty_cache, monkeypatch):
    monkeypatch.setattr(scoring, "SCORER_CACHE_SIZE", 2)
    paths = [_tiny_checkpoint(roots / "models" / f"tiny{seed}", seed=seed).resolve() for seed in range(3)]
    first = scoring.cached_scorer(paths[0])
    scoring.cached_scorer(paths[1])
    assert scoring.cached_scorer(paths[0]) is first  # used again: now the most recent
    scoring.cached_scorer(paths[2])
    assert [key[0] for key in scoring._scorers] == [str(paths[0]), str(paths[2])]
    with pytest.raises(ValueError, match="no checkpoint at"):
        scoring.cached_scorer(roots / "models" / "absent")


@pytest.mark.django_db
def test_a_queued_evaluation_is_checked_against_the_roots_again_on_the_worker(roots, settings, mps_official_path):
    checkpoint = roots / "models" / "published"
    call_command("import_mps_checkpoint", str(mps_official_path), str(checkpoint))
    benchmark = tiny_imagereward_set(roots / "images", label="roots")
    options = EvaluationOptions(dimensions=["overall"], device="cpu")
    run = evaluation_run_create(
        method="mps", weights=str(checkpoint), evaluation_set=benchmark, options=options, enqueue=False
    )
    settings.MODEL_ROOTS = []  # the workers' settings changed after the run was queued
    run = evaluation_run_execute(run_id=run.pk)
    assert run.status == JobStatus.FAILED and OUTSIDE in run.error


@pytest.mark.django_db
def test_untrained_dimensions_are_an_option_of_the_run_wherever_it_is_queued(roots, mps_official_path):
    """The published release was trained on overall only: a run on all four is refused by the MPS scorer
    unless its options allow it, the web's queued run as the commands' (the option is kept in its config)."""
    checkpoint = roots / "models" / "published"
    call_command("import_mps_checkpoint", str(mps_official_path), str(checkpoint))
    benchmark = tiny_imagereward_set(roots / "images", label="untrained")
    runs = {}
    for allowed in (False, True):
        options = EvaluationOptions(dimensions=list(DIMENSIONS), device="cpu", allow_untrained_dimensions=allowed)
        run = evaluation_run_create(
            method="mps", weights=str(checkpoint), evaluation_set=benchmark, options=options, enqueue=False
        )
        assert run.config["allow_untrained_dimensions"] is allowed
        runs[allowed] = evaluation_run_execute(run_id=run.pk)
    assert runs[False].status == JobStatus.FAILED
    assert "trained on overall only, not on aesthetics, detail, alignment" in runs[False].error
    assert runs[True].status == JobStatus.SUCCEEDED
    assert set(runs[True].metrics["dimensions"]) == set(DIMENSIONS)
