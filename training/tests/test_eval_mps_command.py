"""`evaluate_mps`: the tiny fixture checkpoint on hand-made benchmarks, checked against the protocols
applied to the scores `score_images` gives directly."""

import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from mhp.jobs import JobStatus
from training.evaluation.jobs import EvaluationOptions, evaluation_run_create
from training.evaluation.protocols import LabelledPair, RankedItem, imagereward_accuracy, pair_accuracy
from training.models import EvaluationRun
from training.mps import score_images
from training.tests.benchmark_sets import IMAGEREWARD_ITEMS, placeholders, tiny_imagereward_set


@pytest.fixture(autouse=True)
def _weights_under_a_model_root(settings, tmp_path_factory):
    """Evaluation opens weights only under ARTIFACTS_ROOT or MODEL_ROOTS: the tests' all lie in pytest's temp folder."""
    settings.MODEL_ROOTS = [tmp_path_factory.getbasetemp()]


@pytest.fixture
def imagereward_set(tmp_path):
    return tiny_imagereward_set(tmp_path / "images", label="eval")


def _direct_scores(checkpoint, root: Path, groups: dict[str, list[str]], dimension: str) -> dict[str, float]:
    scores = {}
    for prompt, paths in groups.items():
        result = score_images(checkpoint, prompt, [root / path for path in paths], [dimension])
        scores.update(zip(paths, result["scores"][dimension], strict=True))
    return scores


@pytest.mark.django_db
def test_imagereward_set_matches_the_protocol_on_direct_scores(project_checkpoint, imagereward_set, capsys):
    call_command(
        "evaluate_mps", checkpoint=str(project_checkpoint), benchmark="ir-tiny", dimension=["overall", "detail"],
        json=True, verbosity=0,
    )  # fmt: skip
    printed = json.loads(capsys.readouterr().out)
    assert (printed["prompts"], printed["images"]) == (2, 5)
    root = Path(imagereward_set.image_root)
    items = [RankedItem(item["prompt"], item["generations"], item["ranking"]) for item in IMAGEREWARD_ITEMS]
    groups = {item["prompt"]: item["generations"] for item in IMAGEREWARD_ITEMS}
    for dimension in ("overall", "detail"):
        expected = imagereward_accuracy(items, _direct_scores(project_checkpoint, root, groups, dimension))
        assert printed["dimensions"][dimension]["pairs"] == expected.pairs == 3  # p1: 2 of 3 (one tie), p2: 1
        assert printed["dimensions"][dimension]["accuracy"] == pytest.approx(expected.accuracy)
    # The fixture's scores: p1/a 1.70 above p1/b -1.91 and p1/c -0.39 (both right), p2/a 0.09 above the
    # better-ranked p2/b -2.93 (wrong).
    assert printed["dimensions"]["overall"]["accuracy"] == pytest.approx(2 / 3)
    run = EvaluationRun.objects.get(pk=printed["evaluation_run"])
    assert (run.method, run.status, run.benchmark, run.progress) == ("mps", JobStatus.SUCCEEDED, "ir-tiny", 1.0)
    assert run.evaluation_set == imagereward_set and run.checkpoint_path == str(project_checkpoint)
    assert run.metrics["dimensions"] == printed["dimensions"]
    call_command("evaluate_mps", checkpoint=str(project_checkpoint), benchmark="ir-tiny", verbosity=0)
    table = capsys.readouterr().out
    assert all(dimension in table for dimension in ("aesthetics", "detail", "alignment", "overall"))


def _export_dir(tmp_path: Path) -> Path:
    records = []
    for number, split in enumerate(["val", "val", "test", "test"], start=1):
        label = [0.5, 0.5] if number == 1 else [1.0, 0.0]
        records.append({"pair_id": number, "split": split, "prompt": f"a small house number {number}",
                        "image_first": f"images/{number}a.png", "image_second": f"images/{number}b.png",
                        "labels": {"overall": label, "aesthetics": [0.0, 1.0]}})  # fmt: skip
    export = tmp_path / "export"
    export.mkdir()
    (export / "pairs.jsonl").write_text("".join(json.dumps(record) + "\n" for record in records))
    return export


@pytest.mark.django_db
def test_export_pairs_match_the_protocol_on_direct_scores(project_checkpoint, tmp_path, capsys):
    export, media = _export_dir(tmp_path), tmp_path / "media"
    placeholders(media, [f"images/{n}{side}.png" for n in range(1, 5) for side in "ab"], label="eval")
    call_command(
        "evaluate_mps", checkpoint=str(project_checkpoint), benchmark=f"pairs:{export}", images=str(media),
        dimension=["overall"], json=True, verbosity=0,
    )  # fmt: skip
    printed = json.loads(capsys.readouterr().out)
    assert (printed["prompts"], printed["images"]) == (4, 8)  # the val pairs are scored to tune the threshold
    test_pairs = [LabelledPair(f"images/{n}a.png", f"images/{n}b.png", [1.0, 0.0], f"a small house number {n}")
                  for n in (3, 4)]  # fmt: skip
    groups = {pair.prompt: [pair.image_a, pair.image_b] for pair in test_pairs}
    expected = pair_accuracy(test_pairs, _direct_scores(project_checkpoint, media, groups, "overall"))
    overall = printed["dimensions"]["overall"]
    assert (overall["pairs"], overall["accuracy"]) == (2, pytest.approx(expected.accuracy))
    assert overall["tie_threshold_source"] == "tuned on 2 validation pairs"
    run = EvaluationRun.objects.get(pk=printed["evaluation_run"])
    assert run.status == JobStatus.SUCCEEDED and run.config["benchmark"] == f"pairs:{export}"


@pytest.mark.django_db
def test_failures_are_command_errors_and_a_started_run_is_marked_failed(project_checkpoint, imagereward_set, tmp_path):
    checkpoint = str(project_checkpoint)
    with pytest.raises(CommandError, match="no evaluation set named 'nope'"):
        call_command("evaluate_mps", checkpoint=checkpoint, benchmark="nope", verbosity=0)
    with pytest.raises(CommandError, match="mps: nothing at"):
        call_command("evaluate_mps", checkpoint=str(tmp_path / "none"), benchmark="ir-tiny", verbosity=0)
    with pytest.raises(CommandError, match=r"no such export file: .*/none$"):
        call_command("evaluate_mps", checkpoint=checkpoint, benchmark=f"pairs:{tmp_path / 'none'}", verbosity=0)
    with pytest.raises(CommandError, match=r"^the tie threshold is a probability gap in 0-1, got 1.5$"):
        call_command("evaluate_mps", checkpoint=checkpoint, benchmark="ir-tiny", tie_threshold=1.5, verbosity=0)
    assert not EvaluationRun.objects.exists()  # refused before a run was recorded
    (Path(imagereward_set.image_root) / "p2" / "a.png").unlink()
    with pytest.raises(CommandError, match=r"1 images are missing under .*images: p2/a.png"):
        call_command("evaluate_mps", checkpoint=checkpoint, benchmark="ir-tiny", verbosity=0)
    run = EvaluationRun.objects.get()
    assert run.status == JobStatus.FAILED and "p2/a.png" in run.error and run.finished_at is not None


@pytest.mark.django_db
def test_the_command_and_the_gpu_task_record_the_same_run(
    project_checkpoint, tmp_path, capsys, django_capture_on_commit_callbacks
):
    export, media = _export_dir(tmp_path), tmp_path / "media"
    placeholders(media, [f"images/{n}{side}.png" for n in range(1, 5) for side in "ab"], label="eval")
    call_command("evaluate_mps", checkpoint=str(project_checkpoint), benchmark=f"pairs:{export}", images=str(media),
                 dimension=["overall", "aesthetics"], device="cpu", verbosity=0)  # fmt: skip
    options = EvaluationOptions(images=str(media), dimensions=["overall", "aesthetics"], device="cpu")
    with django_capture_on_commit_callbacks(execute=True):  # Celery is eager here: the task runs on commit
        queued = evaluation_run_create(method="mps", weights=str(project_checkpoint), export=str(export),
                                       options=options)  # fmt: skip
    by_command, by_task = EvaluationRun.objects.order_by("id")
    assert by_task.pk == queued.pk and by_task.status == by_command.status == JobStatus.SUCCEEDED
    fields = ("method", "benchmark", "checkpoint_path", "config", "progress", "evaluation_set", "dataset_version")
    assert [getattr(by_task, name) for name in fields] == [getattr(by_command, name) for name in fields]
    assert by_task.benchmark == f"pairs:{export}"[-EvaluationRun._meta.get_field("benchmark").max_length :]
    assert {**by_task.metrics, "evaluation_run": None} == {**by_command.metrics, "evaluation_run": None}
    assert sorted(by_task.metrics["dimensions"]) == ["aesthetics", "overall"]


def _fail_on_the_second_prompt(monkeypatch, error: BaseException) -> None:
    from training.baselines.mps import MPSBaseline

    score_dimensions, calls = MPSBaseline.score_dimensions, []

    def failing(self, *args, **kwargs):
        calls.append(args)
        if len(calls) == 2:
            raise error
        return score_dimensions(self, *args, **kwargs)

    monkeypatch.setattr(MPSBaseline, "score_dimensions", failing)


@pytest.mark.django_db
def test_an_error_inside_scoring_leaves_the_run_failed_with_its_message(
    project_checkpoint, imagereward_set, monkeypatch
):
    _fail_on_the_second_prompt(monkeypatch, RuntimeError("CUDA out of memory"))
    with pytest.raises(CommandError, match=r"^RuntimeError: CUDA out of memory$"):
        call_command("evaluate_mps", checkpoint=str(project_checkpoint), benchmark="ir-tiny", verbosity=0)
    run = EvaluationRun.objects.get()
    assert (run.status, run.error, run.progress) == (JobStatus.FAILED, "RuntimeError: CUDA out of memory", 0.5)
    assert run.finished_at is not None and run.metrics == {}


@pytest.mark.django_db
def test_ctrl_c_inside_scoring_leaves_the_run_failed_and_stops_the_command(
    project_checkpoint, imagereward_set, monkeypatch
):
    _fail_on_the_second_prompt(monkeypatch, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        call_command("evaluate_mps", checkpoint=str(project_checkpoint), benchmark="ir-tiny", verbosity=0)
    run = EvaluationRun.objects.get()
    assert (run.status, run.error) == (JobStatus.FAILED, "interrupted (the process was stopped); start the job again")
