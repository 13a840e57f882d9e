"""`rank_generators`: three generators' placeholder images scored with the tiny fixture checkpoint; means
and ranks checked against `score_images` called directly."""

from __future__ import annotations

import json
import statistics

import pytest
from django.core.management import CommandError, call_command

from annotation.models import Image
from annotation.tests.factories import make_generator, make_image, make_prompt
from mhp.jobs import JobStatus
from training.baselines.generator_ranking import competition_ranks, format_ranking, rank_table
from training.evaluation.jobs import EvaluationOptions, generator_ranking_create
from training.models import EvaluationRun
from training.mps import score_images


@pytest.fixture(autouse=True)
def _weights_under_a_model_root(settings, tmp_path_factory):
    """Evaluation opens weights only under ARTIFACTS_ROOT or MODEL_ROOTS: the tests' all lie in pytest's temp folder."""
    settings.MODEL_ROOTS = [tmp_path_factory.getbasetemp()]


@pytest.fixture
def gallery(settings, tmp_path):
    """Prompts 1-2: images of all three generators (two each from "alpha"); prompt 3: "gamma" has none."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    alpha, beta, gamma = (make_generator(name) for name in ("alpha", "beta", "gamma"))
    prompts = [make_prompt(f"a lighthouse on a cliff, study {n}") for n in (1, 2, 3)]
    for prompt in prompts[:2]:
        for generator in (alpha, alpha, beta, gamma):
            make_image(prompt, generator)
    make_image(prompts[2], alpha)
    make_image(prompts[2], beta)
    return prompts


def _direct_means(checkpoint, prompts, dimensions) -> dict[str, dict[str, float]]:
    per_generator: dict[str, dict[str, list[float]]] = {}
    for prompt in prompts:
        rows = list(Image.objects.filter(prompt=prompt).order_by("id"))
        result = score_images(checkpoint, prompt.text, [row.file.path for row in rows], dimensions)
        for index, row in enumerate(rows):
            for dimension in dimensions:
                per_generator.setdefault(row.generator.name, {}).setdefault(dimension, []).append(
                    result["scores"][dimension][index]
                )
    return {name: {d: statistics.fmean(values) for d, values in dims.items()} for name, dims in per_generator.items()}


@pytest.mark.django_db
def test_means_are_direct_scores_on_the_shared_prompts_and_ranks_are_ordered(project_checkpoint, gallery, capsys):
    dimensions = ["overall", "aesthetics"]
    call_command("rank_generators", checkpoint=str(project_checkpoint), dimension=dimensions, json=True, verbosity=0)
    result = json.loads(capsys.readouterr().out)
    assert (result["prompts"], result["images"]) == (2, 8)  # prompt 3 lacks "gamma": not in the common set
    expected = _direct_means(project_checkpoint, gallery[:2], dimensions)
    rows = {row["name"]: row for row in result["generators"]}
    assert sorted(rows) == ["alpha", "beta", "gamma"]
    assert [rows[name]["images"] for name in ("alpha", "beta", "gamma")] == [4, 2, 2]
    for name, means in expected.items():
        for dimension in dimensions:
            assert rows[name]["mean"][dimension] == pytest.approx(means[dimension], abs=1e-5)
    for dimension in dimensions:
        by_mean = sorted(expected, key=lambda name: -expected[name][dimension])
        assert [rows[name]["rank"][dimension] for name in by_mean] == [1, 2, 3]
    assert [row["rank"]["overall"] for row in result["generators"]] == [1, 2, 3]  # listed by overall rank
    run = EvaluationRun.objects.get(pk=result["evaluation_run"])
    assert (run.method, run.benchmark, run.status) == ("mps", "generator-ranking", JobStatus.SUCCEEDED)
    assert run.metrics["generators"] == result["generators"]


@pytest.mark.django_db
def test_prompt_limit_generator_choice_and_table(project_checkpoint, gallery, capsys):
    call_command("rank_generators", "--prompts=1", "--generator=alpha", "--generator=beta", "--dimension=detail",
                 f"--checkpoint={project_checkpoint}", "--verbosity=0")  # fmt: skip
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("2 generators on 1 prompts, 3 images")
    assert lines[1].split() == ["generator", "images", "detail"]
    expected = _direct_means(project_checkpoint, gallery[:1], ["detail"])
    best = max(["alpha", "beta"], key=lambda name: expected[name]["detail"])
    assert lines[3].split()[0] == best and lines[3].split()[-1] == "(1)"
    assert lines[3].split()[2] == f"{expected[best]['detail']:.4f}"


@pytest.mark.django_db
def test_refusals(project_checkpoint, gallery, tmp_path, mps_official_path):
    with pytest.raises(CommandError, match="no generator named 'delta'"):
        call_command("rank_generators", checkpoint=str(project_checkpoint), generator=["alpha", "delta"], verbosity=0)
    with pytest.raises(CommandError, match="at least two generators"):
        call_command("rank_generators", checkpoint=str(project_checkpoint), generator=["alpha"], verbosity=0)
    with pytest.raises(CommandError, match="mps: nothing at"):
        call_command("rank_generators", checkpoint=str(tmp_path / "none"), verbosity=0)
    published = tmp_path / "published"  # as released: overall only, while ranking defaults to all four
    call_command("import_mps_checkpoint", str(mps_official_path), str(published))
    with pytest.raises(CommandError, match="trained on overall only, not on aesthetics, detail, alignment"):
        call_command("rank_generators", checkpoint=str(published), verbosity=0)
    assert EvaluationRun.objects.filter(status=JobStatus.SUCCEEDED).count() == 0


def test_rank_table_and_ties():
    assert competition_ranks([0.5, 2.0, 0.5, -1.0]) == [2, 1, 2, 4]
    rows = rank_table({"b": {"overall": [1.0, 3.0]}, "a": {"overall": [2.0]}, "c": {"overall": [-1.0]}}, ["overall"])
    assert [(row["name"], row["rank"]["overall"], row["mean"]["overall"]) for row in rows] == [
        ("a", 1, 2.0), ("b", 1, 2.0), ("c", 3, -1.0)
    ]  # fmt: skip
    text = format_ranking({"dimensions": ["overall"], "generators": rows})
    assert text.splitlines()[2].split() == ["a", "1", "2.0000", "(1)"]


@pytest.mark.django_db
def test_the_command_and_the_gpu_task_record_the_same_ranking(
    project_checkpoint, gallery, capsys, django_capture_on_commit_callbacks
):
    call_command("rank_generators", checkpoint=str(project_checkpoint), dimension=["detail"],
                 generator=["alpha", "beta"], device="cpu", verbosity=0)  # fmt: skip
    options = EvaluationOptions(dimensions=["detail"], device="cpu")
    with django_capture_on_commit_callbacks(execute=True):  # Celery is eager here: the task runs on commit
        generator_ranking_create(weights=str(project_checkpoint), generators=["alpha", "beta"], options=options)
    by_command, by_task = EvaluationRun.objects.order_by("id")
    fields = ("status", "method", "benchmark", "checkpoint_path", "config", "progress")
    assert [getattr(by_task, name) for name in fields] == [getattr(by_command, name) for name in fields]
    assert (by_task.status, by_task.benchmark) == (JobStatus.SUCCEEDED, "generator-ranking")
    assert {**by_task.metrics, "evaluation_run": None} == {**by_command.metrics, "evaluation_run": None}
    assert sorted(row["name"] for row in by_task.metrics["generators"]) == ["alpha", "beta"]
    assert by_task.metrics["prompts"] == 3  # prompt 3 counts: "gamma" is not ranked
