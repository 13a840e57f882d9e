import random

import pytest

from datasets.splits import PromptGroup, prompts_split, split_size_parse, split_targets

CATEGORIES = ("animals", "arts", "food", "scenes")


def _prompts(count: int, seed: int = 1) -> dict[int, PromptGroup]:
    rng = random.Random(seed)
    return {
        prompt_id: PromptGroup(category=rng.choice(CATEGORIES), pairs=rng.randint(1, 6))
        for prompt_id in range(1, count + 1)
    }


def test_split_is_deterministic_for_a_seed_and_changes_with_it():
    prompts = _prompts(2_000)
    first = prompts_split(prompts=prompts, val_pairs=350, test_pairs=350, seed=7)
    assert prompts_split(prompts=dict(reversed(prompts.items())), val_pairs=350, test_pairs=350, seed=7) == first
    assert prompts_split(prompts=prompts, val_pairs=350, test_pairs=350, seed=8) != first
    assert set(first) == set(prompts)
    assert set(first.values()) == {"train", "val", "test"}


def test_sizes_and_stratification_within_tolerance():
    prompts = _prompts(4_000)
    total = sum(g.pairs for g in prompts.values())
    assignment = prompts_split(prompts=prompts, val_pairs=700, test_pairs=700, seed=3)
    pairs = dict.fromkeys(("train", "val", "test"), 0)
    per_category = {(c, s): 0 for c in CATEGORIES for s in pairs}
    for prompt_id, split in assignment.items():
        pairs[split] += prompts[prompt_id].pairs
        per_category[prompts[prompt_id].category, split] += prompts[prompt_id].pairs
    # Each category can miss by at most part of one prompt (<= 6 pairs).
    assert abs(pairs["val"] - 700) <= 3 * len(CATEGORIES)
    assert abs(pairs["test"] - 700) <= 3 * len(CATEGORIES)
    for category in CATEGORIES:
        category_total = sum(per_category[category, s] for s in pairs)
        for split in ("val", "test"):
            share_in_split = per_category[category, split] / pairs[split]
            assert share_in_split == pytest.approx(category_total / total, abs=0.02)


def test_single_pair_prompts_hit_exact_counts():
    prompts = {i: PromptGroup(category=CATEGORIES[i % 3], pairs=1) for i in range(1_000)}
    assignment = prompts_split(prompts=prompts, val_pairs=50, test_pairs=77, seed=0)
    assert list(assignment.values()).count("val") == 50
    assert list(assignment.values()).count("test") == 77


def test_default_targets():
    assert split_targets(total=99_999, val=None, test=None) == (5_000, 5_000)
    assert split_targets(total=100_000, val=None, test=None) == (10_000, 10_000)
    assert split_targets(total=1_000, val=0.1, test=25) == (100, 25)
    with pytest.raises(ValueError, match="exceed"):
        split_targets(total=10, val=6, test=5)


def test_split_size_parse():
    assert split_size_parse("0.05") == 0.05
    assert split_size_parse("10000") == 10_000
    for bad in ("1.5", "-3", "ten"):
        with pytest.raises(ValueError):
            split_size_parse(bad)
