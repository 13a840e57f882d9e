import random
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from annotation import roles
from annotation.labeling import queue
from annotation.labeling.tests.labeling_factories import ANSWERS_LEFT, judged_by, make_pairs
from annotation.models import AnnotatorProfile, Choice, Judgement, Pair, PairLease, PairSkip, Side
from annotation.tests.factories import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def annotators():
    return [make_user(roles.ANNOTATOR) for _ in range(4)]


def _judge(user, pair_id, token=None):
    return queue.judgement_submit(
        annotator=user, pair_id=pair_id, answers=ANSWERS_LEFT, client_token=token or uuid.uuid4(), duration_ms=1200
    )


def _claim_and_judge(user):
    lease = queue.pair_claim(annotator=user)
    _judge(user, lease.pair_id)
    return lease.pair_id


def test_claim_leases_a_pair_and_returns_the_same_one_again(annotators):
    make_pairs(4)
    first = queue.pair_claim(annotator=annotators[0])
    assert first.expires_at > timezone.now() + timedelta(seconds=590)
    assert first.left_side in Side.values
    assert queue.pair_claim(annotator=annotators[0]).pk == first.pk
    # The page preloads two pairs behind the one on screen: a second and a third lease, then no fourth.
    held = [first.pair_id]
    for _ in range(queue.MAX_HELD_LEASES - 1):
        lease = queue.pair_claim(annotator=annotators[0], exclude_pair_ids=tuple(held))
        assert lease.pair_id not in held
        held.append(lease.pair_id)
    assert queue.MAX_HELD_LEASES == 3
    assert queue.pair_claim(annotator=annotators[0], exclude_pair_ids=tuple(held)) is None
    assert PairLease.objects.filter(annotator=annotators[0]).count() == 3


def test_partly_judged_pairs_come_first(annotators):
    pairs = make_pairs(4)
    Pair.objects.filter(pk=pairs[2].pk).update(judgements_done=2)
    Pair.objects.filter(pk=pairs[3].pk).update(judgements_done=1)
    assert queue.pair_claim(annotator=annotators[0]).pair_id == pairs[2].pk


def test_an_annotator_whose_own_pairs_fill_the_head_of_the_queue_takes_a_fresh_pair(annotators):
    # A claim looks at the first HEAD_SCAN partly judged pairs only: one who runs ahead of the others
    # takes a fresh pair rather than walking all of their own; the others finish the partly judged ones.
    ahead, other, third = annotators[:3]
    pairs = make_pairs(queue.HEAD_SCAN + 2)
    own, beyond, fresh = pairs[: queue.HEAD_SCAN], pairs[queue.HEAD_SCAN], pairs[queue.HEAD_SCAN + 1]
    judged_by(ahead, own)
    judged_by(other, [beyond])
    assert queue.pair_claim(annotator=ahead).pair_id == fresh.pk
    assert queue.pair_claim(annotator=third).pair_id == own[0].pk


def test_a_partly_judged_pair_just_inside_the_head_is_taken_before_a_fresh_one(annotators):
    ahead, other = annotators[:2]
    pairs = make_pairs(queue.HEAD_SCAN + 1)
    judged_by(ahead, pairs[: queue.HEAD_SCAN - 1])
    judged_by(other, [pairs[queue.HEAD_SCAN - 1]])
    assert queue.pair_claim(annotator=ahead).pair_id == pairs[queue.HEAD_SCAN - 1].pk


def test_past_the_head_partly_judged_pairs_are_found_once_no_fresh_pair_is_left(annotators):
    ahead, other = annotators[:2]
    pairs = make_pairs(queue.HEAD_SCAN + 1)
    judged_by(ahead, pairs[:-1])
    judged_by(other, pairs[-1:])
    assert queue.pair_claim(annotator=ahead).pair_id == pairs[-1].pk
    assert queue.pair_claim(annotator=ahead, exclude_pair_ids=(pairs[-1].pk,)) is None


def test_a_pair_is_never_leased_beyond_its_free_slots(annotators):
    (pair,) = make_pairs(1, required=2)
    assert queue.pair_claim(annotator=annotators[0]).pair_id == pair.pk
    assert queue.pair_claim(annotator=annotators[1]).pair_id == pair.pk
    assert queue.pair_claim(annotator=annotators[2]) is None


def test_an_expired_lease_returns_the_pair_to_the_queue(annotators):
    (pair,) = make_pairs(1, required=1)
    lease = queue.pair_claim(annotator=annotators[0])
    assert queue.pair_claim(annotator=annotators[1]) is None
    PairLease.objects.filter(pk=lease.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert queue.pair_claim(annotator=annotators[1]).pair_id == pair.pk
    # The first annotator's late answer now finds the slot taken and changes nothing.
    with pytest.raises(queue.PairFull):
        _judge(annotators[0], pair.pk)
    assert Judgement.objects.count() == 0 and Pair.objects.get(pk=pair.pk).judgements_done == 0


def test_a_late_submission_is_kept_when_nobody_took_the_slot(annotators):
    (pair,) = make_pairs(1, required=1)
    lease = queue.pair_claim(annotator=annotators[0])
    PairLease.objects.filter(pk=lease.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    judgement, created = _judge(annotators[0], pair.pk)
    assert created and Pair.objects.get(pk=pair.pk).judgements_done == 1


def test_an_annotator_never_gets_a_pair_twice(annotators):
    pairs = make_pairs(2)
    seen = {_claim_and_judge(annotators[0]), _claim_and_judge(annotators[0])}
    assert seen == {pair.pk for pair in pairs}
    assert queue.pair_claim(annotator=annotators[0]) is None
    assert queue.pair_claim(annotator=annotators[1]) is not None


def test_a_retried_submission_returns_the_stored_judgement(annotators):
    make_pairs(1)
    lease = queue.pair_claim(annotator=annotators[0])
    token = uuid.uuid4()
    first, created = _judge(annotators[0], lease.pair_id, token)
    again, created_again = _judge(annotators[0], lease.pair_id, token)
    assert created and not created_again and again.pk == first.pk
    assert Judgement.objects.count() == 1
    assert Pair.objects.get(pk=lease.pair_id).judgements_done == 1
    assert not PairLease.objects.exists()


def test_another_accounts_token_is_refused(annotators):
    make_pairs(1)
    lease = queue.pair_claim(annotator=annotators[0])
    token = uuid.uuid4()
    _judge(annotators[0], lease.pair_id, token)
    queue.pair_claim(annotator=annotators[1])
    with pytest.raises(queue.QueueError, match="another account"):
        _judge(annotators[1], lease.pair_id, token)
    assert Judgement.objects.count() == 1


@pytest.mark.parametrize(
    ("left_side", "left", "right"), [(Side.FIRST, "first", "second"), (Side.SECOND, "second", "first")]
)
def test_screen_answers_are_stored_in_canonical_order(annotators, left_side, left, right):
    make_pairs(1)
    lease = queue.pair_claim(annotator=annotators[0])
    PairLease.objects.filter(pk=lease.pk).update(left_side=left_side)
    judgement, _ = _judge(annotators[0], lease.pair_id)
    assert judgement.left_side == left_side
    assert (judgement.aesthetics, judgement.alignment, judgement.overall) == (left, Choice.TIE, right)


def test_submitting_without_a_lease_changes_nothing(annotators):
    (pair,) = make_pairs(1)
    with pytest.raises(queue.LeaseMissing):
        _judge(annotators[0], pair.pk)
    assert Judgement.objects.count() == 0 and Pair.objects.get(pk=pair.pk).judgements_done == 0


def test_bad_answers_are_refused(annotators):
    make_pairs(1)
    lease = queue.pair_claim(annotator=annotators[0])
    with pytest.raises(queue.QueueError, match="missing answers for: overall"):
        queue.judgement_submit(
            annotator=annotators[0],
            pair_id=lease.pair_id,
            answers={"aesthetics": "left", "detail": "left", "alignment": "tie"},
            client_token=uuid.uuid4(),
        )
    with pytest.raises(queue.QueueError, match="left, tie or right"):
        queue.judgement_submit(
            annotator=annotators[0],
            pair_id=lease.pair_id,
            answers={**ANSWERS_LEFT, "overall": "first"},
            client_token=uuid.uuid4(),
        )
    assert Judgement.objects.count() == 0


def test_a_skipped_pair_is_not_offered_again(annotators):
    pairs = make_pairs(2)
    lease = queue.pair_claim(annotator=annotators[0])
    queue.pair_skip(annotator=annotators[0], pair_id=lease.pair_id, reason="image does not load")
    assert PairSkip.objects.get().reason == "image does not load"
    following = queue.pair_claim(annotator=annotators[0])
    assert following.pair_id != lease.pair_id and following.pair_id in {pair.pk for pair in pairs}
    with pytest.raises(queue.QueueError, match="reason"):
        queue.pair_skip(annotator=annotators[0], pair_id=following.pair_id, reason="  ")


def test_release_gives_the_pair_back_at_once(annotators):
    make_pairs(1, required=1)
    lease = queue.pair_claim(annotator=annotators[0])
    assert queue.pair_lease_release(annotator=annotators[0], pair_id=lease.pair_id)
    assert queue.pair_claim(annotator=annotators[1]).pair_id == lease.pair_id


def test_gold_pairs_are_mixed_in_at_the_configured_rate(annotators, settings):
    pairs = make_pairs(3)
    Pair.objects.filter(pk=pairs[2].pk).update(is_gold=True, gold_answers={"overall": "first"})
    settings.GOLD_PAIR_RATE = 1.0
    assert queue.pair_claim(annotator=annotators[0]).pair.is_gold
    settings.GOLD_PAIR_RATE = 0.0
    assert not queue.pair_claim(annotator=annotators[1], rng=random.Random(1)).pair.is_gold


def test_a_disabled_annotator_gets_nothing(annotators):
    make_pairs(1)
    AnnotatorProfile.objects.create(user=annotators[0], labeling_enabled=False)
    with pytest.raises(queue.LabelingDisabled):
        queue.pair_claim(annotator=annotators[0])
    assert not PairLease.objects.exists()


def test_purge_deletes_only_expired_leases(annotators):
    make_pairs(2)
    kept = queue.pair_claim(annotator=annotators[0])
    gone = queue.pair_claim(annotator=annotators[1], exclude_pair_ids=(kept.pair_id,))
    PairLease.objects.filter(pk=gone.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert queue.pair_leases_purge_expired() == 1
    assert list(PairLease.objects.values_list("pk", flat=True)) == [kept.pk]


def test_a_new_submission_for_a_pair_judged_before_is_refused_with_the_first_judgement(annotators):
    # The page can show a pair twice (a lease ran out while it was on screen): the second answer, under
    # another token, must not pass for a saved one.
    make_pairs(2)
    lease = queue.pair_claim(annotator=annotators[0])
    first, _ = _judge(annotators[0], lease.pair_id)
    with pytest.raises(queue.AlreadyJudged, match="judged this pair already") as refused:
        _judge(annotators[0], lease.pair_id)
    assert refused.value.judgement.pk == first.pk
    assert Judgement.objects.count() == 1 and Pair.objects.get(pk=lease.pair_id).judgements_done == 1


def test_a_shown_pair_whose_lease_ran_out_is_not_claimed_again(annotators):
    shown, other = make_pairs(2)
    assert queue.pair_claim(annotator=annotators[0]).pair_id == shown.pk
    PairLease.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    lease = queue.pair_claim(annotator=annotators[0], exclude_pair_ids=(shown.pk,))
    assert lease.pair_id == other.pk
    assert queue.pair_claim(annotator=annotators[0], exclude_pair_ids=(shown.pk, other.pk)) is None


def test_a_deactivated_annotator_cannot_revise_a_judgement(annotators):
    from annotation.labeling.services import annotator_deactivate

    make_pairs(1)
    lease = queue.pair_claim(annotator=annotators[0])
    judgement, _ = _judge(annotators[0], lease.pair_id)
    annotator_deactivate(user=annotators[0])
    with pytest.raises(queue.LabelingDisabled):
        queue.judgement_revise(
            annotator=annotators[0], pair_id=lease.pair_id, answers={**ANSWERS_LEFT, "overall": "left"}
        )
    assert Judgement.objects.get().overall == judgement.overall
