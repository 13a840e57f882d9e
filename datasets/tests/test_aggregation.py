import pytest

from datasets.aggregation import LabelMode, agreement, label_class, label_majority, label_soft, pair_labels

DIMS = ("aesthetics", "detail", "alignment", "overall")


@pytest.mark.parametrize(
    ("choices", "expected"),
    [
        (["first", "first", "second"], (1.0, 0.0)),
        (["second", "second", "first"], (0.0, 1.0)),
        (["tie", "tie", "first"], (0.5, 0.5)),
        (["first", "second"], (0.5, 0.5)),  # draw between first and second
        (["first", "second", "tie"], (0.5, 0.5)),  # three-way draw
        (["first", "first", "tie", "tie"], (0.5, 0.5)),  # draw between first and tie
        (["second"], (0.0, 1.0)),
    ],
)
def test_majority(choices, expected):
    assert label_majority(choices) == expected


@pytest.mark.parametrize(
    ("choices", "expected"),
    [
        (["first", "first", "second"], (2 / 3, 1 / 3)),
        (["first", "tie", "second"], (0.5, 0.5)),
        (["first", "tie", "tie", "tie"], (0.625, 0.375)),
        (["second", "second", "second"], (0.0, 1.0)),
    ],
)
def test_soft_is_vote_fractions_with_half_ties(choices, expected):
    assert label_soft(choices) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("choices", "expected"),
    [
        (["first", "first", "first"], 1.0),
        (["first", "first", "second"], 1 / 3),  # 1 agreeing pair of 3
        (["first", "second", "tie"], 0.0),
        (["first", "first", "second", "second"], 2 / 6),
        (["tie"], 1.0),
    ],
)
def test_agreement_is_share_of_agreeing_judgement_pairs(choices, expected):
    assert agreement(choices) == pytest.approx(expected)


def test_pair_labels_averages_agreement_and_adjudication_wins_per_dimension():
    votes = {
        "aesthetics": ["first", "first", "first"],
        "detail": ["first", "first", "second"],
        "alignment": ["second", "tie", "first"],
        "overall": ["second", "second", "tie"],
    }
    result = pair_labels(votes=votes, mode=LabelMode.MAJORITY, adjudication=None)
    assert result.labels == {
        "aesthetics": [1.0, 0.0],
        "detail": [1.0, 0.0],
        "alignment": [0.5, 0.5],
        "overall": [0.0, 1.0],
    }
    assert result.annotator_count == 3
    assert result.agreement == pytest.approx((1 + 1 / 3 + 0 + 1 / 3) / 4, abs=1e-6)

    decided = {"aesthetics": "second", "detail": "tie", "alignment": "first", "overall": "first"}
    adjudicated = pair_labels(votes=votes, mode=LabelMode.SOFT, adjudication=decided)
    assert adjudicated.labels == {
        "aesthetics": [0.0, 1.0],
        "detail": [0.5, 0.5],
        "alignment": [1.0, 0.0],
        "overall": [1.0, 0.0],
    }
    # Agreement still describes the annotators, not the reviewer.
    assert adjudicated.agreement == result.agreement


def test_soft_pair_labels():
    votes = dict.fromkeys(DIMS, ["first", "tie", "second", "first"])
    assert pair_labels(votes=votes, mode=LabelMode.SOFT).labels["overall"] == [0.625, 0.375]


def test_bad_votes_are_refused():
    with pytest.raises(ValueError, match="no votes"):
        label_majority([])
    with pytest.raises(ValueError, match="unknown choices"):
        label_soft(["left"])
    with pytest.raises(ValueError, match="one vote per judgement"):
        pair_labels(votes={**dict.fromkeys(DIMS, ["first"]), "overall": ["first", "second"]})


def test_label_class():
    assert [label_class(x) for x in ([1, 0], [0.25, 0.75], [0.5, 0.5])] == ["first", "second", "tie"]


def test_dawid_skene_labels_fold_the_posterior_and_keep_an_adjudication():
    votes = dict.fromkeys(("aesthetics", "detail", "alignment", "overall"), ["first", "tie"])
    posteriors = {
        "aesthetics": [0.3, 0.45, 0.25],  # most probable: tie, though p_first > p_second once folded
        "detail": [0.1, 0.2, 0.7],
        "alignment": [0.6, 0.3, 0.1],
        "overall": [0.2, 0.2, 0.6],
    }
    result = pair_labels(votes=votes, mode=LabelMode.DAWID_SKENE, posteriors=posteriors, adjudication=None)
    assert result.labels["aesthetics"] == pytest.approx([0.525, 0.475])
    assert result.labels["detail"] == pytest.approx([0.2, 0.8])
    assert result.classes == {"aesthetics": "tie", "detail": "second", "alignment": "first", "overall": "second"}
    assert (result.annotator_count, result.agreement) == (2, 0.0)
    decided = {"aesthetics": "first", "detail": "second", "alignment": "tie", "overall": "first"}
    adjudicated = pair_labels(votes=votes, mode=LabelMode.DAWID_SKENE, posteriors=posteriors, adjudication=decided)
    assert adjudicated.labels["overall"] == [1.0, 0.0] and adjudicated.classes == decided
    with pytest.raises(ValueError, match="posteriors are given in dawid-skene mode"):
        pair_labels(votes=votes, mode=LabelMode.DAWID_SKENE)
    with pytest.raises(ValueError, match="posteriors are given in dawid-skene mode"):
        pair_labels(votes=votes, mode=LabelMode.SOFT, posteriors=posteriors)
