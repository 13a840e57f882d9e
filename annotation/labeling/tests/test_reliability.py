"""The reliability job on judgements in the database: Dawid-Skene recovering planted reliabilities, spammer
flags, the warm start, the skip when nothing changed, failures, and the doors (task, command, pages)."""

import io
from datetime import timedelta

import numpy as np
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from annotation import roles
from annotation.dimensions import DIMENSION_KEYS
from annotation.labeling import queue, reliability
from annotation.labeling.consensus import CLASSES, dawid_skene
from annotation.labeling.flags import annotator_flag_dismiss
from annotation.labeling.tests.labeling_factories import make_pairs
from annotation.models import (
    AnnotatorFlag,
    AnnotatorProfile,
    AnnotatorReliability,
    DimensionPrior,
    FlagKind,
    Judgement,
    Pair,
    ReliabilityRun,
    Side,
)
from annotation.tests.factories import make_user
from mhp.celery import app
from mhp.jobs import JobStatus

pytestmark = pytest.mark.django_db

# Planted one-coin reliabilities (right this often, otherwise either wrong answer alike), per dimension.
PLANTED = {
    "careful": dict.fromkeys(DIMENSION_KEYS, 0.9),
    "good": dict.fromkeys(DIMENSION_KEYS, 0.8),
    "uneven": {"aesthetics": 0.9, "detail": 0.75, "alignment": 0.6, "overall": 0.8},
    "fair": dict.fromkeys(DIMENSION_KEYS, 0.7),
}
SPAMMERS = ("random", "lefty")  # uniform answers; always the image on the left of the screen
TRUE_PRIOR = (0.45, 0.1, 0.45)
PAIRS = 200
TOLERANCE = 0.08


def _answer(rng, name: str, truth: int, accuracy: float | None, left_side: str) -> str:
    if name == "random":
        return CLASSES[rng.integers(3)]
    if name == "lefty":
        return "first" if left_side == Side.FIRST else "second"
    if rng.random() < accuracy:
        return CLASSES[truth]
    return CLASSES[(truth + rng.integers(1, 3)) % 3]


def judge_all(pairs: list[Pair], people: dict, *, seed: int, planted: dict = PLANTED) -> None:
    """Every person judges every pair, answering as `planted` (or as their spammer name says), each pair shown
    on a random side."""
    rng = np.random.default_rng(seed)
    rows = []
    for pair in pairs:
        truths = {key: rng.choice(3, p=TRUE_PRIOR) for key in DIMENSION_KEYS}
        for name, user in people.items():
            left_side = Side.FIRST if rng.random() < 0.5 else Side.SECOND
            mine = planted.get(name, {})
            answers = {key: _answer(rng, name, truths[key], mine.get(key), left_side) for key in DIMENSION_KEYS}
            rows.append(Judgement(pair=pair, annotator=user, left_side=left_side, duration_ms=4000, **answers))
    Judgement.objects.bulk_create(rows)
    Pair.objects.filter(pk__in=[pair.pk for pair in pairs]).update(judgements_done=F("judgements_done") + len(people))


def make_world(pairs: int = PAIRS, *, extra_pairs: int = 0, seed: int = 7):
    """(people by name, pairs held back for later judgements): planted annotators and both spammers, each
    judging `pairs` pairs."""
    all_pairs = make_pairs(pairs + extra_pairs, required=len(PLANTED) + len(SPAMMERS))
    people = {name: make_user(roles.ANNOTATOR, username=name) for name in (*PLANTED, *SPAMMERS)}
    judge_all(all_pairs[:pairs], people, seed=seed)
    return people, all_pairs[pairs:]


def fit(**options) -> ReliabilityRun:
    run, created = reliability.reliability_run_request(enqueue=False, **options)
    assert created
    return reliability.reliability_run_execute(run_id=run.pk)


def _reliability(name: str, key: str) -> AnnotatorReliability:
    return AnnotatorReliability.objects.get(annotator__username=name, dimension=key)


def _mean_informativeness(name: str) -> float:
    return float(np.mean([_reliability(name, key).informativeness for key in DIMENSION_KEYS]))


@pytest.fixture
def world():
    return make_world()


def test_the_job_recovers_planted_reliabilities_and_flags_exactly_the_spammers(world):
    run = fit()
    assert run.status == JobStatus.SUCCEEDED, run.error
    assert (run.judgements_used, run.annotators_flagged, run.progress) == (PAIRS * 6, 2, 1.0)
    assert run.metrics["pairs"] == PAIRS and run.metrics["annotators"] == 6
    for name, planted in PLANTED.items():
        for key, accuracy in planted.items():
            row = _reliability(name, key)
            assert row.accuracy == pytest.approx(accuracy, abs=TOLERANCE), (name, key)
            assert row.judgements == PAIRS
            assert np.allclose(np.sum(row.confusion, axis=1), 1.0)
        assert _mean_informativeness(name) > 0.35
    for name in SPAMMERS:
        assert _mean_informativeness(name) < settings.SPAMMER_INFORMATIVENESS
    flags = AnnotatorFlag.objects.all()
    assert sorted((flag.annotator.username, flag.kind) for flag in flags) == [
        ("lefty", FlagKind.SPAMMER),
        ("random", FlagKind.SPAMMER),
    ]
    flag = flags.get(annotator__username="lefty")
    assert flag.figures["judgements"] == PAIRS and flag.figures["run"] == run.pk
    assert set(flag.figures["dimensions"]) == set(DIMENSION_KEYS)
    assert "informativeness" in flag.detail and flag.reviewed_at is None
    for key in DIMENSION_KEYS:
        stored = DimensionPrior.objects.get(dimension=key)
        assert stored.prior == pytest.approx(TRUE_PRIOR, abs=0.07)
        assert np.allclose(np.sum(stored.default_confusion, axis=1), 1.0)


def test_a_spammer_below_the_minimum_of_judgements_is_not_flagged(settings):
    settings.SPAMMER_MIN_JUDGEMENTS = PAIRS + 1
    make_world()
    run = fit()
    assert run.status == JobStatus.SUCCEEDED and run.annotators_flagged == 0
    assert not AnnotatorFlag.objects.exists()


def test_a_warm_start_converges_in_fewer_iterations_and_does_not_flag_twice():
    people, later = make_world(extra_pairs=20)
    first = fit()
    assert all(not fig["warm"] for fig in first.metrics["dimensions"].values())
    judge_all(later, people, seed=8)
    votes = reliability.votes_read()
    cold = {
        key: dawid_skene(votes.items, votes.judges, votes.answers[:, index], tolerance=reliability.FIT_TOLERANCE)
        for index, key in enumerate(DIMENSION_KEYS)
    }

    warm = fit()
    assert warm.status == JobStatus.SUCCEEDED, warm.error
    assert warm.judgements_used == (PAIRS + 20) * 6
    for key, fig in warm.metrics["dimensions"].items():
        assert fig["warm"] and fig["converged"]
        assert fig["iterations"] < cold[key].iterations, (key, fig["iterations"], cold[key].iterations)
    assert _reliability("careful", "overall").judgements == PAIRS + 20
    assert _reliability("careful", "overall").accuracy == pytest.approx(0.9, abs=TOLERANCE)
    # The spammers' flags are still open: no second one, none counted as new.
    assert warm.annotators_flagged == 0 and AnnotatorFlag.objects.count() == 2
    # Once converged, a forced refit on the same judgements stops at once.
    assert all(fig["iterations"] <= 2 for fig in fit(force=True).metrics["dimensions"].values())


def test_a_newcomer_joins_a_warm_fit_from_the_default_confusion_and_is_measured():
    people, later = make_world(extra_pairs=40)
    fit()
    newcomer = make_user(roles.ANNOTATOR, username="newcomer")
    planted = {**PLANTED, "newcomer": dict.fromkeys(DIMENSION_KEYS, 0.85)}
    Pair.objects.filter(pk__in=[pair.pk for pair in later]).update(judgements_required=7)
    judge_all(later, {**people, "newcomer": newcomer}, seed=9, planted=planted)
    run = fit()
    assert run.status == JobStatus.SUCCEEDED, run.error
    assert all(fig["warm"] for fig in run.metrics["dimensions"].values())
    assert _reliability("newcomer", "overall").judgements == 40
    assert _reliability("newcomer", "overall").informativeness > 0.35


def test_nothing_changed_skips_the_fit_and_a_revision_is_a_change(world):
    people, _ = world
    first = fit()
    stamp = _reliability("careful", "overall").updated_at

    again = fit()
    assert again.status == JobStatus.SUCCEEDED
    assert again.metrics == {"fingerprint": first.metrics["fingerprint"], "skipped": True, "same_as_run": first.pk}
    assert again.judgements_used == 0
    assert _reliability("careful", "overall").updated_at == stamp
    # The schedule does not even create a run.
    assert reliability.reliabilities_refresh() is None
    assert ReliabilityRun.objects.count() == 2

    # A revision changes answers in place (no timestamp): the fingerprint sees it.
    judgement = Judgement.objects.filter(annotator=people["careful"]).first()
    screen = "tie" if judgement.overall != "tie" else "left"
    queue.judgement_revise(
        annotator=people["careful"], pair_id=judgement.pair_id, answers=dict.fromkeys(DIMENSION_KEYS, screen)
    )
    refreshed = reliability.reliabilities_refresh()
    assert refreshed is not None and refreshed.status == JobStatus.SUCCEEDED
    assert refreshed.metrics["skipped"] is False and refreshed.judgements_used == PAIRS * 6
    assert _reliability("careful", "overall").updated_at > stamp

    forced = fit(force=True)
    assert forced.metrics["skipped"] is False


def test_no_judgement_at_all_is_a_successful_empty_fit():
    run = fit()
    assert (run.status, run.judgements_used, run.metrics["pairs"]) == (JobStatus.SUCCEEDED, 0, 0)
    assert not AnnotatorReliability.objects.exists() and not DimensionPrior.objects.exists()


def test_an_unexpected_error_fails_the_run_writes_nothing_and_a_retry_completes(
    world, monkeypatch, django_capture_on_commit_callbacks
):
    def broken(votes, fits):
        raise ZeroDivisionError("a bug nobody expected")

    monkeypatch.setattr(reliability, "spammers_find", broken)
    run = fit()
    assert run.status == JobStatus.FAILED and run.finished_at is not None
    assert run.error.startswith("unexpected error (ZeroDivisionError: a bug nobody expected)")
    # Reliabilities, priors and flags are one transaction: the failure left none of them.
    assert not AnnotatorReliability.objects.exists() and not DimensionPrior.objects.exists()
    assert not AnnotatorFlag.objects.exists()

    monkeypatch.undo()
    with django_capture_on_commit_callbacks(execute=True):
        reliability.reliability_run_retry(run_id=run.pk)
    run.refresh_from_db()
    assert (run.status, run.error, run.progress, run.annotators_flagged) == (JobStatus.SUCCEEDED, "", 1.0, 2)
    assert AnnotatorReliability.objects.count() == 6 * 4


def test_one_live_run_at_a_time_and_a_stale_one_does_not_block():
    live, created = reliability.reliability_run_request(enqueue=False)
    assert created
    assert reliability.reliability_run_request(enqueue=False) == (live, False)
    with pytest.raises(CommandError, match=f"reliability fit {live.pk} is already queued"):
        call_command("fit_reliabilities", stdout=io.StringIO())
    assert reliability.reliabilities_refresh() is None
    assert ReliabilityRun.objects.count() == 1

    # A run whose worker died long ago stays "running"; it no longer stands in the way.
    stale = timezone.now() - reliability.RUN_STALE_AFTER - timedelta(minutes=1)
    ReliabilityRun.objects.filter(pk=live.pk).update(status=JobStatus.RUNNING, created_at=stale)
    fresh, created = reliability.reliability_run_request(enqueue=False)
    assert created and fresh.pk != live.pk


def test_the_command_and_the_scheduled_task_run_the_same_job(world):
    out = io.StringIO()
    call_command("fit_reliabilities", stdout=out)
    run = ReliabilityRun.objects.get()
    assert out.getvalue().strip() == (
        f"fit {run.pk}: {PAIRS * 6} judgements of 6 annotators on {PAIRS} pairs; "
        "2 annotator(s) newly flagged as spammers"
    )
    out = io.StringIO()
    call_command("fit_reliabilities", stdout=out)
    assert "no judgement changed" in out.getvalue()

    entry = settings.CELERY_BEAT_SCHEDULE["reliabilities-refresh"]
    app.loader.import_default_modules()
    task = app.tasks[entry["task"]]
    assert task.apply().get() == "unchanged"
    Judgement.objects.filter(pk=Judgement.objects.order_by("id").first().pk).delete()
    assert task.apply().get() == JobStatus.SUCCEEDED
    assert ReliabilityRun.objects.count() == 3 and ReliabilityRun.objects.first().judgements_used == PAIRS * 6 - 1


# --- pages ---------------------------------------------------------------------------------------------------


def test_the_quality_page_shows_each_annotator_s_reliability_and_informativeness(client, world):
    fit()
    client.force_login(make_user(roles.REVIEWER))
    page = client.get(reverse("annotation:label-quality")).content.decode()
    for name in (*PLANTED, *SPAMMERS):
        for key in DIMENSION_KEYS:
            row = _reliability(name, key)
            assert f'data-of="{name} {key}"' in page
            assert f'data-figure="reliability">{row.accuracy:.2f}</td>' in page
    assert 'id="refit"' in page and "Succeeded" in page


def test_refit_queues_a_run_for_quality_staff_only(client, world, django_capture_on_commit_callbacks):
    url = reverse("annotation:label-reliability-refit")
    client.force_login(make_user(roles.ANNOTATOR))
    assert client.post(url).status_code == 403
    reviewer = make_user(roles.REVIEWER)
    client.force_login(reviewer)
    assert client.get(url).status_code == 405
    assert not ReliabilityRun.objects.exists()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url)
    assert response.status_code == 302 and response["Location"].endswith("/label/quality/#reliability-run")
    run = ReliabilityRun.objects.get()
    assert (run.status, run.created_by, run.annotators_flagged) == (JobStatus.SUCCEEDED, reviewer, 2)
    assert _reliability("careful", "aesthetics").judgements == PAIRS


def test_an_annotator_sees_their_own_reliability_on_their_home(client, world):
    people, _ = world
    client.force_login(people["careful"])
    assert 'id="my-reliability"' not in client.get("/").content.decode()
    fit()
    page = client.get("/").content.decode()
    assert 'id="my-reliability"' in page
    assert f"{_reliability('careful', 'alignment').accuracy:.2f}" in page
    assert AnnotatorReliability.objects.filter(annotator=people["careful"]).count() == 4


@pytest.fixture
def flags():
    """Two open flags on annotators, and the reviewer who looks at them."""
    spammer, odd = make_user(roles.ANNOTATOR, username="spammer"), make_user(roles.ANNOTATOR, username="odd")
    return (
        AnnotatorFlag.objects.create(annotator=spammer, kind=FlagKind.SPAMMER, detail="near-random answers"),
        AnnotatorFlag.objects.create(annotator=odd, kind=FlagKind.CONTRADICTS, detail="contradicts the model"),
    )


def _review(client, flag_id, action="dismiss", note="checked their last 50 pairs: fine"):
    return client.post(reverse("annotation:label-flag-review"), {"flag_id": flag_id, "action": action, "note": note})


def _open() -> set[int]:
    return set(AnnotatorFlag.objects.filter(reviewed_at__isnull=True).values_list("pk", flat=True))


def test_flags_are_refused_to_annotators_and_anonymous_users(client, flags):
    assert client.get(reverse("annotation:label-flags")).status_code == 302  # to the login form
    assert _review(client, flags[0].pk).status_code == 302
    client.force_login(make_user(roles.ANNOTATOR))
    assert client.get(reverse("annotation:label-flags")).status_code == 403
    assert _review(client, flags[0].pk).status_code == 403
    assert _review(client, flags[0].pk, action="stop").status_code == 403
    assert _open() == {flags[0].pk, flags[1].pk}
    assert not AnnotatorProfile.objects.filter(labeling_enabled=False).exists()


@pytest.mark.parametrize(
    ("data", "status"),
    [
        ({"action": "dismiss", "note": ""}, 400),  # a dismissal needs a note
        ({"action": "dismiss", "note": "   "}, 400),
        ({"action": "approve", "note": "x"}, 400),
        ({"flag_id": "abc", "action": "stop"}, 400),
        ({"flag_id": "99999999999999999999", "action": "stop"}, 400),
        ({"flag_id": "-3", "action": "stop"}, 400),
        ({"action": "dismiss", "note": "bad\x00byte"}, 400),
        ({"action": "dismiss", "note": "x" * 2001}, 400),
        ({"flag_id": "987654", "action": "stop"}, 404),
    ],
)
def test_bad_reviews_answer_4xx_and_change_nothing(client, flags, data, status):
    client.force_login(make_user(roles.REVIEWER))
    response = client.post(reverse("annotation:label-flag-review"), {"flag_id": flags[0].pk, **data})
    assert response.status_code == status
    assert _open() == {flags[0].pk, flags[1].pk}
    assert not AnnotatorProfile.objects.filter(labeling_enabled=False).exists()


def test_a_reviewer_dismisses_a_flag_with_a_note_once(client, flags):
    reviewer = make_user(roles.REVIEWER)
    client.force_login(reviewer)
    page = client.get(reverse("annotation:label-flags")).content.decode()
    assert f'id="flag-{flags[0].pk}"' in page and f'id="flag-{flags[1].pk}"' in page

    assert _review(client, flags[1].pk).status_code == 302
    flag = AnnotatorFlag.objects.get(pk=flags[1].pk)
    assert (flag.reviewed_by, flag.review_note) == (reviewer, "checked their last 50 pairs: fine")
    assert flag.reviewed_at is not None and _open() == {flags[0].pk}
    assert AnnotatorProfile.objects.get_or_create(user=flag.annotator)[0].labeling_enabled
    # Reviewed already: 409, the review stays as it was.
    assert _review(client, flags[1].pk, note="another view").status_code == 409
    assert AnnotatorFlag.objects.get(pk=flags[1].pk).review_note == "checked their last 50 pairs: fine"


def test_stopping_a_flagged_annotator_disables_their_labeling_and_closes_their_flags(client, flags):
    spammer = flags[0].annotator
    second = AnnotatorFlag.objects.create(annotator=spammer, kind=FlagKind.CONTRADICTS, detail="also this")
    make_pairs(1)
    queue.pair_claim(annotator=spammer)
    assert spammer.pair_leases.count() == 1
    client.force_login(make_user(roles.ADMIN))  # admins review flags too

    assert _review(client, flags[0].pk, action="stop", note="").status_code == 302
    profile = AnnotatorProfile.objects.get(user=spammer)
    assert (profile.labeling_enabled, profile.judgements_excluded) == (False, True)
    assert f"spammer flag {flags[0].pk}" in profile.note
    assert not spammer.pair_leases.exists()  # the pair went back to the queue
    assert _open() == {flags[1].pk}
    assert AnnotatorFlag.objects.get(pk=second.pk).review_note == "labeling stopped"
    with pytest.raises(queue.LabelingDisabled):
        queue.pair_claim(annotator=spammer)


def test_a_reviewer_cannot_review_a_flag_on_themselves(client):
    reviewer = make_user(roles.REVIEWER, username="rev")
    mine = AnnotatorFlag.objects.create(annotator=reviewer, kind=FlagKind.SPAMMER, detail="near-random answers")
    client.force_login(reviewer)
    page = client.get(reverse("annotation:label-flags")).content.decode()
    assert "This flag is about you" in page
    assert _review(client, mine.pk).status_code == 403
    assert _review(client, mine.pk, action="stop").status_code == 403
    assert _open() == {mine.pk}
    assert not AnnotatorProfile.objects.filter(user=reviewer, labeling_enabled=False).exists()
    # Another reviewer can.
    client.force_login(make_user(roles.REVIEWER))
    assert _review(client, mine.pk).status_code == 302 and not _open()


def test_a_dismissed_spammer_is_flagged_again_only_after_new_judgements():
    people, later = make_world(extra_pairs=10)
    fit()
    reviewer = make_user(roles.REVIEWER)
    for flag in AnnotatorFlag.objects.all():
        annotator_flag_dismiss(reviewer=reviewer, flag_id=flag.pk, note="new, give them time")
    # Another annotator's work changes the data: the spammers, seen already, are not flagged again.
    judge_all(later[:5], {"careful": people["careful"]}, seed=11)
    assert fit().annotators_flagged == 0
    # The random spammer judges more: a new look is due.
    judge_all(later[5:], {"random": people["random"]}, seed=12)
    run = fit()
    assert run.annotators_flagged == 1
    assert AnnotatorFlag.objects.get(reviewed_at__isnull=True).annotator == people["random"]
