"""The consensus math on synthetic votes: posteriors, the adaptive redundancy rule and Dawid-Skene."""

import numpy as np
import pytest

from annotation.labeling.consensus import (
    CLASS_INDEX,
    RedundancyPolicy,
    accuracy,
    confusion_from_accuracy,
    dawid_skene,
    informativeness,
    judgements_wanted,
    label_posterior,
    looks_like_spammer,
    uniform_prior,
)
from annotation.labeling.guided import guided_order, uncertainty

FIRST, TIE, SECOND = (CLASS_INDEX[name] for name in ("first", "tie", "second"))
UNKNOWN = confusion_from_accuracy(0.7)


def _posteriors(*answers_per_dimension):
    return [label_posterior(answers, [UNKNOWN] * len(answers), uniform_prior()) for answers in answers_per_dimension]


def test_posterior_of_agreeing_judges_is_sure_and_of_disagreeing_ones_is_not():
    agree = label_posterior([FIRST, FIRST], [UNKNOWN, UNKNOWN], uniform_prior())
    disagree = label_posterior([FIRST, SECOND], [UNKNOWN, UNKNOWN], uniform_prior())
    assert agree.argmax() == FIRST and agree.max() == pytest.approx(0.49 / 0.535)
    assert disagree[FIRST] == pytest.approx(disagree[SECOND]) and disagree.max() < 0.5


def test_a_reliable_judge_outweighs_a_poor_one():
    posterior = label_posterior([FIRST, SECOND], [confusion_from_accuracy(0.95), UNKNOWN], uniform_prior())
    assert posterior.argmax() == FIRST


def test_redundancy_stops_at_two_agreeing_asks_a_third_on_a_disagreement_and_never_exceeds_the_maximum():
    policy = RedundancyPolicy(minimum=2, maximum=4, settled_posterior=0.75)
    assert judgements_wanted(1, _posteriors([FIRST]), policy) == 2
    assert judgements_wanted(2, _posteriors([FIRST, FIRST], [TIE, TIE]), policy) == 2
    assert judgements_wanted(2, _posteriors([FIRST, FIRST], [TIE, SECOND]), policy) == 3
    assert judgements_wanted(3, _posteriors([FIRST, FIRST, FIRST], [TIE, SECOND, SECOND]), policy) == 3
    stubborn = _posteriors([FIRST, SECOND, TIE, FIRST])
    assert judgements_wanted(3, _posteriors([FIRST, SECOND, TIE]), policy) == 4
    assert judgements_wanted(4, stubborn, policy) == 4


def test_policy_refuses_a_maximum_below_the_minimum():
    with pytest.raises(ValueError):
        RedundancyPolicy(minimum=3, maximum=2)


def _planted_votes(rng, accuracies, n_items=600, per_item=5, spammers=()):
    truth = rng.choice(3, size=n_items, p=[0.45, 0.1, 0.45])
    items, judges, answers = [], [], []
    for item in range(n_items):
        for judge in rng.choice(len(accuracies), size=per_item, replace=False):
            if judge in spammers:
                answer = rng.choice([FIRST, SECOND])  # "always left", whichever image was on the left
            elif rng.random() < accuracies[judge]:
                answer = truth[item]
            else:
                answer = rng.choice([c for c in range(3) if c != truth[item]])
            items.append(item)
            judges.append(judge)
            answers.append(answer)
    return truth, np.array(items), np.array(judges), np.array(answers)


def test_dawid_skene_recovers_planted_reliabilities_and_beats_majority_vote():
    rng = np.random.default_rng(7)
    accuracies = [0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6, 0.5, 0.45]
    spammers = {8, 9}
    truth, items, judges, answers = _planted_votes(rng, accuracies, spammers=spammers)
    fit = dawid_skene(items, judges, answers)
    assert fit.converged
    for judge, planted in enumerate(accuracies):
        if judge not in spammers:
            assert accuracy(fit.confusions[judge], fit.prior) == pytest.approx(planted, abs=0.06)
    assert fit.prior == pytest.approx([0.45, 0.1, 0.45], abs=0.05)
    scores = [informativeness(fit.confusions[judge], fit.prior) for judge in range(len(accuracies))]
    assert [looks_like_spammer([score], 0.2) for score in scores] == [j in spammers for j in range(len(accuracies))]
    votes = np.zeros((len(truth), 3))
    np.add.at(votes, (items, answers), 1)
    majority = (votes.argmax(axis=1) == truth).mean()
    assert (fit.posteriors.argmax(axis=1) == truth).mean() > majority


def test_dawid_skene_warm_start_lands_where_a_cold_start_does():
    rng = np.random.default_rng(3)
    truth, items, judges, answers = _planted_votes(rng, [0.9, 0.8, 0.7, 0.6, 0.85, 0.75], per_item=3)
    cold = dawid_skene(items, judges, answers)
    warm = dawid_skene(items, judges, answers, confusions=cold.confusions, prior=cold.prior)
    assert warm.iterations < cold.iterations
    np.testing.assert_allclose(warm.posteriors, cold.posteriors, atol=1e-3)


def test_guided_order_serves_the_most_uncertain_first_and_keeps_the_random_share():
    rng = np.random.default_rng(0)
    probabilities = rng.random((1000, 4))
    scores = uncertainty(probabilities)
    groups = np.arange(1000) % 7
    order = guided_order(scores, random_share=0.2, rng=rng, groups=groups)
    assert sorted(order.tolist()) == list(range(1000))
    random_slots = np.floor((np.arange(1000) + 1) * 0.2) > np.floor(np.arange(1000) * 0.2)
    assert random_slots.sum() == 200
    guided = order[~random_slots]
    assert np.all(np.diff(scores[guided]) <= 0)
    drawn = order[random_slots]
    assert scores[guided[0]] == scores[np.setdiff1d(np.arange(1000), drawn)].max()
    assert len(set(groups[order[random_slots][:7]].tolist())) == 7
    assert list(guided_order(scores, random_share=0.0, rng=rng)) == list(np.argsort(-scores, kind="stable"))
