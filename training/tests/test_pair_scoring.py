"""Pair scoring runs on a tiny MPS checkpoint written here: the probabilities score_images gives, each image's
vision tower once, the failures that end a run, the refusals that store nothing, the model disagreements on
the disputes page and the CONTRADICTS flags."""

from __future__ import annotations

import re
import shutil
import time

import numpy as np
import pytest
import torch
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import timezone

from annotation import roles
from annotation.dimensions import DIMENSION_KEYS
from annotation.images.services.pairs import pair_get_or_create
from annotation.labeling import guided
from annotation.labeling.disagreements import (
    CONTRADICTION_MIN_ANSWERS,
    contradicting_annotators_flag,
    disagreement_candidates,
    model_disagreements,
)
from annotation.labeling.queue_order import queue_order_current
from annotation.models import Adjudication, AnnotatorFlag, FlagKind, Pair
from annotation.models.labeling import QUEUE_RANK_LAST, QueueOrder
from annotation.tests.factories import make_generator, make_image, make_prompt, make_user
from datasets.models import DatasetItem, DatasetVersion
from datasets.tests.factories import judge
from mhp.jobs import JobStatus
from training import pair_scoring
from training.models import PairScore, PairScoringRun, TrainingRun
from training.mps import DIMENSIONS, MPSConfig, MPSModel, save_checkpoint, score_images, tiny_config
from training.pair_scoring import (
    PairScoringError,
    pair_scoring_run_cancel,
    pair_scoring_run_create,
    pair_scoring_run_execute,
)
from training.runs import training_run_create, training_run_execute
from training.scoring import cached_scorer
from training.trainer.simulate import write_simulated_export

pytestmark = pytest.mark.django_db
PAGE = reverse("training-pages:pair-scorings")
DISPUTES = reverse("annotation:label-disputes")


@pytest.fixture(scope="module")
def models_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    save_checkpoint(MPSModel(tiny_config()).eval(), root / "tiny")
    return root


@pytest.fixture(autouse=True)
def _roots(settings, tmp_path, models_root):
    settings.ARTIFACTS_ROOT = tmp_path / "artifacts"
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MODEL_ROOTS = [models_root]


@pytest.fixture
def checkpoint(models_root) -> str:
    return str(models_root / "tiny")


def _prompt_pairs(images: int = 3) -> list[Pair]:
    """Every pair of `images` images of one new prompt."""
    prompt, generator = make_prompt(), make_generator()
    made = [make_image(prompt, generator) for _ in range(images)]
    return [pair_get_or_create(image_a=a, image_b=b)[0] for i, a in enumerate(made) for b in made[i + 1 :]]


def _count_rows(module: torch.nn.Module, counts: list[int]):
    return module.register_forward_hook(lambda _module, inputs, _output: counts.append(inputs[0].shape[0]))


def test_the_job_stores_score_images_probabilities_running_each_image_through_the_vision_tower_once(checkpoint):
    pairs = [pair for _ in range(3) for pair in _prompt_pairs(3)]  # 3 prompts x 3 images x 3 pairs
    scorer = cached_scorer(pair_scoring.model_path_allowed(checkpoint))  # the one the job will use
    vision, text = [], []
    hooks = [
        _count_rows(scorer.model.backbone.visual.conv1, vision),
        _count_rows(scorer.model.backbone.token_embedding, text),
    ]
    try:
        run = pair_scoring_run_create(checkpoint=checkpoint, batch_size=4, enqueue=False)
        run = pair_scoring_run_execute(run_id=run.pk)
    finally:
        for hook in hooks:
            hook.remove()
    assert (run.status, run.error, run.progress, run.pairs_scored) == (JobStatus.SUCCEEDED, "", 1.0, 9)
    assert (run.metrics["pairs"], run.metrics["images"], run.metrics["unreadable_images"]) == (9, 9, 0)
    assert run.metrics["disagreements"] == [] and run.metrics["contradicts_flags"] == []  # nothing judged yet
    assert sum(vision) == 9 and max(vision) <= 4  # each distinct image once, in batches of at most 4
    assert sum(text) == 4 + 3  # the four conditions once per job, each prompt once
    assert PairScore.objects.filter(run=run).count() == 9
    for pair in pairs:
        stored = PairScore.objects.get(run=run, pair=pair)
        images = [pair.image_first.file.path, pair.image_second.file.path]
        direct = score_images(checkpoint, pair.prompt.text, images, DIMENSIONS, device="cpu")
        for key in DIMENSION_KEYS:
            assert getattr(stored, key) == pytest.approx(direct["preferences"][key][0][1], abs=1e-5), (pair.pk, key)
    spread = {round(score.overall, 4) for score in PairScore.objects.filter(run=run)}
    assert len(spread) > 1  # the comparison is not between constants


def test_the_command_runs_the_same_job_and_a_training_run_links_its_dataset_version(checkpoint, capsys):
    _prompt_pairs(2)
    trained = TrainingRun.objects.create(name="tiny-run", status=JobStatus.SUCCEEDED, best_checkpoint=checkpoint)
    call_command("score_pairs", "--training-run", "tiny-run", "--verbosity", "0")
    run = PairScoringRun.objects.get()
    assert (run.status, run.training_run, run.checkpoint_path, run.pairs_scored) == (
        JobStatus.SUCCEEDED, trained, checkpoint, 1
    )  # fmt: skip
    assert f"pair scoring run {run.pk}: 1 of 1 pairs scored, 2 images" in capsys.readouterr().out
    call_command("score_pairs", "--checkpoint", checkpoint, "--verbosity", "0")  # the path of a run's best model
    assert PairScoringRun.objects.latest("id").training_run == trained
    with pytest.raises(CommandError, match="no training run named 'nope'"):
        call_command("score_pairs", "--training-run", "nope")


@pytest.mark.parametrize("mode", ["manual", "guided"])
def test_with_queue_order_guided_each_succeeded_run_orders_the_queue_once(
    settings, checkpoint, mode, django_capture_on_commit_callbacks
):
    settings.QUEUE_ORDER, settings.QUEUE_RANDOM_SHARE = mode, 0.0
    pairs = [pair for _ in range(2) for pair in _prompt_pairs(3)]
    run = pair_scoring_run_create(checkpoint=checkpoint, enqueue=False)
    for _ in range(2):  # the task delivered twice
        with django_capture_on_commit_callbacks(execute=True):  # the order's task, eager here (no broker)
            run = pair_scoring_run_execute(run_id=run.pk)
    assert run.status == JobStatus.SUCCEEDED
    ranked = Pair.objects.exclude(queue_rank=QUEUE_RANK_LAST).order_by("queue_rank").values_list("pk", flat=True)
    if mode == "manual":
        assert not QueueOrder.objects.exists() and not ranked.exists()
        return
    order = QueueOrder.objects.get()
    assert (order.status, order.scoring_run, order.guided, order.pairs_ranked) == (JobStatus.SUCCEEDED, run, True, 6)
    assert queue_order_current() == order
    scores = {score.pair_id: score for score in PairScore.objects.filter(run=run)}
    probabilities = np.array([[getattr(scores[pair.pk], key) for key in DIMENSION_KEYS] for pair in pairs])
    most_uncertain_first = np.argsort(-guided.uncertainty(probabilities), kind="stable")
    assert list(ranked) == [pairs[index].pk for index in most_uncertain_first]


@pytest.mark.parametrize("after_training", [False, True])
def test_a_training_run_that_succeeds_has_its_best_model_score_the_pairs_when_asked(
    settings, tmp_path, after_training, django_capture_on_commit_callbacks
):
    settings.PAIR_SCORING_AFTER_TRAINING = after_training
    _prompt_pairs(3)
    export = write_simulated_export(tmp_path / "export", pairs=12, seed=2)
    options = {"export_dir": str(export), "image_root": str(export), "preset": "tiny", "steps": 2, "batch_size": 4}
    options |= {"num_workers": 0, "precision": "fp32", "log_tensorboard": False, "val_every": 2}
    run = training_run_create(name="loop", version=None, options=options, enqueue=False)
    for _ in range(2):  # the task delivered twice
        with django_capture_on_commit_callbacks(execute=True):  # the scoring's task, eager here (no broker)
            run = training_run_execute(run_id=run.pk)
    assert run.status == JobStatus.SUCCEEDED and run.best_checkpoint
    scorings = PairScoringRun.objects.filter(training_run=run)
    if not after_training:
        assert not scorings.exists()
        return
    scoring = scorings.get()
    assert (scoring.status, scoring.checkpoint_path, scoring.pairs_scored) == (
        JobStatus.SUCCEEDED, run.best_checkpoint, 3
    )  # fmt: skip


def test_an_unreadable_image_leaves_its_pairs_unscored_and_the_others_scored(checkpoint):
    broken, *others = _prompt_pairs(3)
    broken.image_first.file.storage.delete(broken.image_first.file.name)
    run = pair_scoring_run_execute(run_id=pair_scoring_run_create(checkpoint=checkpoint, enqueue=False).pk)
    assert (run.status, run.pairs_scored, run.metrics["unreadable_images"]) == (JobStatus.SUCCEEDED, 1, 1)
    assert list(run.metrics["unreadable"]) == [str(broken.image_first_id)]
    assert set(PairScore.objects.values_list("pair_id", flat=True)) == {
        pair.pk for pair in others if broken.image_first_id not in (pair.image_first_id, pair.image_second_id)
    }


def test_an_unexpected_error_fails_the_run_with_a_message_and_a_redelivery_does_nothing(checkpoint, monkeypatch):
    _prompt_pairs(2)

    def broken(*args):
        raise KeyError("a bug nobody expected")

    monkeypatch.setattr(pair_scoring, "_store", broken)
    run = pair_scoring_run_execute(run_id=pair_scoring_run_create(checkpoint=checkpoint, enqueue=False).pk)
    assert run.status == JobStatus.FAILED and run.finished_at is not None
    assert run.error.startswith("unexpected error (KeyError: 'a bug nobody expected')")
    monkeypatch.undo()
    assert pair_scoring_run_execute(run_id=run.pk).status == JobStatus.FAILED  # a redelivered task does nothing
    assert not PairScore.objects.exists()


def test_a_checkpoint_gone_or_untrained_on_a_dimension_fails_the_run(checkpoint, models_root):
    _prompt_pairs(2)
    copy = models_root / "copy"
    shutil.copytree(checkpoint, copy, dirs_exist_ok=True)
    run = pair_scoring_run_create(checkpoint=str(copy), enqueue=False)
    shutil.rmtree(copy)  # the checkpoint went away after the run was queued
    run = pair_scoring_run_execute(run_id=run.pk)
    assert run.status == JobStatus.FAILED and run.error.startswith(f"cannot score with {copy}: no checkpoint at")

    published = models_root / "overall-only"
    torch.manual_seed(0)
    overall_only = MPSConfig.from_dict({**tiny_config().to_dict(), "trained_dimensions": ["overall"]})
    save_checkpoint(MPSModel(overall_only).eval(), published)
    refused = pair_scoring_run_execute(run_id=pair_scoring_run_create(checkpoint=str(published), enqueue=False).pk)
    assert refused.status == JobStatus.FAILED and "trained on overall only, not on aesthetics" in refused.error
    allowed = pair_scoring_run_create(checkpoint=str(published), allow_untrained_dimensions=True, enqueue=False)
    assert pair_scoring_run_execute(run_id=allowed.pk).status == JobStatus.SUCCEEDED


def test_bad_requests_are_refused_and_store_nothing(checkpoint, models_root, tmp_path):
    unfinished = TrainingRun.objects.create(name="unfinished")
    cases = [
        ({}, "give one checkpoint"),
        ({"checkpoint": checkpoint, "training_run": unfinished}, "give one checkpoint"),
        ({"training_run": unfinished}, "training run unfinished is queued with no best model"),
        ({"checkpoint": str(tmp_path / "elsewhere")}, "only paths under ARTIFACTS_ROOT or MODEL_ROOTS are read"),
        ({"checkpoint": str(models_root / "missing")}, f"mps: nothing at {models_root / 'missing'}"),
        ({"checkpoint": checkpoint, "batch_size": 0}, "the batch size must be between 1 and 4096"),
        ({"checkpoint": "a\x00b"}, "only paths under ARTIFACTS_ROOT or MODEL_ROOTS are read"),
    ]
    for arguments, message in cases:
        with pytest.raises(PairScoringError, match=re.escape(message)):
            pair_scoring_run_create(enqueue=False, **arguments)
    assert not PairScoringRun.objects.exists()


def test_no_gpu_worker_refuses_the_run(settings, checkpoint):
    settings.CELERY_TASK_ALWAYS_EAGER = False  # ask the broker, where no worker listens
    with pytest.raises(PairScoringError, match="cannot start the pair scoring: no Celery worker consumes the gpu"):
        pair_scoring_run_create(checkpoint=checkpoint)
    assert not PairScoringRun.objects.exists()


def test_the_score_task_is_routed_to_the_gpu_queue():
    from mhp.celery import app

    assert app.amqp.router.route({}, "training.tasks.score_pairs_run")["queue"].name == "gpu"


# The pages: a staff admin starts a run from the models pages; the disputes page lists the disagreements.


@pytest.fixture
def admin(client):
    client.force_login(make_user(roles.ADMIN))
    return client


def test_an_admin_reaches_the_page_from_home_and_starts_a_run(admin, checkpoint, django_capture_on_commit_callbacks):
    _prompt_pairs(2)
    home = admin.get("/").content.decode()
    assert f'href="{PAGE}"' in home and 'id="no-pair-scorings"' in admin.get(PAGE).content.decode()
    form = {"training_run": "", "checkpoint": checkpoint, "batch_size": "8"}
    with django_capture_on_commit_callbacks(execute=True):  # Celery is eager here: the task runs on commit
        response = admin.post(PAGE, form)
    assert response.status_code == 302 and response["Location"] == PAGE
    run = PairScoringRun.objects.get()
    assert (run.status, run.pairs_scored, run.config["batch_size"]) == (JobStatus.SUCCEEDED, 1, 8)
    row = re.search(rf'<tr data-scoring="{run.pk}">(.*?)</tr>', admin.get(PAGE).content.decode(), re.S).group(1)
    assert checkpoint in row and "Succeeded" in row and "100%" in row and '<td class="num">1</td>' in row


def test_a_queued_run_cancelled_never_starts(checkpoint):
    _prompt_pairs(3)
    run = pair_scoring_run_cancel(run=pair_scoring_run_create(checkpoint=checkpoint, enqueue=False))
    assert (run.status, run.cancel_requested) == (JobStatus.CANCELLED, True) and run.finished_at is not None
    run = pair_scoring_run_execute(run_id=run.pk)  # its task, delivered after the cancel
    assert (run.status, run.pairs_scored, run.started_at) == (JobStatus.CANCELLED, 0, None)
    assert not PairScore.objects.exists()
    with pytest.raises(PairScoringError, match=f"pair scoring run {run.pk} is cancelled: nothing to cancel"):
        pair_scoring_run_cancel(run=run)


def test_a_running_run_stops_after_its_current_block_and_orders_nothing(settings, checkpoint):
    settings.QUEUE_ORDER = "guided"
    for _ in range(3):
        _prompt_pairs(3)  # three prompts of 3 images: one block each at batch size 3
    run = pair_scoring_run_create(checkpoint=checkpoint, batch_size=3, enqueue=False)
    heard = []

    def cancel_after_the_first_block(done, total):
        heard.append(done)
        if len(heard) == 1:
            assert pair_scoring_run_cancel(run=run).status == JobStatus.RUNNING

    run = pair_scoring_run_execute(run_id=run.pk, progress=cancel_after_the_first_block)
    assert (run.status, run.error, run.pairs_scored, heard) == (JobStatus.CANCELLED, "", 3, [3])
    assert PairScore.objects.filter(run=run).count() == 3 and not QueueOrder.objects.exists()
    with pytest.raises(PairScoringError, match="is cancelled: nothing to cancel"):
        pair_scoring_run_cancel(run=run)


def test_a_cancel_during_the_last_block_or_asked_in_the_admin_while_queued_still_stops_the_run(settings, checkpoint):
    settings.QUEUE_ORDER = "guided"
    _prompt_pairs(3)
    run = pair_scoring_run_create(checkpoint=checkpoint, batch_size=3, enqueue=False)
    run = pair_scoring_run_execute(run_id=run.pk, progress=lambda done, total: pair_scoring_run_cancel(run=run))
    assert (run.status, run.pairs_scored) == (JobStatus.CANCELLED, 3) and not QueueOrder.objects.exists()

    queued = pair_scoring_run_create(checkpoint=checkpoint, enqueue=False)
    PairScoringRun.objects.filter(pk=queued.pk).update(cancel_requested=True)  # the admin's one editable field
    queued = pair_scoring_run_execute(run_id=queued.pk)
    assert (queued.status, queued.pairs_scored) == (JobStatus.CANCELLED, 0)
    assert not PairScore.objects.filter(run=queued).exists() and not QueueOrder.objects.exists()


def test_staff_who_may_change_runs_cancel_one_from_the_page(admin, checkpoint, client):
    queued = pair_scoring_run_create(checkpoint=checkpoint, enqueue=False)
    done = PairScoringRun.objects.create(checkpoint_path=checkpoint, status=JobStatus.SUCCEEDED)
    cancel = reverse("training-pages:pair-scoring-cancel", args=[queued.pk])
    assert f'action="{cancel}"' in admin.get(PAGE).content.decode()
    assert admin.get(cancel).status_code == 405
    response = admin.post(cancel, follow=True)
    assert response.redirect_chain == [(PAGE, 302)]
    assert f"Cancel requested for pair scoring run {queued.pk}." in response.content.decode()
    assert PairScoringRun.objects.get(pk=queued.pk).status == JobStatus.CANCELLED
    assert f'action="{cancel}"' not in admin.get(PAGE).content.decode()  # no button once it is over

    refused = admin.post(reverse("training-pages:pair-scoring-cancel", args=[done.pk]), follow=True)
    assert f"pair scoring run {done.pk} is succeeded: nothing to cancel" in refused.content.decode()
    assert PairScoringRun.objects.get(pk=done.pk).status == JobStatus.SUCCEEDED
    for missing in (999_999, 2**63):
        assert admin.post(reverse("training-pages:pair-scoring-cancel", args=[missing])).status_code == 404


@pytest.mark.parametrize(
    ("role", "staff", "status"), [(roles.ANNOTATOR, False, 302), (roles.REVIEWER, False, 302), (None, True, 403)]
)
def test_others_cannot_cancel_a_run(client, checkpoint, role, staff, status):
    queued = pair_scoring_run_create(checkpoint=checkpoint, enqueue=False)
    user = make_user(role)
    if staff:  # staff without the permission to change pair scoring runs
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    client.force_login(user)
    assert client.post(reverse("training-pages:pair-scoring-cancel", args=[queued.pk])).status_code == status
    assert PairScoringRun.objects.get(pk=queued.pk).status == JobStatus.QUEUED


def test_bad_form_input_is_a_400_that_stores_nothing(admin, checkpoint, tmp_path, client):
    cases = [
        ({"checkpoint": "", "training_run": ""}, "Choose a training run or give a checkpoint path"),
        ({"checkpoint": str(tmp_path / "x")}, "only paths under ARTIFACTS_ROOT or MODEL_ROOTS are read"),
        ({"checkpoint": checkpoint, "batch_size": "0"}, "Ensure this value is greater than or equal to 1."),
        ({"checkpoint": checkpoint, "batch_size": "many"}, "Enter a whole number."),
        ({"checkpoint": checkpoint, "training_run": "99999"}, "Select a valid choice."),
        ({"checkpoint": "x" * 600}, "Ensure this value has at most 500 characters"),
    ]
    for data, message in cases:
        response = admin.post(PAGE, {"training_run": "", "batch_size": "8", **data})
        assert response.status_code == 400 and message in response.content.decode(), message
    client.force_login(make_user(roles.REVIEWER))
    response = client.post(PAGE, {"checkpoint": checkpoint, "batch_size": "8"})  # not staff: to the admin login
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert not PairScoringRun.objects.exists()


def _scored_run(training_run=None) -> PairScoringRun:
    now = timezone.now()
    return PairScoringRun.objects.create(checkpoint_path="/models/x", training_run=training_run,
                                         status=JobStatus.SUCCEEDED, started_at=now, finished_at=now)  # fmt: skip


def _keep_candidates(run: PairScoringRun) -> None:
    """What a scoring job records at its end, for a run made here with hand-written scores."""
    run.metrics = {"disagreements": disagreement_candidates(run)}
    run.save(update_fields=["metrics"])


def _complete(pair: Pair, annotators, choices) -> Pair:
    for annotator, choice in zip(annotators, choices, strict=True):
        judge(pair, annotator, choice)
    Pair.objects.filter(pk=pair.pk).update(judgements_done=len(choices), judgements_required=len(choices))
    return pair


def _score(run, pair, **probabilities) -> None:
    PairScore.objects.create(run=run, pair=pair, **{**dict.fromkeys(DIMENSION_KEYS, 0.5), **probabilities})


def test_confident_contradictions_not_trained_on_nor_adjudicated_go_to_the_disputes_page(client):
    people = [make_user(roles.ANNOTATOR) for _ in range(3)]
    contradicted, trained_on, adjudicated, agreed, tie, partial = (_prompt_pairs(2)[0] for _ in range(6))
    for pair in (contradicted, trained_on, adjudicated, agreed):
        _complete(pair, people, ["first", "first", "second"])
    _complete(tie, people, ["tie", "tie", "first"])
    judge(partial, people[0], "first")  # 1 of 3 judgements: not complete
    version = DatasetVersion.objects.create(name="v1")
    DatasetItem.objects.create(version=version, pair=trained_on, split="train", labels={}, annotator_count=3,
                               agreement=1.0)  # fmt: skip
    older = _scored_run()  # it contradicted `agreed`; the latest succeeded run is the one read
    _score(older, agreed, overall=0.01)
    run = _scored_run(TrainingRun.objects.create(name="r", status=JobStatus.SUCCEEDED, dataset_version=version))
    failed = PairScoringRun.objects.create(checkpoint_path="/models/y", status=JobStatus.FAILED,
                                           finished_at=timezone.now())  # fmt: skip
    _score(failed, agreed, overall=0.01)
    _score(run, contradicted, detail=0.05)  # 0.95 for the second image; the majority chose the first
    for pair in (trained_on, adjudicated, tie, partial):
        _score(run, pair, **dict.fromkeys(DIMENSION_KEYS, 0.01))
    _score(run, agreed, overall=0.99)
    Adjudication.objects.create(pair=adjudicated, reviewer=people[0], **dict.fromkeys(DIMENSION_KEYS, "first"))
    for scored in (older, run, failed):
        _keep_candidates(scored)
    assert run.metrics["disagreements"] == [contradicted.pk] and older.metrics["disagreements"] == [agreed.pk]

    latest, pairs = model_disagreements()
    assert latest == run and [pair.pk for pair in pairs] == [contradicted.pk]
    assert pairs[0].contradicted_keys == ["detail"] and pairs[0].contradicted == pytest.approx(0.95)

    client.force_login(make_user(roles.REVIEWER))
    html = client.get(DISPUTES).content.decode()
    section = html[html.index('id="model-disagreements"') :]
    assert (
        f'id="model-pair-{contradicted.pk}"' in section
        and section.count('class="card dispute model-disagreement"') == 1
    )
    detail_row = re.search(
        r"<th>detail</th>(.*?)</tr>", section[section.index(f"model-pair-{contradicted.pk}") :], re.S
    )
    assert 'class="num contradicted">0.050 ✗' in detail_row.group(1)
    answers = {"pair_id": contradicted.pk, "action": "adjudicate", **dict.fromkeys(DIMENSION_KEYS, "second")}
    response = client.post(reverse("annotation:label-adjudicate"), answers)
    assert response.status_code == 302 and model_disagreements()[1] == []


def test_the_disputes_page_says_when_no_scoring_run_succeeded(client):
    client.force_login(make_user(roles.REVIEWER))
    assert 'id="no-scoring-run"' in client.get(DISPUTES).content.decode()


def test_an_annotator_contradicting_consensus_and_model_is_flagged_once(checkpoint):
    honest = [make_user(roles.ANNOTATOR) for _ in range(3)]
    contrarian, occasional = make_user(roles.ANNOTATOR), make_user(roles.ANNOTATOR)
    run = _scored_run()
    pairs = [_prompt_pairs(2)[0] for _ in range(6)]  # 6 pairs x 4 dimensions = 24 answers each
    for index, pair in enumerate(pairs):
        occasional_choice = "second" if index == 0 else "first"
        votes = ["first", "first", "first", "second", occasional_choice]
        for annotator, choice in zip([*honest, contrarian, occasional], votes, strict=True):
            judge(pair, annotator, choice)
        Pair.objects.filter(pk=pair.pk).update(judgements_done=5, judgements_required=5)
        _score(run, pair, **dict.fromkeys(DIMENSION_KEYS, 0.97))

    flags = contradicting_annotators_flag(run)
    assert [flag.annotator for flag in flags] == [contrarian]
    flag = AnnotatorFlag.objects.get()
    assert (flag.kind, flag.figures["answers"], flag.figures["contradicted"], flag.figures["rate"]) == (
        FlagKind.CONTRADICTS, 24, 24, 1.0
    )  # fmt: skip
    assert "24 of 24 answers (100%)" in flag.detail and CONTRADICTION_MIN_ANSWERS <= 24
    assert contradicting_annotators_flag(run) == [] and AnnotatorFlag.objects.count() == 1  # one open flag

    AnnotatorFlag.objects.update(reviewed_at=timezone.now())  # reviewed: the next run may flag again
    assert [flag.annotator for flag in contradicting_annotators_flag(run)] == [contrarian]


def test_too_few_answers_flag_nobody():
    people = [make_user(roles.ANNOTATOR) for _ in range(3)]
    run = _scored_run()
    for _ in range(CONTRADICTION_MIN_ANSWERS // 4 - 1):  # 4 answers a pair: under the minimum
        pair = _complete(_prompt_pairs(2)[0], people, ["first", "first", "second"])
        _score(run, pair, **dict.fromkeys(DIMENSION_KEYS, 0.97))
    assert contradicting_annotators_flag(run) == []


def test_throughput_on_cpu_with_the_tiny_model(checkpoint, capsys):
    for _ in range(10):
        _prompt_pairs(4)  # 10 prompts x 4 images x 6 pairs
    started = time.monotonic()
    run = pair_scoring_run_execute(run_id=pair_scoring_run_create(checkpoint=checkpoint, enqueue=False).pk)
    seconds = time.monotonic() - started
    assert run.status == JobStatus.SUCCEEDED and run.pairs_scored == 60
    with capsys.disabled():
        print(f"\npair scoring, tiny model on CPU: {run.pairs_scored} pairs, {run.metrics['images']} images in "
              f"{seconds:.2f} s ({run.metrics['pairs_per_second']} pairs/s in the job's loop)")  # fmt: skip


@pytest.mark.django_db(transaction=True)
def test_a_reviewer_clicks_from_home_to_a_model_disagreement_and_adjudicates_it(browser_login, live_server):
    people = [make_user(roles.ANNOTATOR) for _ in range(3)]
    pair = _complete(_prompt_pairs(2)[0], people, ["first", "first", "second"])
    run = _scored_run()
    _score(run, pair, overall=0.02)
    _keep_candidates(run)
    make_user(roles.REVIEWER, username="rev")
    page = browser_login("rev")
    page.goto(f"{live_server.url}/")
    page.get_by_role("link", name="Disputed pairs").first.click()
    card = page.locator(f"#model-pair-{pair.pk}")
    assert card.locator("td.contradicted").inner_text() == "0.020 ✗"
    for key in DIMENSION_KEYS:
        card.locator(f"input[aria-label='{key} {'second' if key == 'overall' else 'first'}']").check()
    card.locator("button[value=adjudicate]").click()
    page.wait_for_selector(f"text=Pair {pair.pk} adjudicated.")
    assert Adjudication.objects.get(pair=pair).overall == "second"
    assert page.locator(f"#model-pair-{pair.pk}").count() == 0 and page.locator("#no-model-disagreements").count() == 1
