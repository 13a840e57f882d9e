"""Guided queue order: fresh pairs served most uncertain first with a random share kept, on every claim path.

Claims here are real (`queue.pair_claim`): on PostgreSQL once through the claim function and once through the
portable ORM path, and on SQLite in CI's SQLite pass. A scoring run's rows are made directly (the GPU job
that fills them is another part's).
"""

import random
import threading

import pytest
from django.db import connection
from django.test import Client

from annotation import roles
from annotation.labeling import queue, queue_order
from annotation.labeling.queue_order import (
    QueueOrderError,
    queue_order_apply,
    queue_order_current,
    queue_order_from_run,
    queue_order_request,
    queue_order_reset,
)
from annotation.labeling.tests.labeling_factories import judged_by, make_pairs
from annotation.models import Category, Pair, Prompt, QueueFront
from annotation.models.labeling import QUEUE_RANK_LAST, QueueOrder
from annotation.tests.factories import make_user
from mhp.jobs import JobStatus
from training.models import PairScore, PairScoringRun

pytestmark = pytest.mark.django_db

# A draw whose random picks all lie outside the ten most uncertain pairs of `scored_pairs`.
SEED = 3
SHARE = 0.2


@pytest.fixture(params=["sql", "orm"])
def claim_path(request, monkeypatch):
    """Both claim paths on PostgreSQL (SQLite has only the ORM one: once is enough there)."""
    if request.param == "sql" and connection.vendor != "postgresql":
        pytest.skip("the claim function is PostgreSQL's")
    if request.param == "orm" and connection.vendor == "postgresql":
        monkeypatch.setattr(queue, "USE_POSTGRES_SQL", False)
    return request.param


def _scored(pairs: list[Pair], uncertainty_of: dict[int, float]) -> PairScoringRun:
    """A succeeded run whose four probabilities for each pair give it exactly `uncertainty_of[pair]`."""
    run = PairScoringRun.objects.create(status=JobStatus.SUCCEEDED, checkpoint_path="/checkpoints/test.pt")
    rows = []
    for pair in pairs:
        p = 0.5 + (1.0 - uncertainty_of[pair.pk]) / 2  # 1 - |2p - 1| = u on every dimension
        rows.append(PairScore(run=run, pair=pair, aesthetics=p, detail=p, alignment=p, overall=p))
    PairScore.objects.bulk_create(rows)
    return run


@pytest.fixture
def scored_pairs():
    """100 fresh pairs with distinct uncertainties in an order unrelated to their ids, and their run."""
    pairs = make_pairs(100)
    shuffled = random.Random(3).sample(range(100), 100)
    uncertainty_of = {pair.pk: (shuffled[index] + 0.5) / 100 for index, pair in enumerate(pairs)}
    return pairs, uncertainty_of, _scored(pairs, uncertainty_of)


def _claims(count: int, annotator=None) -> list[int]:
    """The pairs one annotator is handed, one after another (each declined once seen: never offered again)."""
    annotator = annotator or make_user(roles.ANNOTATOR)
    served = []
    for _ in range(count):
        lease = queue.pair_claim(annotator=annotator, rng=random.Random(0))
        if lease is None:
            break
        served.append(lease.pair_id)
        queue.pair_skip(annotator=annotator, pair_id=lease.pair_id, reason="seen")
    return served


def test_guided_order_serves_the_most_uncertain_first_while_keeping_the_random_share(claim_path, scored_pairs):
    pairs, uncertainty_of, run = scored_pairs
    order = queue_order_from_run(run, random_share=SHARE, seed=SEED)
    assert (order.status, order.guided, order.scoring_run_id, order.random_share) == ("succeeded", True, run.pk, SHARE)
    assert order.pairs_ranked == 100

    served = _claims(100)
    by_uncertainty = sorted(uncertainty_of, key=uncertainty_of.get, reverse=True)
    # Share 0.2: every fifth slot is a random pick, the others take the most uncertain pairs left.
    random_slots = [served[i] for i in range(4, 100, 5)]
    guided_slots = [pk for i, pk in enumerate(served) if i % 5 != 4]
    assert [served[i] for i in (0, 1, 2, 3, 5, 6, 7, 8)] == by_uncertainty[:8]
    assert all(by_uncertainty.index(pk) >= 10 for pk in random_slots[:2])
    assert guided_slots == [pk for pk in by_uncertainty if pk not in random_slots]
    assert sorted(served) == sorted(uncertainty_of)
    # Random, not by uncertainty: the picks are spread over the whole range.
    assert random_slots != sorted(random_slots, key=uncertainty_of.get, reverse=True)
    assert {by_uncertainty.index(pk) // 25 for pk in random_slots} == {0, 1, 2, 3}


def test_partly_judged_pairs_still_come_before_the_guided_fresh_ones(claim_path, scored_pairs):
    pairs, uncertainty_of, run = scored_pairs
    queue_order_from_run(run, random_share=SHARE, seed=SEED)
    least_uncertain = min(uncertainty_of, key=uncertainty_of.get)
    judged_by(make_user(roles.ANNOTATOR), [Pair.objects.get(pk=least_uncertain)])
    assert _claims(2) == [least_uncertain, max(uncertainty_of, key=uncertainty_of.get)]


def test_unscored_and_later_pairs_come_after_the_ranked_ones_and_reset_returns_id_order(claim_path):
    pairs = make_pairs(6)
    scored, unscored = pairs[:4], pairs[4:]
    run = _scored(scored, {pair.pk: u for pair, u in zip(scored, (0.1, 0.9, 0.5, 0.7), strict=True)})
    queue_order_from_run(run, random_share=0.0, seed=SEED)
    later = make_pairs(1)[0]
    assert Pair.objects.get(pk=later.pk).queue_rank == QUEUE_RANK_LAST
    assert _claims(7) == [
        scored[1].pk,
        scored[3].pk,
        scored[2].pk,
        scored[0].pk,
        unscored[0].pk,
        unscored[1].pk,
        later.pk,
    ]

    reset = queue_order_reset()
    assert not reset.guided and QueueOrder.objects.first() == reset
    assert not Pair.objects.exclude(queue_rank=QUEUE_RANK_LAST).exists()
    assert _claims(7) == sorted(pair.pk for pair in [*pairs, later])


def test_a_new_order_replaces_the_previous_one_and_moves_the_front(scored_pairs):
    pairs, uncertainty_of, run = scored_pairs
    queue_order_from_run(run, random_share=SHARE, seed=SEED)
    # A run that scored only three pairs: those three first, then every other pair by id.
    few = pairs[10:13]
    second_run = _scored(few, {pair.pk: u for pair, u in zip(few, (0.2, 0.3, 0.1), strict=True)})
    queue_order_from_run(second_run, random_share=0.0, seed=SEED)
    assert Pair.objects.exclude(queue_rank=QUEUE_RANK_LAST).count() == 3
    served = _claims(5)
    assert served[:3] == [few[1].pk, few[0].pk, few[2].pk]
    assert served[3:] == [pk for pk in sorted(uncertainty_of) if pk not in {*served[:3]}][:2]
    if connection.vendor == "postgresql":
        first = Pair.objects.get(pk=few[1].pk).queue_rank
        assert QueueFront.objects.filter(is_gold=False).values_list("fresh_rank", "fresh_from").get() == (
            first,
            few[1].pk,
        )


def test_random_picks_take_the_prompt_categories_in_turn():
    # Five pairs of one category, two of another: an all-random order serves both categories early.
    common, rare = make_pairs(5), make_pairs(2)
    first, second = Category.objects.filter(parent=None)[:2]
    Prompt.objects.filter(pk=common[0].prompt_id).update(category=first)
    Prompt.objects.filter(pk=rare[0].prompt_id).update(category=second)
    pairs = [*common, *rare]
    run = _scored(pairs, {pair.pk: 0.5 for pair in pairs})
    queue_order_from_run(run, random_share=1.0, seed=SEED)
    served = _claims(7)
    rare_ids = {pair.pk for pair in rare}
    assert len({*served[:2]} & rare_ids) == 1 and len({*served[2:4]} & rare_ids) == 1


@pytest.mark.parametrize(
    ("status", "share"),
    [(JobStatus.RUNNING, 0.2), (JobStatus.FAILED, 0.2), (JobStatus.SUCCEEDED, -0.1), (JobStatus.SUCCEEDED, 1.5)],
)
def test_an_order_that_cannot_apply_is_refused_and_changes_nothing(status, share):
    pairs = make_pairs(3)
    run = _scored(pairs, {pair.pk: 0.5 for pair in pairs})
    PairScoringRun.objects.filter(pk=run.pk).update(status=status)
    run.refresh_from_db()
    with pytest.raises(QueueOrderError):
        queue_order_from_run(run, random_share=share, seed=SEED)
    assert not QueueOrder.objects.exists()
    assert not Pair.objects.exclude(queue_rank=QUEUE_RANK_LAST).exists()


URL = "/label/queue-order/"


def _client(role: str | None):
    client = Client()
    if role is not None:
        client.force_login(make_user(role))
    return client


@pytest.mark.parametrize(("role", "status"), [(None, 302), (roles.ANNOTATOR, 403), (roles.REVIEWER, 403)])
def test_only_admins_see_or_change_the_queue_order(role, status):
    pairs = make_pairs(2)
    run = _scored(pairs, {pairs[0].pk: 0.1, pairs[1].pk: 0.9})
    client = _client(role)
    assert client.get(URL).status_code == status
    assert client.post(URL, {"action": "apply", "scoring_run": run.pk, "random_share": "0.2"}).status_code == status
    assert not QueueOrder.objects.exists()


def test_admin_applies_and_resets_an_order_through_the_page(django_capture_on_commit_callbacks):
    pairs = make_pairs(2)
    run = _scored(pairs, {pairs[0].pk: 0.1, pairs[1].pk: 0.9})
    client = _client(roles.ADMIN)
    page = client.get(URL)
    assert page.status_code == 200 and b"id order" in page.content
    assert b'value="0.2"' in page.content  # QUEUE_RANDOM_SHARE

    # The page queues a job; until its task ran, the order in force is the old one and the job is shown.
    with django_capture_on_commit_callbacks() as queued:
        response = client.post(URL, {"action": "apply", "scoring_run": run.pk, "random_share": "0"})
    assert response.status_code == 302 and len(queued) == 1
    assert "Being applied: guided by scoring run" in client.get(URL).content.decode()
    assert not Pair.objects.exclude(queue_rank=QUEUE_RANK_LAST).exists()
    queued[0]()  # the Celery task, eager here (no broker)
    assert QueueOrder.objects.get().status == JobStatus.SUCCEEDED
    assert list(Pair.objects.order_by("queue_rank").values_list("pk", flat=True)) == [pairs[1].pk, pairs[0].pk]
    content = client.get(URL).content.decode()
    assert f"guided by scoring run {run.pk}" in content and "Being applied" not in content

    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(URL, {"action": "reset"}).status_code == 302
    assert not Pair.objects.exclude(queue_rank=QUEUE_RANK_LAST).exists()
    assert [order.guided for order in QueueOrder.objects.all()] == [False, True]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"action": "shuffle"},
        {"action": "apply", "random_share": "0.2"},
        {"action": "apply", "scoring_run": "RUN", "random_share": "0.2"},
        {"action": "apply", "scoring_run": "99999999999999999999999", "random_share": "0.2"},
        {"action": "apply", "scoring_run": "424242", "random_share": "0.2"},
        {"action": "apply", "scoring_run": "FAILED", "random_share": "0.2"},
        {"action": "apply", "scoring_run": "OK", "random_share": "1.5"},
        {"action": "apply", "scoring_run": "OK", "random_share": "-0.1"},
        {"action": "apply", "scoring_run": "OK", "random_share": "nan"},
        {"action": "apply", "scoring_run": "OK", "random_share": "0.2\x00"},
        {"action": "apply", "scoring_run": "OK"},
    ],
)
def test_a_malformed_order_is_refused_with_400_and_changes_nothing(body):
    pairs = make_pairs(2)
    run = _scored(pairs, {pairs[0].pk: 0.1, pairs[1].pk: 0.9})
    failed = PairScoringRun.objects.create(status=JobStatus.FAILED, checkpoint_path="/checkpoints/failed.pt")
    body = {key: {"OK": run.pk, "FAILED": failed.pk}.get(value, value) for key, value in body.items()}
    response = _client(roles.ADMIN).post(URL, body)
    assert response.status_code == 400
    assert not QueueOrder.objects.exists()
    assert not Pair.objects.exclude(queue_rank=QUEUE_RANK_LAST).exists()


def test_other_methods_are_refused():
    assert _client(roles.ADMIN).put(URL).status_code == 405


@pytest.mark.django_db(transaction=True)
def test_admin_clicks_from_home_to_the_queue_order_and_applies_one(browser_login, live_server):
    pairs = make_pairs(4)
    run = _scored(pairs, {pair.pk: u for pair, u in zip(pairs, (0.1, 0.9, 0.5, 0.7), strict=True)})
    make_user(roles.ADMIN, username="boss")
    page = browser_login("boss")
    # The home's own link (the nav bar's copy sits in a closed menu).
    page.locator("a:visible:text-is('Queue order')").first.click()
    page.wait_for_url(f"{live_server.url}{URL}")
    assert "id order" in page.locator("#current-order").inner_text()

    page.check(f"#run-{run.pk}")
    page.fill("#id_random_share", "0")
    page.click("button[value=apply]")
    page.wait_for_selector("text=queued: the page shows it in force once its job is done")
    assert f"guided by scoring run {run.pk}" in page.locator("#current-order").inner_text()
    ranked = Pair.objects.order_by("queue_rank", "id").values_list("pk", flat=True)
    assert list(ranked) == [pairs[1].pk, pairs[3].pk, pairs[2].pk, pairs[0].pk]

    page.click("button[value=reset]")
    page.wait_for_selector("text=Id order queued")
    assert "id order" in page.locator("#current-order").inner_text()
    assert not Pair.objects.exclude(queue_rank=QUEUE_RANK_LAST).exists()


def test_an_order_whose_job_fails_changes_nothing():
    # The run is deleted between the request and its job: the job fails with a message, no rank moves.
    pairs = make_pairs(3)
    run = _scored(pairs, {pair.pk: 0.5 for pair in pairs})
    order = queue_order_request(run=run, random_share=0.2)
    run.delete()
    order = queue_order_apply(order.pk)
    assert order.status == JobStatus.FAILED and "deleted" in order.error
    assert not Pair.objects.exclude(queue_rank=QUEUE_RANK_LAST).exists()
    assert queue_order_current() is None


def _in_another_connection(read):
    """`read()` on another database connection: what a claim there would see of uncommitted writes."""
    result = []

    def run():
        try:
            result.append(read())
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return result[0]


def _served_order_and_front() -> tuple[list[int], int]:
    """The fresh pairs in (rank, id) order, and where the unjudged non-gold pairs' front stands."""
    fresh = Pair.objects.filter(judgements_done=0).order_by("queue_rank", "id").values_list("pk", flat=True)
    return list(fresh), QueueFront.objects.get(is_gold=False).fresh_from


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_order_writes_its_ranks_in_short_transactions_best_pairs_first(monkeypatch):
    # Row locks last until commit and claims skip locked rows: every chunk of ranks commits on its own with the
    # fronts moved to it, the new order's best pairs first, then the order in force for the pairs not reached.
    pairs = make_pairs(7)
    scored = pairs[:6]
    old_order = [scored[i] for i in (0, 1, 2, 3, 4, 5)]
    new_order = [scored[i] for i in (5, 3, 1, 4, 2, 0)]
    queue_order_from_run(_scored(old_order, {p.pk: 1 - i / 10 for i, p in enumerate(old_order)}), random_share=0.0)
    new_run = _scored(new_order, {p.pk: 1 - i / 10 for i, p in enumerate(new_order)})
    monkeypatch.setattr(queue_order, "_RANK_CHUNK", 2)
    seen, progress = [], queue_order.job_progress
    monkeypatch.setattr(
        queue_order,
        "job_progress",
        lambda job, fraction: seen.append(_in_another_connection(_served_order_and_front)) or progress(job, fraction),
    )
    queue_order_from_run(new_run, random_share=0.0)

    # Seen from another connection after each chunk: the chunks written so far in the new order, then the old
    # order's remaining pairs, then the unscored pair; the front on the new first pair.
    unscored = pairs[6].pk
    for written, (served, front) in zip((2, 4, 6), seen, strict=True):
        reached = [p.pk for p in new_order[:written]]
        assert served == reached + [p.pk for p in old_order if p.pk not in reached] + [unscored]
        assert front == new_order[0].pk
    assert _claims(7) == [p.pk for p in new_order] + [unscored]
    assert Pair.objects.exclude(queue_rank=QUEUE_RANK_LAST).count() == 6


def test_an_order_that_fails_half_way_leaves_its_first_chunks_then_the_order_in_force(monkeypatch):
    pairs = make_pairs(8)
    old, new = pairs[:2], pairs[2:8]
    kept = queue_order_from_run(_scored(old, {old[0].pk: 0.2, old[1].pk: 0.8}), random_share=0.0)
    new_run = _scored(new, {pair.pk: (index + 1) / 10 for index, pair in enumerate(new)})
    monkeypatch.setattr(queue_order, "_RANK_CHUNK", 2)
    ranks_set = queue_order._ranks_set
    calls = []

    def fail_on_second_chunk(ids, ranks):
        calls.append(ids)
        if len(calls) == 2:
            raise OSError("connection lost")
        ranks_set(ids, ranks)

    monkeypatch.setattr(queue_order, "_ranks_set", fail_on_second_chunk)
    failed = queue_order_from_run(new_run, random_share=0.0)
    assert failed.status == JobStatus.FAILED and "connection lost" in failed.error
    assert queue_order_current() == kept
    # The chunk the failed order wrote (its two most uncertain), the order in force, then every other pair by id.
    assert _claims(8) == [new[5].pk, new[4].pk, old[1].pk, old[0].pk, *(pair.pk for pair in new[:4])]

    monkeypatch.setattr(queue_order, "_ranks_set", ranks_set)
    queue_order_reset()
    assert not Pair.objects.exclude(queue_rank=QUEUE_RANK_LAST).exists()


def test_when_ranks_would_run_out_the_ranks_in_use_are_cleared_first(monkeypatch):
    pairs = make_pairs(4)
    queue_order_from_run(_scored(pairs[:2], {pairs[0].pk: 0.9, pairs[1].pk: 0.1}), random_share=0.0)
    Pair.objects.filter(pk=pairs[1].pk).update(queue_rank=2)  # as if thousands of orders had gone before
    queue_order_from_run(_scored(pairs[2:], {pairs[2].pk: 0.1, pairs[3].pk: 0.9}), random_share=0.0)
    ranks = dict(Pair.objects.values_list("pk", "queue_rank"))
    assert ranks == {
        pairs[0].pk: QUEUE_RANK_LAST,
        pairs[1].pk: QUEUE_RANK_LAST,
        pairs[3].pk: QUEUE_RANK_LAST - 2,
        pairs[2].pk: QUEUE_RANK_LAST - 1,
    }
