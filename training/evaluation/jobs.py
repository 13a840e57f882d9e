"""Evaluation as a job: an EvaluationRun queued from the web and executed on a GPU worker, and the scoring
step that every door shares (`evaluate_mps`, `evaluate_baselines`, the `training.tasks.evaluate_run` task).

torch is imported only inside `evaluation_run_execute` (through `load_method`): the web process creates
runs with this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from annotation.dimensions import DIMENSION_KEYS
from datasets.models import DatasetStatus, DatasetVersion, EvaluationSet
from mhp.jobs import JobFailed, job_enqueue, job_retry, job_run
from mhp.workers import queue_worker_missing
from training.baselines.base import Scorer
from training.baselines.registry import METHODS
from training.baselines.tables import BENCHMARK_DIMENSION
from training.evaluation.run import Benchmark, Progress, check_images, evaluate_scorer, prompt_groups
from training.evaluation.runs import evaluation_run_finish, evaluation_run_progress
from training.evaluation.sources import EXPORT_PREFIX, evaluation_set_benchmark, export_benchmark
from training.model_paths import OutsideModelRoots, model_path_allowed
from training.models import EvaluationRun, TrainingRun
from training.runs import training_export_dir

EVALUATION_TASK = "training.tasks.evaluate_run"


class EvaluationError(ValueError):
    """The evaluation cannot be queued; the message says why."""


@dataclass
class EvaluationOptions:
    """What loads a method besides its weights (the `evaluate_baselines` flags of the same names)."""

    arch: str = ""
    aesthetic_clip: str = ""
    aesthetic_arch: str = ""
    batch_size: int = 16
    device: str = ""


def evaluation_run_score(
    *,
    run: EvaluationRun,
    source: Benchmark,
    scorer: Scorer,
    dimensions: Sequence[str],
    tie_threshold: float | None = None,
    progress: Progress | None = None,
) -> dict:
    """Score `source` with `scorer` into the running `run` and record the result: the one step that the
    commands and the GPU task share. `progress` also hears (done, total) prompts (a command's bar)."""

    def report(done: int, total: int) -> None:
        evaluation_run_progress(run=run, progress=done / total)
        if progress is not None:
            progress(done, total)

    result = evaluate_scorer(source, scorer, dimensions, tie_threshold=tie_threshold, progress=report)
    result.update(method=run.method, checkpoint=run.checkpoint_path, evaluation_run=run.pk)
    evaluation_run_finish(run=run, metrics=result)
    return result


def evaluation_dimensions(method: str, *, pair_set: bool) -> list[str]:
    """MHP pair sets on the four dimensions; public benchmarks on `overall` for a baseline (its one score
    stands for every dimension), on all four for MPS (as `evaluate_mps`)."""
    return list(DIMENSION_KEYS) if pair_set or method == "mps" else [BENCHMARK_DIMENSION]


def evaluation_run_create(
    *,
    method: str,
    weights: str,
    evaluation_set: EvaluationSet | None = None,
    dataset_version: DatasetVersion | None = None,
    training_run: TrainingRun | None = None,
    options: EvaluationOptions | None = None,
    created_by: AbstractBaseUser | None = None,
    enqueue: bool = True,
) -> EvaluationRun:
    """A queued run of `method` (weights at a path the GPU workers share) on an imported benchmark or the
    MHP test split of a frozen dataset version; with `enqueue` it goes to the gpu queue on commit."""
    options = options or EvaluationOptions()
    if enqueue and (missing := queue_worker_missing("gpu", needs_torch=True)):
        raise EvaluationError(f"cannot start the evaluation: {missing}")
    benchmark = _checked_benchmark(evaluation_set, dataset_version)
    _check_weights(method, weights, options)
    config = {
        **options.__dict__,
        "benchmark": benchmark,
        "split": "test",
        "dimensions": evaluation_dimensions(method, pair_set=dataset_version is not None),
    }
    with transaction.atomic():
        run = EvaluationRun(
            method=method,
            checkpoint_path=weights,
            benchmark=benchmark,
            evaluation_set=evaluation_set,
            dataset_version=dataset_version,
            training_run=training_run,
            config=config,
            created_by=created_by,
        )
        run.full_clean()
        run.save()
        if enqueue:
            job_enqueue(EVALUATION_TASK, run.pk)
    return run


def _checked_benchmark(evaluation_set: EvaluationSet | None, version: DatasetVersion | None) -> str:
    if (evaluation_set is None) == (version is None):
        raise EvaluationError("choose one benchmark: an imported evaluation set or a dataset version's test split")
    if version is not None:
        if version.status != DatasetStatus.FROZEN:
            raise EvaluationError(f"dataset version {version.name!r} is {version.status}; freeze it first")
        return version.name
    if not evaluation_set.image_root:
        raise EvaluationError(f"evaluation set {evaluation_set.name!r} was imported without images")
    return evaluation_set.name


def _check_weights(method: str, weights: str, options: EvaluationOptions) -> None:
    if method not in METHODS:
        raise EvaluationError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
    if not weights:
        raise EvaluationError(f"{method}: give the path of its weights")
    try:
        _weights_under_roots(method, weights, options)  # before anything is said about the paths
    except OutsideModelRoots as error:
        raise EvaluationError(str(error)) from None
    if not Path(weights).exists():
        raise EvaluationError(f"{method}: nothing at {weights}")
    if method == "aesthetic" and not (options.aesthetic_clip and Path(options.aesthetic_clip).exists()):
        raise EvaluationError(f"aesthetic: no CLIP ViT-L/14 weights for it at {options.aesthetic_clip!r}")


def _weights_under_roots(method: str, weights: str, options: EvaluationOptions) -> None:
    model_path_allowed(weights, what=method)
    if options.aesthetic_clip:
        model_path_allowed(options.aesthetic_clip, what="aesthetic CLIP")


def evaluation_run_execute(*, run_id: int, progress: Progress | None = None) -> EvaluationRun:
    """Run a queued evaluation (the gpu task's body); a run in any other state is returned as it is, so a
    redelivered task does nothing twice. A failure is recorded on the row with its message."""
    from training.baselines.registry import load_method  # torch: GPU workers only
    from training.mps import CheckpointError

    def evaluate(run: EvaluationRun) -> dict:
        options = EvaluationOptions(**{key: run.config.get(key) or value for key, value in _defaults().items()})
        try:
            source = _source(run)
            check_images(source.image_root, prompt_groups(source))  # before a model loads
            _weights_under_roots(run.method, run.checkpoint_path, options)  # a run queued before the roots changed
            scorer = load_method(
                run.method,
                run.checkpoint_path,
                architecture=options.arch or None,
                aesthetic_clip=options.aesthetic_clip or None,
                aesthetic_architecture=options.aesthetic_arch or None,
                device=options.device or None,
                batch_size=options.batch_size,
            )
            result = evaluation_run_score(
                run=run, source=source, scorer=scorer, dimensions=run.config["dimensions"], progress=progress
            )
        except (CheckpointError, ValueError, OSError, RuntimeError) as error:
            raise JobFailed(f"{type(error).__name__}: {error}") from error
        return {"metrics": result}

    runs = EvaluationRun.objects.select_related("evaluation_set", "dataset_version")
    return job_run(runs, run_id, evaluate)


def evaluation_run_retry(*, run_id: int) -> EvaluationRun:
    return job_retry(EvaluationRun.objects.all(), run_id, EVALUATION_TASK)


def _defaults() -> dict:
    return EvaluationOptions().__dict__


def _source(run: EvaluationRun) -> Benchmark:
    dimensions = run.config["dimensions"]
    if run.evaluation_set is not None:
        return evaluation_set_benchmark(run.evaluation_set.name, dimensions)[0]
    export_dir = training_export_dir(version=run.dataset_version)
    source = export_benchmark(f"{EXPORT_PREFIX}{export_dir}", dimensions, images=Path(settings.MEDIA_ROOT))
    source.name = run.config["benchmark"]  # the version's name heads its column in the results tables
    return source
