"""Pair scoring as a job: an MPS checkpoint's P(first image preferred) on the four dimensions for every pair
the queue or the disagreement checks need, stored as PairScore rows.

`pair_scoring_run_create` records a queued PairScoringRun, refused with the reason and storing nothing when
it could not run (the checkpoint checks and the gpu-worker check of evaluations); `pair_scoring_run_execute`
runs it through mhp.jobs.job_run. The gpu task `training.tasks.score_pairs_run` and the command `score_pairs`
call these same functions. `pair_scoring_run_cancel` stops a queued run before it starts and a running one
after its current block (its scores so far stay, under a cancelled run that nothing uses). With
`QUEUE_ORDER=guided` a run that succeeds queues the labeling queue's guided order by its own scores.

The probabilities are score_images' own: the same checkpoint loader (`training.scoring.cached_scorer`), the
same preprocessing, the same text and cross model calls, and P(first) = preference_matrix([s1, s2])[0][1].
Only the batching differs, so that each image's vision tower runs once whatever pairs it is in, each
prompt's text tower once, and the four dimensions share both. torch is imported only inside the execution:
the web process creates runs with this module.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from PIL import Image as PILImage

from annotation.dimensions import DIMENSION_KEYS
from annotation.labeling.disagreements import contradicting_annotators_flag, disagreement_candidates
from annotation.labeling.queue_order import queue_order_request
from annotation.models import Image, Pair
from mhp.jobs import JobFailed, JobStatus, job_enqueue, job_run
from mhp.progress import Progress
from mhp.workers import queue_worker_missing
from training.evaluation.jobs import EvaluationError, EvaluationOptions, evaluation_weights_check
from training.model_paths import OutsideModelRoots, model_path_allowed
from training.models import PairScore, PairScoringRun, TrainingRun

PAIR_SCORING_TASK = "training.tasks.score_pairs_run"
BATCH_SIZE = 32  # images per vision-tower batch
MAX_BATCH_SIZE = 4096
PAIRS_PER_INSERT = 2000
PROGRESS_STEP = 0.01  # write progress to the row at most once per percent
CANCEL_CHECK_SECONDS = 1.0
UNREADABLE_LISTED = 20
DECODE_THREADS = 8  # image decoding and resizing release the GIL


class PairScoringError(ValueError):
    """The pair scoring run cannot be queued; the message says why."""


def pair_scoring_run_create(
    *,
    checkpoint: str = "",
    training_run: TrainingRun | None = None,
    batch_size: int = BATCH_SIZE,
    allow_untrained_dimensions: bool = False,
    created_by: AbstractBaseUser | None = None,
    enqueue: bool = True,
) -> PairScoringRun:
    """A queued run of one checkpoint: a path, or a succeeded training run's best model. A path that is some
    run's best model is linked to that run (its dataset version is then left out of the disagreements)."""
    if enqueue and (missing := queue_worker_missing("gpu", needs_torch=True)):
        raise PairScoringError(f"cannot start the pair scoring: {missing}")
    if not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise PairScoringError(f"the batch size must be between 1 and {MAX_BATCH_SIZE}")
    checkpoint, training_run = _checkpoint_and_run(checkpoint.strip(), training_run)
    try:
        evaluation_weights_check("mps", checkpoint, EvaluationOptions())
    except EvaluationError as error:
        raise PairScoringError(str(error)) from None
    training_run = training_run or TrainingRun.objects.filter(best_checkpoint=checkpoint).order_by("-id").first()
    config = {"batch_size": batch_size, "allow_untrained_dimensions": allow_untrained_dimensions}
    with transaction.atomic():
        run = PairScoringRun(
            checkpoint_path=checkpoint, training_run=training_run, config=config, created_by=created_by
        )
        run.full_clean()
        run.save()
        if enqueue:
            job_enqueue(PAIR_SCORING_TASK, run.pk)
    return run


def _checkpoint_and_run(checkpoint: str, training_run: TrainingRun | None) -> tuple[str, TrainingRun | None]:
    if bool(checkpoint) == (training_run is not None):
        raise PairScoringError("give one checkpoint: a path, or a succeeded training run")
    if training_run is not None:
        if training_run.status != JobStatus.SUCCEEDED or not training_run.best_checkpoint:
            raise PairScoringError(f"training run {training_run.name} is {training_run.status} with no best model")
        return training_run.best_checkpoint, training_run
    return checkpoint, None


def pair_scoring_run_execute(*, run_id: int, progress: Progress | None = None) -> PairScoringRun:
    """Run a queued pair scoring (the gpu task's body, and the command's); `progress` also hears (done, total)
    pairs. A run in any other state is returned as it is; any failure ends it failed with its message."""

    def execute(run: PairScoringRun) -> dict:
        started, tally, cancelled = time.monotonic(), _Tally(), _cancel_check(run)

        def stopped() -> dict:
            metrics = tally.metrics(time.monotonic() - started, [])
            return {"status": JobStatus.CANCELLED, "pairs_scored": tally.pairs_scored, "metrics": metrics}

        if run.cancel_requested:  # asked in the admin while it was queued
            return stopped()
        scorer = _loaded_scorer(run)
        PairScore.objects.filter(run=run).delete()  # a run queued again starts over
        total = _pairs_to_score().count()
        report = _progress(run, total, progress)
        for pairs, scores in _scored_blocks(scorer, run.config.get("batch_size", BATCH_SIZE), tally):
            _store(run, pairs, scores, tally)
            report(tally.pairs_seen)
            if cancelled():
                return stopped()
        if cancelled(now=True):  # asked during the last block
            return stopped()
        seconds = time.monotonic() - started
        flags = contradicting_annotators_flag(run)
        metrics = {**tally.metrics(seconds, flags), "disagreements": disagreement_candidates(run)}
        return {"pairs_scored": tally.pairs_scored, "metrics": metrics}

    run = job_run(PairScoringRun.objects.select_related("training_run"), run_id, execute)
    if run.status == JobStatus.SUCCEEDED and not run.cancel_requested and settings.QUEUE_ORDER == "guided":
        _queue_ordered_by(run)
    return run


def pair_scoring_run_cancel(*, run: PairScoringRun) -> PairScoringRun:
    """Stop a run: a queued one is cancelled now (its task then does nothing), a running one after its current
    block. Anything else is refused with the reason."""
    mine = PairScoringRun.objects.filter(pk=run.pk)
    stopped = mine.filter(status=JobStatus.QUEUED).update(
        status=JobStatus.CANCELLED, cancel_requested=True, finished_at=timezone.now()
    ) or mine.filter(status=JobStatus.RUNNING).update(cancel_requested=True)
    run.refresh_from_db()
    if not stopped:
        raise PairScoringError(f"pair scoring run {run.pk} is {run.status}: nothing to cancel")
    return run


def _cancel_check(run: PairScoringRun) -> Callable[..., bool]:
    """Whether the run was asked to stop: the row is read at most once every CANCEL_CHECK_SECONDS, unless `now`."""
    checked_at = -CANCEL_CHECK_SECONDS

    def cancelled(*, now: bool = False) -> bool:
        nonlocal checked_at
        if not now and time.monotonic() - checked_at < CANCEL_CHECK_SECONDS:
            return False
        checked_at = time.monotonic()
        return PairScoringRun.objects.filter(pk=run.pk, cancel_requested=True).exists()

    return cancelled


def _queue_ordered_by(run: PairScoringRun) -> None:
    # Once per run: a redelivered task finds the run succeeded and its order already queued.
    if not run.queue_orders.exists():
        queue_order_request(run=run, random_share=settings.QUEUE_RANDOM_SHARE, created_by=run.created_by)


def _loaded_scorer(run: PairScoringRun):
    """The worker's cached MPSScorer of the run's checkpoint, refused on dimensions it was not trained on."""
    from training.mps import CheckpointError  # torch: GPU workers and commands only
    from training.mps.scorer import check_trained
    from training.scoring import cached_scorer

    try:
        scorer = cached_scorer(model_path_allowed(run.checkpoint_path))  # again: the roots may have changed
        check_trained(DIMENSION_KEYS, scorer.model.config.trained_dimensions,
                      allow_untrained=run.config.get("allow_untrained_dimensions", False))  # fmt: skip
    except (OutsideModelRoots, CheckpointError, ValueError, OSError) as error:
        raise JobFailed(f"cannot score with {run.checkpoint_path}: {error}") from error
    return scorer


def _pairs_to_score():
    """The open pairs (the queue orders them by these scores) and the judged ones (disagreements and flags):
    together every pair. By prompt, so that a prompt's images are read and encoded together, once."""
    return Pair.objects.order_by("prompt_id", "id")


@dataclass
class _Tally:
    pairs_seen: int = 0
    pairs_scored: int = 0
    images: int = 0
    unreadable: dict[int, str] = field(default_factory=dict)

    def metrics(self, seconds: float, flags: list) -> dict:
        rate = round(self.pairs_scored / seconds, 2) if seconds > 0 else None
        listed = dict(list(self.unreadable.items())[:UNREADABLE_LISTED])
        return {"pairs": self.pairs_seen, "pairs_scored": self.pairs_scored, "images": self.images,
                "seconds": round(seconds, 3), "pairs_per_second": rate, "unreadable_images": len(self.unreadable),
                "unreadable": {str(pk): error for pk, error in listed.items()},
                "contradicts_flags": [flag.annotator_id for flag in flags]}  # fmt: skip


def _progress(run: PairScoringRun, total: int, progress: Progress | None) -> Callable[[int], None]:
    def report(done: int) -> None:
        fraction = done / total if total else 1.0
        if fraction - run.progress >= PROGRESS_STEP or done == total:
            run.progress = round(fraction, 3)
            PairScoringRun.objects.filter(pk=run.pk).update(progress=run.progress, pairs_scored=run.pairs_scored)
        if progress is not None:
            progress(done, total)

    return report


def _prompt_blocks(rows: Iterable[tuple], images_per_block: int) -> Iterator[list[tuple]]:
    """Pair rows (id, prompt id, first id, second id), ordered by prompt, in blocks of whole prompts holding
    at least `images_per_block` distinct images (the last block fewer)."""
    block, images, prompt = [], set(), None
    for row in rows:
        if row[1] != prompt and len(images) >= images_per_block:
            yield block
            block, images = [], set()
        prompt = row[1]
        block.append(row)
        images.update(row[2:])
    if block:
        yield block


def _scored_blocks(scorer, batch_size: int, tally: _Tally) -> Iterator[tuple[list[tuple], dict]]:
    """(pair rows, {image id: {dimension: score}}) block by block; the conditions are encoded once. Threads
    decode and preprocess the next block's images while the model scores this one (decoding is the slow
    part on a GPU worker); the database is read on this thread only."""
    rows = _pairs_to_score().values_list("id", "prompt_id", "image_first_id", "image_second_id")
    conditions = _condition_tokens(scorer)
    size = scorer.model.config.image_size
    pending = None
    with ThreadPoolExecutor(max_workers=DECODE_THREADS) as pool:
        for block in _prompt_blocks(rows.iterator(chunk_size=PAIRS_PER_INSERT), batch_size):
            image_ids = sorted({image_id for row in block for image_id in row[2:]})
            images = Image.objects.select_related("prompt").in_bulk(image_ids)
            decoding = [(images[pk], pool.submit(_pixels, images[pk], size)) for pk in image_ids]
            if pending is not None:
                yield pending[0], _image_scores(scorer, _decoded(pending[1], tally), conditions, batch_size, tally)
            pending = (block, decoding)
        if pending is not None:
            yield pending[0], _image_scores(scorer, _decoded(pending[1], tally), conditions, batch_size, tally)


def _decoded(decoding: list[tuple[Image, Future]], tally: _Tally) -> list[tuple[Image, object]]:
    """(image, pixels [3, H, W]) of the readable images; the others noted in the tally."""
    readable = []
    for image, future in decoding:
        pixels = future.result()
        if isinstance(pixels, str):
            tally.unreadable[image.pk] = pixels
        else:
            readable.append((image, pixels))
    return readable


def _store(run: PairScoringRun, pairs: list[tuple], scores: dict, tally: _Tally) -> None:
    """One PairScore per pair whose two images were read: P(first) as score_images' preference matrix."""
    from training.mps.scorer import preference_matrix

    rows = []
    for pair_id, _, first, second in pairs:
        if first in scores and second in scores:
            probability = {key: preference_matrix([scores[first][key], scores[second][key]])[0][1]
                           for key in DIMENSION_KEYS}  # fmt: skip
            rows.append(PairScore(run=run, pair_id=pair_id, **probability))
    PairScore.objects.bulk_create(rows, batch_size=PAIRS_PER_INSERT)
    tally.pairs_seen += len(pairs)
    tally.pairs_scored += len(rows)
    run.pairs_scored = tally.pairs_scored


def _condition_tokens(scorer):
    """The four dimensions' condition token features [4, L, D] (one text-tower run for the whole job)."""
    import torch

    from training.mps import dimension_condition, tokenize

    config = scorer.model.config
    texts = [dimension_condition(key) for key in DIMENSION_KEYS]
    with torch.inference_mode(), scorer._autocast():
        tokens, _ = scorer.model.encode_text_tokens(
            tokenize(texts, config.context_length, pad_id=config.pad_id).to(scorer.device)
        )
    return tokens


def _image_scores(scorer, readable: list[tuple[Image, object]], conditions, batch_size: int, tally: _Tally) -> dict:
    """{image id: {dimension: score}} for decoded images: the vision tower once per image, the text tower
    once per prompt, the cross model once per image and dimension (MPSScorer's computation, batched across
    prompts)."""
    import torch

    from training.mps import condition_keep_mask, tokenize

    if not readable:
        return {}
    model, config = scorer.model, scorer.model.config
    pixels = torch.stack([pixels for _, pixels in readable])
    prompt_row = {text: index for index, text in enumerate(dict.fromkeys(image.prompt.text for image, _ in readable))}
    prompts = list(prompt_row)
    row = torch.tensor([prompt_row[image.prompt.text] for image, _ in readable])
    scores = []
    with torch.inference_mode(), scorer._autocast():
        ids = tokenize(prompts, config.context_length, pad_id=config.pad_id).to(scorer.device)
        prompt_tokens, pooled = model.encode_text_tokens(ids)  # [P, L, D], [P, D]
        keeps = [condition_keep_mask(prompt_tokens, condition.expand(len(prompts), -1, -1), scorer.threshold)
                 for condition in conditions]  # fmt: skip
        for start in range(0, len(readable), batch_size):
            rows = row[start : start + batch_size].to(scorer.device)
            image_tokens = model.encode_image_tokens(pixels[start : start + batch_size].to(scorer.device))
            per_dimension = [
                model.score_features(image_tokens, prompt_tokens[rows], pooled[rows], keep[rows]) for keep in keeps
            ]
            scores.append(torch.stack(per_dimension, dim=1).float().cpu())  # [batch, 4]
    tally.images += len(readable)
    values = torch.cat(scores).tolist()  # [images, 4]
    return {image.pk: dict(zip(DIMENSION_KEYS, value, strict=True))
            for (image, _), value in zip(readable, values, strict=True)}  # fmt: skip


def _pixels(image: Image, size: int):
    """The image's pixels [3, size, size] as score_images preprocesses them, or why it cannot be read.

    Through the storage API, as stored_images_score reads them; one broken file skips its pairs only."""
    from training.mps import preprocess_images

    try:
        with image.file.storage.open(image.file.name, "rb") as handle, PILImage.open(handle) as picture:
            picture.load()
            return preprocess_images([picture], size)[0]
    except (OSError, SyntaxError, ValueError, PILImage.DecompressionBombError) as error:
        return f"{type(error).__name__}: {error}"
