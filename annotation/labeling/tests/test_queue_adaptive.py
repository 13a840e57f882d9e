"""Adaptive redundancy on hand-made judgement sequences, through the queue's real claim and submit.

Every test runs on both queue paths: the PostgreSQL functions (`sql`, PostgreSQL only) and the portable
ORM path (`orm`, on PostgreSQL with the functions switched off, and on SQLite). Answers below are
canonical (first/tie/second); `judge` turns them into what the annotator's screen showed.
"""

import uuid

import numpy as np
import pytest

from annotation import roles
from annotation.dimensions import DIMENSION_KEYS
from annotation.images.services.pair_builder import pairs_build
from annotation.images.services.pair_seed import pairs_seed
from annotation.images.services.pairs import pair_get_or_create
from annotation.labeling import consensus, queue
from annotation.labeling.services import pair_gold_set
from annotation.models import AnnotatorReliability, DimensionPrior, Judgement, Pair, Prompt, PromptStatus
from annotation.tests.factories import make_generator, make_image, make_pair, make_prompt, make_user

pytestmark = pytest.mark.django_db

_TO_SCREEN = {
    side: {canonical: screen for screen, canonical in mapping.items()} for side, mapping in queue._TO_CANONICAL.items()
}
AGREE = dict.fromkeys(DIMENSION_KEYS, "first")


@pytest.fixture(params=[pytest.param("sql", marks=pytest.mark.postgres), "orm"])
def path(request, monkeypatch):
    if request.param == "orm":
        monkeypatch.setattr(queue, "USE_POSTGRES_SQL", False)
    else:
        assert queue._sql_path()
    return request.param


@pytest.fixture(autouse=True)
def adaptive(settings):
    settings.PAIR_REDUNDANCY = "adaptive"
    settings.PAIR_JUDGEMENTS_MIN, settings.PAIR_JUDGEMENTS_MAX = 2, 5
    settings.PAIR_SETTLED_POSTERIOR = 0.75
    settings.PAIR_JUDGEMENTS_REQUIRED = 3
    settings.GOLD_PAIR_RATE = 0.0


def answers(**changed: str) -> dict[str, str]:
    return {**AGREE, **changed}


def judge(pair: Pair, canonical: dict[str, str], user=None):
    """A new annotator claims `pair` (the only open one) and submits these canonical answers."""
    user = user or make_user(roles.ANNOTATOR)
    lease = queue.pair_claim(annotator=user)
    assert lease is not None and lease.pair_id == pair.pk
    screen = {key: _TO_SCREEN[lease.left_side][value] for key, value in canonical.items()}
    queue.judgement_submit(annotator=user, pair_id=pair.pk, answers=screen, client_token=uuid.uuid4())
    return user


def counts(pair: Pair) -> tuple[int, int]:
    pair.refresh_from_db()
    return pair.judgements_done, pair.judgements_required


def closed() -> bool:
    """Nobody new is handed the pair."""
    return queue.pair_claim(annotator=make_user(roles.ANNOTATOR)) is None


def reliable(user, accuracy: float, dimensions=DIMENSION_KEYS) -> None:
    for dimension in dimensions:
        AnnotatorReliability.objects.create(
            annotator=user,
            dimension=dimension,
            confusion=consensus.confusion_from_accuracy(accuracy).tolist(),
            accuracy=accuracy,
            informativeness=0.9,
            judgements=500,
        )


def test_a_new_pair_asks_for_the_policys_first_step(settings):
    assert make_pair().judgements_required == 2
    settings.PAIR_REDUNDANCY = "fixed"
    assert make_pair().judgements_required == 3
    prompt, generator = make_prompt(), make_generator()
    named, _ = pair_get_or_create(
        image_a=make_image(prompt, generator), image_b=make_image(prompt, generator), judgements_required=4
    )
    assert named.judgements_required == 4


@pytest.mark.parametrize("policy, count", [("adaptive", 2), ("fixed", 3)])
def test_built_and_seeded_pairs_ask_for_the_policys_first_step(settings, policy, count):
    settings.PAIR_REDUNDANCY = policy
    prompt, generator = make_prompt(), make_generator()
    Prompt.objects.filter(pk=prompt.pk).update(status=PromptStatus.ACCEPTED)
    for _ in range(3):
        make_image(prompt, generator)
    pairs_build(per_prompt=3, prompt_ids=[prompt.pk])
    pairs_seed(pairs=6, prompts=1, generators=2)
    assert Pair.objects.count() == 9
    assert set(Pair.objects.values_list("judgements_required", flat=True)) == {count}


def test_two_agreeing_judgements_close_the_pair(path):
    pair = make_pair()
    judge(pair, AGREE)
    assert counts(pair) == (1, 2)
    judge(pair, AGREE)
    assert counts(pair) == (2, 2)
    assert closed()


def test_a_disagreement_on_one_dimension_asks_for_a_third_that_settles_it(path):
    pair = make_pair()
    judge(pair, AGREE)
    judge(pair, answers(overall="second"))
    assert counts(pair) == (2, 3)
    judge(pair, AGREE)  # 2 against 1 for "first": posterior 0.79 with unknown judges
    assert counts(pair) == (3, 3)
    assert closed()


def test_a_reliable_judges_answer_settles_what_unknown_judges_would_not(path):
    expert = make_user(roles.ANNOTATOR)
    reliable(expert, 0.95)
    pair = make_pair()
    judge(pair, answers(overall="second"), user=expert)
    judge(pair, AGREE)
    assert counts(pair) == (2, 2)  # "second" at 0.87: the expert outweighs an unknown judge
    assert closed()
    unknown = make_pair()
    judge(unknown, answers(overall="second"))
    judge(unknown, AGREE)
    assert counts(unknown) == (2, 3)


def test_a_reliability_on_another_dimension_does_not_count(path):
    expert = make_user(roles.ANNOTATOR)
    reliable(expert, 0.95, dimensions=("aesthetics",))
    pair = make_pair()
    judge(pair, answers(overall="second"), user=expert)
    judge(pair, AGREE)
    assert counts(pair) == (2, 3)


def test_judgements_never_exceed_the_maximum(path):
    pair = make_pair()
    endless = ("first", "second", "tie", "first", "second")
    for step, answer in enumerate(endless, start=1):
        judge(pair, answers(aesthetics=answer))
        assert counts(pair) == (step, min(max(step + 1, 2), 5))
    assert counts(pair) == (5, 5)
    assert closed()


def test_a_dimension_prior_with_poor_judges_asks_a_third_even_when_two_agree(path):
    DimensionPrior.objects.create(
        dimension="detail",
        prior=[0.4, 0.2, 0.4],
        default_confusion=consensus.confusion_from_accuracy(0.5).tolist(),
    )
    pair = make_pair()
    judge(pair, AGREE)
    judge(pair, AGREE)
    assert counts(pair) == (2, 3)


def test_gold_pairs_keep_the_fixed_count(path):
    pair = make_pair()
    reviewer = make_user(roles.REVIEWER)
    pair_gold_set(reviewer=reviewer, pair_id=pair.pk, answers=AGREE)
    assert counts(pair) == (0, 3)
    for answer in ("first", "second", "tie"):
        judge(pair, answers(overall=answer))
    assert counts(pair) == (3, 3)
    assert closed()


def test_the_fixed_policy_never_asks_for_more(path, settings):
    settings.PAIR_REDUNDANCY = "fixed"
    pair = make_pair()
    for answer in ("first", "second", "tie"):
        judge(pair, answers(overall=answer))
    assert counts(pair) == (3, 3)
    assert closed()


def test_a_revision_that_unsettles_a_closed_pair_asks_for_one_more(path):
    pair = make_pair()
    first = judge(pair, AGREE)
    judge(pair, AGREE)
    assert counts(pair) == (2, 2)
    judgement = Judgement.objects.get(pair=pair, annotator=first)
    screen = {key: _TO_SCREEN[judgement.left_side][value] for key, value in answers(alignment="second").items()}
    queue.judgement_revise(annotator=first, pair_id=pair.pk, answers=screen)
    assert counts(pair) == (2, 3)
    # Revising back does not lower the count: the slot may already be leased.
    screen = {key: _TO_SCREEN[judgement.left_side][value] for key, value in AGREE.items()}
    queue.judgement_revise(annotator=first, pair_id=pair.pk, answers=screen)
    assert counts(pair) == (2, 3)


def test_a_malformed_reliability_counts_as_an_unknown_judge(path):
    # On `overall` a "perfect" judge (zeros: one answer would rule out the other labels for good) would
    # settle the disagreement below at once; the other rows are not matrices at all.
    malformed = ([[0.5, 0.5]] * 3, "x", {"a": 1}, np.eye(3).tolist())
    judge_with_bad_fit = make_user(roles.ANNOTATOR)
    for dimension, confusion in zip(DIMENSION_KEYS, malformed, strict=True):
        AnnotatorReliability.objects.create(
            annotator=judge_with_bad_fit,
            dimension=dimension,
            confusion=confusion,
            accuracy=0.9,
            informativeness=0.9,
            judgements=10,
        )
    pair = make_pair()
    judge(pair, answers(overall="second"), user=judge_with_bad_fit)
    judge(pair, AGREE)
    assert counts(pair) == (2, 3)
