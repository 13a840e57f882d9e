"""Evaluation as a job, the same for every door: `evaluation_run_create` (or `generator_ranking_create`)
records a queued EvaluationRun, refused with the reason and storing nothing when it could not run, and
`evaluation_run_execute` runs it through mhp.jobs.job_run. The gpu task `training.tasks.evaluate_run` and the
commands `evaluate_mps`, `evaluate_baselines` and `rank_generators` (which create with enqueue=False and
execute here, with a progress bar) call these same functions.

torch is imported only inside `evaluation_run_execute` (through `load_method`): the web process creates
runs with this module.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from annotation.dimensions import DIMENSION_KEYS
from datasets.models import DatasetStatus, DatasetVersion, EvaluationSet
from mhp.jobs import JobFailed, job_enqueue, job_progress, job_retry, job_run
from mhp.workers import queue_worker_missing
from training.baselines.base import Scorer
from training.baselines.generator_ranking import rank_generators
from training.baselines.registry import METHODS
from training.baselines.tables import BENCHMARK_DIMENSION, GENERATOR_RANKING
from training.evaluation.metrics import tie_threshold_checked
from training.evaluation.run import Benchmark, Progress, check_images, evaluate_scorer, prompt_groups
from training.evaluation.sources import (
    EXPORT_PREFIX,
    evaluation_set_benchmark,
    evaluation_set_target,
    export_benchmark,
)
from training.model_paths import OutsideModelRoots, model_path_allowed
from training.models import EvaluationRun, TrainingRun
from training.runs import training_export_dir

EVALUATION_TASK = "training.tasks.evaluate_run"
BENCHMARK_FIELD_LENGTH = EvaluationRun._meta.get_field("benchmark").max_length
PROGRESS_STEP = 0.01  # write progress to the row at most once per percent


class EvaluationError(ValueError):
    """The evaluation cannot be queued; the message says why."""


@dataclass
class EvaluationOptions:
    """How a run loads its method and reads its benchmark (the command flags of the same names). Kept in
    the run's config, so whoever executes the run needs nothing else."""

    arch: str = ""
    aesthetic_clip: str = ""
    aesthetic_arch: str = ""
    batch_size: int = 16
    device: str = ""
    images: str = ""  # image root of an export (default MEDIA_ROOT), or in place of an imported set's own
    split: str = "test"  # of an export; a dataset version is evaluated on its test split
    tie_threshold: float | None = None  # pair sets; None: tuned on the export's val split
    dimensions: list[str] | None = None  # None: `evaluation_dimensions`
    allow_untrained_dimensions: bool = False  # MPS: score dimensions its checkpoint was not trained on

    @classmethod
    def from_config(cls, config: dict) -> EvaluationOptions:
        names = {field.name for field in fields(cls)}
        return cls(**{key: value for key, value in config.items() if key in names and value is not None})


def evaluation_dimensions(method: str, *, pair_set: bool) -> list[str]:
    """MHP pair sets on the four dimensions; public benchmarks on `overall` for a baseline (its one score
    stands for every dimension), on all four for MPS (as `evaluate_mps`)."""
    return list(DIMENSION_KEYS) if pair_set or method == "mps" else [BENCHMARK_DIMENSION]


def evaluation_target(spec: str) -> dict:
    """`evaluation_run_create`'s benchmark from a command's NAME: `pairs:EXPORT_DIR` or an imported set."""
    if spec.startswith(EXPORT_PREFIX):
        return {"export": spec.removeprefix(EXPORT_PREFIX)}
    try:
        return {"evaluation_set": evaluation_set_target(spec)}
    except ValueError as error:
        raise EvaluationError(str(error)) from None


def evaluation_run_create(
    *,
    method: str,
    weights: str,
    evaluation_set: EvaluationSet | None = None,
    dataset_version: DatasetVersion | None = None,
    export: str = "",
    training_run: TrainingRun | None = None,
    options: EvaluationOptions | None = None,
    created_by: AbstractBaseUser | None = None,
    enqueue: bool = True,
) -> EvaluationRun:
    """A queued run of `method` (weights at a path the GPU workers share) on one benchmark: an imported
    evaluation set, the MHP test split of a frozen dataset version, or the pairs of an export folder (or
    its pairs.jsonl). With `enqueue` it goes to the gpu queue on commit; a command executes it itself."""
    _check_gpu_worker(enqueue)
    options = options or EvaluationOptions()
    options = replace(options, tie_threshold=_checked(tie_threshold_checked, options.tie_threshold))
    evaluation_weights_check(method, weights, options)
    dimensions = options.dimensions or evaluation_dimensions(method, pair_set=evaluation_set is None)
    benchmark = _checked_benchmark(evaluation_set, dataset_version, export, options, dimensions)
    config = {**asdict(options), "benchmark": benchmark, "dimensions": dimensions}
    if export:
        config["export"] = export
    return _queued_run(
        method=method,
        checkpoint_path=weights,
        benchmark=benchmark,
        evaluation_set=evaluation_set,
        dataset_version=dataset_version,
        training_run=training_run,
        config=config,
        created_by=created_by,
        enqueue=enqueue,
    )


def generator_ranking_create(
    *,
    weights: str,
    generators: Sequence[str] | None = None,
    prompts: int | None = None,
    options: EvaluationOptions | None = None,
    created_by: AbstractBaseUser | None = None,
    enqueue: bool = True,
) -> EvaluationRun:
    """A queued ranking of the generators by MPS (`training.baselines.generator_ranking`): on the first
    `prompts` prompts that every one of `generators` (default all) drew, per dimension."""
    _check_gpu_worker(enqueue)
    options = options or EvaluationOptions()
    evaluation_weights_check("mps", weights, options)
    config = {**asdict(options), "benchmark": GENERATOR_RANKING, "kind": GENERATOR_RANKING}
    config |= {"dimensions": options.dimensions or list(DIMENSION_KEYS), "generators": generators, "prompts": prompts}
    return _queued_run(method="mps", checkpoint_path=weights, benchmark=GENERATOR_RANKING, config=config,
                       created_by=created_by, enqueue=enqueue)  # fmt: skip


def _queued_run(*, benchmark: str, enqueue: bool, **fields) -> EvaluationRun:
    """A long benchmark (``pairs:/a/long/path``) keeps its tail in the column; the config holds all of it."""
    with transaction.atomic():
        run = EvaluationRun(benchmark=benchmark[-BENCHMARK_FIELD_LENGTH:], **fields)
        run.full_clean()
        run.save()
        if enqueue:
            job_enqueue(EVALUATION_TASK, run.pk)
    return run


def _check_gpu_worker(enqueue: bool) -> None:
    """A run queued where no GPU worker would take it would wait for ever: refused, saying what to start."""
    if enqueue and (missing := queue_worker_missing("gpu", needs_torch=True)):
        raise EvaluationError(f"cannot start the evaluation: {missing}")


def _checked(check: Callable, *args):
    try:
        return check(*args)
    except ValueError as error:
        raise EvaluationError(str(error)) from None


def _checked_benchmark(
    evaluation_set: EvaluationSet | None,
    version: DatasetVersion | None,
    export: str,
    options: EvaluationOptions,
    dimensions: Sequence[str],
) -> str:
    """The run's benchmark name; an export's pairs are read now, so a bad file is refused before any row."""
    if sum((evaluation_set is not None, version is not None, bool(export))) != 1:
        raise EvaluationError("choose one benchmark: an imported evaluation set, a dataset version's test split "
                              "or an export's pairs")  # fmt: skip
    if version is not None:
        if version.status != DatasetStatus.FROZEN:
            raise EvaluationError(f"dataset version {version.name!r} is {version.status}; freeze it first")
        return version.name
    if evaluation_set is not None:
        if not (evaluation_set.image_root or options.images):
            raise EvaluationError(
                f"evaluation set {evaluation_set.name!r} was imported without images; give an images folder"
            )
        return evaluation_set.name
    _checked(_export_source, export, f"{EXPORT_PREFIX}{export}", options, dimensions)
    return f"{EXPORT_PREFIX}{export}"


def evaluation_weights_check(method: str, weights: str, options: EvaluationOptions) -> None:
    """The method is known and its weights are where the run will look (before any row or model)."""
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
    """Scoring and evaluation open weights only under ARTIFACTS_ROOT or MODEL_ROOTS (training.model_paths)."""
    model_path_allowed(weights, what=method)
    if options.aesthetic_clip:
        model_path_allowed(options.aesthetic_clip, what="aesthetic CLIP")


def evaluation_images_check(*, options: EvaluationOptions, dimensions: Sequence[str], **target) -> None:
    """Every image of the benchmark (`evaluation_run_create`'s target) is there: a command that runs several
    evaluations checks them all before the first model loads."""

    def check() -> None:
        source = _target_source(target, options, dimensions)
        check_images(source.image_root, prompt_groups(source))

    _checked(check)


class LastScorer:
    """The last scorer loaded, for the next run of the same method with the same weights and options: a
    command evaluating one method on several benchmarks loads it once. One at a time, so memory holds one."""

    def __init__(self) -> None:
        self.key: Hashable = None
        self.scorer: Scorer | None = None

    def get(self, key: Hashable, load: Callable[[], Scorer]) -> Scorer:
        if key != self.key:
            self.key, self.scorer = None, None  # the previous model is freed before the next one loads
            self.scorer, self.key = load(), key
        return self.scorer


def evaluation_run_execute(
    *, run_id: int, progress: Progress | None = None, scorers: LastScorer | None = None
) -> EvaluationRun:
    """Run a queued evaluation or generator ranking: the gpu task's body, and the commands'. `progress` also
    hears (done, total) prompts (a command's bar). A run in any other state is returned as it is, so a
    redelivered task does nothing twice; any failure, Ctrl-C included, ends the run failed with its message."""
    from training.mps import CheckpointError  # torch: GPU workers and commands only

    def execute(run: EvaluationRun) -> dict:
        options = EvaluationOptions.from_config(run.config)
        report = _progress(run, progress)
        scorer = _scorer_loader(run, options, scorers or LastScorer())
        try:
            _weights_under_roots(run.method, run.checkpoint_path, options)  # a run queued before the roots changed
            if run.config.get("kind") == GENERATOR_RANKING:
                result = rank_generators(scorer(), options.dimensions, generators=run.config["generators"],
                                         prompts=run.config["prompts"], progress=report)  # fmt: skip
            else:
                source = _target_source(_target(run), options, options.dimensions)
                check_images(source.image_root, prompt_groups(source))  # before a model loads
                result = evaluate_scorer(source, scorer(), options.dimensions, tie_threshold=options.tie_threshold,
                                         progress=report)  # fmt: skip
        except (CheckpointError, ValueError, OSError, RuntimeError) as error:
            raise JobFailed(f"{type(error).__name__}: {error}") from error
        result.update(method=run.method, checkpoint=run.checkpoint_path, evaluation_run=run.pk)
        return {"metrics": result}

    runs = EvaluationRun.objects.select_related("evaluation_set", "dataset_version")
    return job_run(runs, run_id, execute)


def evaluation_run_retry(*, run_id: int) -> EvaluationRun:
    return job_retry(EvaluationRun.objects.all(), run_id, EVALUATION_TASK)


def evaluation_result(run: EvaluationRun) -> dict:
    """A finished run's metrics with its dimensions in the order it evaluated them (jsonb keeps no key order)."""
    metrics = dict(run.metrics)
    if isinstance(metrics.get("dimensions"), dict):
        metrics["dimensions"] = {key: metrics["dimensions"][key] for key in run.config["dimensions"]}
    return metrics


def _progress(run: EvaluationRun, progress: Progress | None) -> Progress:
    def report(done: int, total: int) -> None:
        if done / total - run.progress >= PROGRESS_STEP or done == total:
            job_progress(run, done / total)
        if progress is not None:
            progress(done, total)

    return report


def _scorer_loader(run: EvaluationRun, options: EvaluationOptions, scorers: LastScorer) -> Callable[[], Scorer]:
    from training.baselines.registry import load_method  # torch: GPU workers and commands only

    loading = {"architecture": options.arch or None, "aesthetic_clip": options.aesthetic_clip or None,
               "aesthetic_architecture": options.aesthetic_arch or None, "device": options.device or None,
               "batch_size": options.batch_size,
               "allow_untrained_dimensions": options.allow_untrained_dimensions}  # fmt: skip
    key = (run.method, run.checkpoint_path, *loading.values())
    return lambda: scorers.get(key, lambda: load_method(run.method, run.checkpoint_path, **loading))


def _target(run: EvaluationRun) -> dict:
    if run.evaluation_set is not None:
        return {"evaluation_set": run.evaluation_set}
    if run.dataset_version is not None:
        return {"dataset_version": run.dataset_version}
    return {"export": run.config["export"]}


def _target_source(target: dict, options: EvaluationOptions, dimensions: Sequence[str]) -> Benchmark:
    images = Path(options.images) if options.images else None
    if target.get("evaluation_set") is not None:
        return evaluation_set_benchmark(target["evaluation_set"], dimensions, images=images)
    if target.get("dataset_version") is not None:
        version = target["dataset_version"]
        # The version's name heads its column in the results tables.
        return _export_source(str(training_export_dir(version=version)), version.name, options, dimensions)
    return _export_source(target["export"], f"{EXPORT_PREFIX}{target['export']}", options, dimensions)


def _export_source(export: str, name: str, options: EvaluationOptions, dimensions: Sequence[str]) -> Benchmark:
    images = Path(options.images or settings.MEDIA_ROOT)
    return export_benchmark(Path(export), dimensions, name=name, images=images, split=options.split,
                            tune_on_val=options.tie_threshold is None)  # fmt: skip
