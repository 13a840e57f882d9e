import pytest
from django.core.management import CommandError, call_command

from annotation.models import Adjudication, Pair
from annotation.tests.factories import make_user
from datasets.aggregation import LabelMode
from datasets.models import DatasetItem, DatasetStatus, DatasetVersion
from datasets.services.freeze import FreezeError, FreezeOptions, dataset_freeze
from datasets.tests.factories import JudgedPairs, exclude_annotator, judge

pytestmark = pytest.mark.django_db


def _items(version: DatasetVersion) -> dict[int, tuple]:
    return {
        item.pair_id: (item.split, item.labels, item.annotator_count, item.agreement)
        for item in DatasetItem.objects.filter(version=version)
    }


@pytest.fixture
def judged():
    return JudgedPairs(annotators=4)


def test_selection_and_aggregation_rules(judged):
    a, b, c, d = judged.annotators
    pairs = judged.prompt_pairs(7, category="animals")
    unanimous, majority, incomplete, gold, short_by_exclusion, two_required, adjudicated = pairs
    judged.judge_all(unanimous, ["first", "first", "first"])
    judged.judge_all(majority, ["second", "second", "first"])
    judged.judge_all(incomplete, ["first", "first"])
    Pair.objects.filter(pk=gold.pk).update(is_gold=True)
    judged.judge_all(gold, ["first", "first", "first"])
    exclude_annotator(d)
    for annotator in (a, b, d):
        judge(short_by_exclusion, annotator, "first")
    Pair.objects.filter(pk=two_required.pk).update(judgements_required=2)
    for annotator, choice in ((a, "tie"), (b, "second"), (d, "first")):
        judge(two_required, annotator, choice)
    judged.judge_all(adjudicated, ["first", "second", "tie"])
    Adjudication.objects.create(
        pair=adjudicated, reviewer=make_user(), aesthetics="second", detail="first", alignment="tie", overall="second"
    )

    version = dataset_freeze(name="v1", options=FreezeOptions(val=0, test=0))

    items = _items(version)
    assert set(items) == {unanimous.pk, majority.pk, two_required.pk, adjudicated.pk}
    every = dict.fromkeys(("aesthetics", "detail", "alignment", "overall"))
    assert items[unanimous.pk] == ("train", {k: [1.0, 0.0] for k in every}, 3, 1.0)
    assert items[majority.pk] == ("train", {k: [0.0, 1.0] for k in every}, 3, pytest.approx(1 / 3, abs=1e-6))
    # tie vs second: a draw; the excluded annotator's "first" does not count.
    assert items[two_required.pk] == ("train", {k: [0.5, 0.5] for k in every}, 2, 0.0)
    assert items[adjudicated.pk][1] == {
        "aesthetics": [0.0, 1.0],
        "detail": [1.0, 0.0],
        "alignment": [0.5, 0.5],
        "overall": [0.0, 1.0],
    }
    version.refresh_from_db()
    assert version.status == DatasetStatus.FROZEN and version.frozen_at is not None
    assert version.config["mode"] == "majority" and version.config["excluded_annotators"] == 1
    assert version.stats["pairs"] == 4 and version.stats["splits"] == {"train": 4}
    assert version.stats["categories"] == {"train": {"animals": 4}}
    assert version.stats["labels"]["train"]["overall"] == {"first": 1, "second": 2, "tie": 1}
    generators = version.stats["generators"]["train"]
    assert sum(generators.values()) == 8  # two images per pair


def test_soft_labels_and_min_agreement(judged):
    split_three, unanimous, disputed = judged.prompt_pairs(3)
    judged.judge_all(split_three, ["first", "tie", "first"])
    judged.judge_all(unanimous, ["second", "second", "second"])
    judged.judge_all(disputed, ["first", "second", "tie"])
    Adjudication.objects.create(
        pair=disputed, reviewer=make_user(), aesthetics="first", detail="first", alignment="first", overall="first"
    )
    options = FreezeOptions(mode=LabelMode.SOFT, min_agreement=0.5, val=0, test=0)
    items = _items(dataset_freeze(name="soft", options=options))
    # split_three agrees 1/3 < 0.5: out; the disputed pair stays because a reviewer settled it.
    assert set(items) == {unanimous.pk, disputed.pk}
    assert items[unanimous.pk][1]["overall"] == [0.0, 1.0]
    assert items[disputed.pk][1]["overall"] == [1.0, 0.0]
    soft = _items(dataset_freeze(name="soft-all", options=FreezeOptions(mode=LabelMode.SOFT, val=0, test=0)))
    assert soft[split_three.pk][1]["detail"] == pytest.approx([5 / 6, 1 / 6])


def _many_prompts(judged, prompts: int, pairs_each: int) -> None:
    categories = ("animals", "food", "scenes")
    for index in range(prompts):
        for pair in judged.prompt_pairs(pairs_each, category=categories[index % 3]):
            judged.judge_all(pair, ["first", "second", "first"])


def test_no_prompt_in_two_splits_and_same_seed_same_split(judged):
    _many_prompts(judged, prompts=12, pairs_each=3)
    options = FreezeOptions(val=0.25, test=0.25, seed=11)
    version = dataset_freeze(name="grouped", options=options)
    splits_per_prompt = {}
    for prompt_id, split in DatasetItem.objects.filter(version=version).values_list("pair__prompt_id", "split"):
        splits_per_prompt.setdefault(prompt_id, set()).add(split)
    assert len(splits_per_prompt) == 12
    assert all(len(splits) == 1 for splits in splits_per_prompt.values())
    assert version.stats["splits"] == {"test": 9, "train": 18, "val": 9}
    assert version.stats["prompts"] == {"test": 3, "train": 6, "val": 3}
    again = dataset_freeze(name="grouped-again", options=options)
    assert _items(again) == _items(version)
    other_seed = dataset_freeze(name="grouped-other", options=FreezeOptions(val=0.25, test=0.25, seed=12))
    assert {k: v[0] for k, v in _items(other_seed).items()} != {k: v[0] for k, v in _items(version).items()}


def test_frozen_version_unchanged_by_later_judgements(judged):
    a, b, c, d = judged.annotators
    complete, incomplete = judged.prompt_pairs(2)
    judged.judge_all(complete, ["first", "first", "second"])
    judged.judge_all(incomplete, ["first", "first"])
    version = dataset_freeze(name="stable", options=FreezeOptions(val=0, test=0))
    before = (_items(version), DatasetVersion.objects.values().get(pk=version.pk))

    judge(incomplete, d, "second")
    Adjudication.objects.create(
        pair=complete, reviewer=make_user(), aesthetics="tie", detail="tie", alignment="tie", overall="tie"
    )
    exclude_annotator(c)

    assert (_items(version), DatasetVersion.objects.values().get(pk=version.pk)) == before
    later = dataset_freeze(name="later", options=FreezeOptions(val=0, test=0))
    assert set(_items(later)) == {incomplete.pk}  # `complete` lost a counted vote; `incomplete` gained one


def test_existing_name_refused_and_nothing_changes(judged):
    (pair,) = judged.prompt_pairs(1)
    judged.judge_all(pair, ["first", "first", "first"])
    call_command("freeze_dataset", "taken", "--val", "0", "--test", "0", verbosity=0)
    before = (_items(DatasetVersion.objects.get(name="taken")), DatasetVersion.objects.values().get(name="taken"))
    with pytest.raises(CommandError, match="'taken' already exists"):
        call_command("freeze_dataset", "taken", "--labels", "soft", verbosity=0)
    assert DatasetVersion.objects.count() == 1
    assert (
        _items(DatasetVersion.objects.get(name="taken")),
        DatasetVersion.objects.values().get(name="taken"),
    ) == before


def test_empty_selection_fails_clearly_and_frees_the_name(judged):
    (pair,) = judged.prompt_pairs(1)
    judged.judge_all(pair, ["first"])
    with pytest.raises(FreezeError, match="no complete, non-gold pairs"):
        dataset_freeze(name="empty", options=FreezeOptions())
    failed = DatasetVersion.objects.get(name="empty")
    assert failed.status == DatasetStatus.FAILED and "no complete" in failed.error
    assert not DatasetItem.objects.exists()
    judge(pair, judged.annotators[1], "first")
    judge(pair, judged.annotators[2], "first")
    with pytest.raises(CommandError, match="exceed"):
        call_command("freeze_dataset", "empty", "--val", "1", "--test", "1", verbosity=0)
