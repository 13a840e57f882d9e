"""The evaluation protocols on hand-made rankings and pairs, with values worked out by hand."""

import math
import subprocess
import sys
from pathlib import Path

import pytest

from training.evaluation.metrics import pair_metrics
from training.evaluation.protocols import (
    PICKSCORE_THRESHOLDS,
    LabelledPair,
    MissingScoresError,
    RankedItem,
    hpdv2_accuracy,
    imagereward_accuracy,
    pair_accuracy,
    pair_accuracy_tie_aware,
    pickscore_tie_aware_accuracy,
    pickscore_tune_threshold,
    preference_gap,
    tune_tie_threshold,
)

ROOT = Path(__file__).resolve().parents[2]

# One prompt, four images; t1 and t2 tie for best. Pairs with different human ranks:
#   (t1,t3) scores 2 = 2  -> equal: wrong for ImageReward, not discordant for HPD v2
#   (t1,t4) 2 < 3 wrong / discordant    (t2,t3) 5 > 2 right    (t2,t4) 5 > 3 right
#   (t3,t4) 2 < 3 wrong / discordant    and (t1,t2) tied in the ranks: skipped / not discordant.
TIED = RankedItem("a tied prompt", ["t1", "t2", "t3", "t4"], [1, 1, 2, 3])
TIED_SCORES = {"t1": 2.0, "t2": 5.0, "t3": 2.0, "t4": 3.0}

# Micro vs macro: a 4-image prompt ordered perfectly (6 pairs right), a 2-image prompt reversed (1 wrong).
PERFECT = RankedItem("perfect", ["p1", "p2", "p3", "p4"], [1, 2, 3, 4])
REVERSED = RankedItem("reversed", ["q1", "q2"], [1, 2])
MIXED_SCORES = {"p1": 4.0, "p2": 3.0, "p3": 2.0, "p4": 1.0, "q1": 0.0, "q2": 1.0}


def test_imagereward_skips_rank_ties_and_counts_an_equal_score_wrong():
    result = imagereward_accuracy([TIED], TIED_SCORES)
    assert result.pairs == 5  # the rank-tied pair (t1,t2) is not counted
    assert result.accuracy == pytest.approx(2 / 5)  # only (t2,t3) and (t2,t4); (t1,t3) equal scores is wrong
    assert result.prompts is None


def test_hpdv2_counts_every_pair_and_no_tie_as_discordant():
    result = hpdv2_accuracy([TIED], TIED_SCORES)
    assert (result.pairs, result.prompts) == (6, 1)
    assert result.accuracy == pytest.approx(1 - 2 / 6)  # discordant: (t1,t4), (t3,t4)


def test_an_equal_predicted_score_differs_between_the_two_ranking_protocols():
    item = RankedItem("two", ["x", "y"], [1, 2])
    scores = {"x": 0.5, "y": 0.5}
    assert imagereward_accuracy([item], scores).accuracy == 0.0
    assert hpdv2_accuracy([item], scores).accuracy == 1.0


def test_imagereward_micro_and_hpdv2_macro_averages_differ_on_the_same_data():
    items = [PERFECT, REVERSED]
    micro = imagereward_accuracy(items, MIXED_SCORES)
    macro = hpdv2_accuracy(items, MIXED_SCORES)
    assert (micro.accuracy, micro.pairs) == (pytest.approx(6 / 7), 7)
    assert (macro.accuracy, macro.pairs, macro.prompts) == (pytest.approx((1.0 + 0.0) / 2), 7, 2)


def test_ranks_need_not_be_dense_and_may_start_at_zero():
    # ImageReward's own file has rankings like [1, 2, 5, 3]; HPD v2's count from 0. Only the order matters.
    dense = RankedItem("p", ["a", "b", "c", "d"], [1, 2, 4, 3])
    sparse = RankedItem("p", ["a", "b", "c", "d"], [0, 1, 5, 2])
    scores = {"a": 1.0, "b": 3.0, "c": 0.0, "d": 2.0}  # a < b wrong, a<d wrong, others right
    for item in (dense, sparse):
        assert imagereward_accuracy([item], scores).accuracy == pytest.approx(4 / 6)
        assert hpdv2_accuracy([item], scores).accuracy == pytest.approx(4 / 6)


def test_ranking_protocols_refuse_missing_scores_and_mismatched_ranks():
    with pytest.raises(MissingScoresError, match=r"2 images have no score: t3, t4"):
        imagereward_accuracy([TIED], {"t1": 1.0, "t2": 2.0})
    with pytest.raises(ValueError, match="2 ranks for 3 images"):
        hpdv2_accuracy([RankedItem("p", ["a", "b", "c"], [1, 2])], {"a": 1, "b": 2, "c": 3})


# Five pairs; gap = |p_a - p_b| = tanh(|s_a - s_b| / 2).
#   pair           label       scores       gap          credit if predicted tie / not a tie
PAIRS = [
    LabelledPair("a", "b", [1.0, 0.0]),  # 2, 0   tanh(1)      0.5 / 1  (right winner)
    LabelledPair("c", "d", [0.0, 1.0]),  # .2, 0  tanh(.1)     0.5 / 0  (wrong winner)
    LabelledPair("e", "f", [0.5, 0.5]),  # .1, 0  tanh(.05)    1   / 0.5 (human tie)
    LabelledPair("g", "h", [1.0, 0.0]),  # 0, 0   0            0.5 / 0  (equal scores: no winner)
    LabelledPair("i", "j", [2 / 3, 1 / 3]),  # 0, -1  tanh(.5)  0.5 / 1  (soft label, a preferred)
]
PAIR_SCORES = {"a": 2.0, "b": 0.0, "c": 0.2, "d": 0.0, "e": 0.1, "f": 0.0, "g": 0.0, "h": 0.0, "i": 0.0, "j": -1.0}


def test_pair_accuracy_skips_tie_labels_and_counts_equal_scores_wrong():
    result = pair_accuracy(PAIRS, PAIR_SCORES)
    assert (result.accuracy, result.pairs) == (pytest.approx(2 / 4), 4)


def test_preference_gap_is_the_softmax_probability_difference():
    p_a = math.exp(0.2) / (math.exp(0.2) + math.exp(0.0))
    assert preference_gap(0.2, 0.0) == pytest.approx(p_a - (1 - p_a))
    assert preference_gap(1e6, -1e6) == 1.0  # no overflow


@pytest.mark.parametrize(
    ("threshold", "expected"),
    [
        (0.0, (1 + 0 + 0.5 + 0 + 1) / 5),  # no predicted ties: the human tie earns half credit
        (0.3, (1 + 0.5 + 1 + 0.5 + 1) / 5),  # c/d, e/f, g/h predicted ties: half, full, half credit
        (0.5, (1 + 0.5 + 1 + 0.5 + 0.5) / 5),  # i/j too: a human preference predicted a tie, half credit
        (1.0, (0.5 + 0.5 + 1 + 0.5 + 0.5) / 5),  # everything a tie
    ],
)
def test_tie_aware_accuracy_gives_half_credit_when_one_side_is_a_tie(threshold, expected):
    result = pair_accuracy_tie_aware(PAIRS, PAIR_SCORES, threshold)
    assert (result.accuracy, result.pairs) == (pytest.approx(expected), 5)


def test_tie_threshold_tuning_picks_the_best_split_and_its_midpoint():
    # Sweep: 2.5 at 0, +0.5 above g/h (3.0), above e/f (3.5), above c/d (4.0), then -0.5 twice.
    threshold = tune_tie_threshold(PAIRS, PAIR_SCORES)
    assert threshold == pytest.approx((math.tanh(0.1) + math.tanh(0.5)) / 2)
    assert pair_accuracy_tie_aware(PAIRS, PAIR_SCORES, threshold).accuracy == pytest.approx(4 / 5)


def test_tie_threshold_tuning_keeps_zero_without_gain_and_passes_the_largest_gap_when_all_tie():
    right = [LabelledPair("a", "b", [1, 0]), LabelledPair("c", "d", [0, 1])]
    assert tune_tie_threshold(right, {"a": 1.0, "b": 0.0, "c": 0.0, "d": 1.0}) == 0.0
    ties = [LabelledPair("a", "b", [0.5, 0.5]), LabelledPair("c", "d", [0.5, 0.5])]
    scores = {"a": 1.0, "b": 0.0, "c": 0.0, "d": 3.0}
    threshold = tune_tie_threshold(ties, scores)
    assert threshold > math.tanh(1.5)  # both gaps under it
    assert pair_accuracy_tie_aware(ties, scores, threshold).accuracy == 1.0


def test_tie_threshold_equal_gaps_move_together():
    # Two pairs with the same gap: one a human tie, one a preference the model gets right. A threshold
    # cannot separate them, so predicting both ties (1 + 0.5) never beats neither (0.5 + 1): keep 0.
    pairs = [LabelledPair("a", "b", [0.5, 0.5]), LabelledPair("c", "d", [1, 0])]
    assert tune_tie_threshold(pairs, {"a": 1.0, "b": 0.0, "c": 1.0, "d": 0.0}) == 0.0


def test_pair_protocols_refuse_bad_input():
    with pytest.raises(ValueError, match="no validation pairs"):
        tune_tie_threshold([], {})
    with pytest.raises(ValueError, match="at least 0"):
        pair_accuracy_tie_aware(PAIRS, PAIR_SCORES, -0.1)
    with pytest.raises(MissingScoresError, match="1 images have no score: b"):
        pair_accuracy([LabelledPair("a", "b", [1, 0])], {"a": 1.0})
    with pytest.raises(ValueError, match=r"\[p_a, p_b\]"):
        pair_accuracy([LabelledPair("a", "b", [1, 0, 0])], {"a": 1.0, "b": 0.0})


def test_protocols_and_readers_import_neither_torch_nor_django():
    probe = (
        "import sys, training.evaluation.protocols, training.evaluation.readers, training.evaluation.metrics;"
        "print(sorted(m for m in ('torch', 'django', 'open_clip') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"


# --- PickScore's tie-aware accuracy: its eval_preference_predictor.py, written out as it is there --------------
def _reference_softmax(score_0: float, score_1: float) -> tuple[float, float]:
    top = max(score_0, score_1)
    e0, e1 = math.exp(score_0 - top), math.exp(score_1 - top)
    return e0 / (e0 + e1), e1 / (e0 + e1)


def _reference_label(label_0: float) -> str:
    return "tie" if label_0 == 0.5 else "0" if label_0 == 1 else "1"


def _reference_pred(prob_0: float, prob_1: float, threshold: float) -> str:
    return "tie" if abs(prob_1 - prob_0) <= threshold else "0" if prob_0 > prob_1 else "1"


def _reference_acc(pairs, scores, threshold: float) -> float:
    res = []
    for pair in pairs:
        label = _reference_label(pair.label[0])
        pred = _reference_pred(*_reference_softmax(scores[pair.image_a], scores[pair.image_b]), threshold)
        res.append(1 if label == pred else 0.5 if "tie" in (label, pred) else 0)
    return sum(res) / len(res)


def _random_pick_a_pic(seed: int, count: int):
    import random

    rng = random.Random(seed)
    pairs, scores = [], {}
    for index in range(count):
        a, b = f"{index}_0", f"{index}_1"
        label = rng.choice([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
        scores[a] = round(rng.gauss(20, 1.5), 1)  # coarse scores: some pairs score exactly equal
        scores[b] = scores[a] if rng.random() < 0.1 else round(rng.gauss(20, 1.5), 1)
        pairs.append(LabelledPair(a, b, label))
    return pairs, scores


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pickscore_tie_aware_accuracy_is_pickscores_own_computation(seed):
    pairs, scores = _random_pick_a_pic(seed, 400)
    val_pairs, val_scores = _random_pick_a_pic(seed + 100, 300)
    for threshold in PICKSCORE_THRESHOLDS:
        ours = pickscore_tie_aware_accuracy(pairs, scores, threshold)
        assert ours.accuracy == pytest.approx(_reference_acc(pairs, scores, threshold), abs=1e-12)
        assert ours.pairs == len(pairs)
    reference_val = [_reference_acc(val_pairs, val_scores, t) for t in PICKSCORE_THRESHOLDS]
    best = PICKSCORE_THRESHOLDS[reference_val.index(max(reference_val))]  # np.argmax: the first best
    assert pickscore_tune_threshold(val_pairs, val_scores) == best


def test_pickscore_predicts_a_tie_at_an_equal_gap_where_the_strict_variant_does_not():
    # Equal scores: PickScore's gap 0 <= threshold 0 is a predicted tie (full credit for a human tie);
    # the project's tie-aware variant (gap < threshold) predicts none at 0, and an equal score is wrong.
    pairs = [LabelledPair("a", "b", [0.5, 0.5]), LabelledPair("c", "d", [1.0, 0.0])]
    scores = {"a": 1.0, "b": 1.0, "c": 2.0, "d": 2.0}
    assert pickscore_tie_aware_accuracy(pairs, scores, 0).accuracy == (1 + 0.5) / 2
    assert pair_accuracy_tie_aware(pairs, scores, 0).accuracy == (0.5 + 0) / 2


def test_pair_metrics_report_pickscores_variant_beside_the_projects():
    pairs, scores = _random_pick_a_pic(7, 120)
    val_pairs, val_scores = _random_pick_a_pic(8, 80)
    metrics = pair_metrics(pairs, scores | val_scores, val_pairs=val_pairs)
    threshold = pickscore_tune_threshold(val_pairs, val_scores)
    assert metrics["pickscore_tie_threshold"] == threshold
    assert metrics["pickscore_tie_aware_accuracy"] == pytest.approx(_reference_acc(pairs, scores, threshold))
    assert metrics["pickscore_tie_threshold_source"] == "PickScore's grid, tuned on 80 validation pairs"
    given = pair_metrics(pairs, scores, tie_threshold=0.3)
    assert given["pickscore_tie_aware_accuracy"] == pytest.approx(_reference_acc(pairs, scores, 0.3))
    assert pair_metrics(pairs, scores)["pickscore_tie_aware_accuracy"] is None
