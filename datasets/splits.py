"""Train/val/test assignment of whole prompts, stratified by category, deterministic for a seed.

Every pair of a prompt lands in the prompt's split, so no prompt is in two splits. Sizes are in
pairs. Categories are visited in name order; a category's val and test targets are its cumulative
share of the totals minus what earlier categories already placed, so a target one category misses
(prompts are indivisible) passes to the next and the totals stay close. Within a category, prompts
are shuffled with a generator seeded from (seed, category) and taken into test, then val, whenever
adding a prompt brings that split closer to its target; the rest is train.
"""

import math
import random
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from datasets.models import Split

# Defaults of the issue: big datasets get fixed-size evaluation splits, small ones a share.
LARGE_DATASET_PAIRS = 100_000
LARGE_SPLIT_PAIRS = 10_000
SMALL_SPLIT_FRACTION = 0.05
UNCATEGORISED = "uncategorised"


@dataclass(frozen=True)
class PromptGroup:
    category: str
    pairs: int


def split_size_parse(value: str) -> int | float:
    """'0.05' -> a fraction of all pairs, '10000' -> a count of pairs."""
    text = value.strip()
    try:
        number = float(text) if "." in text or "e" in text.lower() else int(text)
    except ValueError:
        raise ValueError(f"split size {value!r} is neither a count (10000) nor a fraction (0.05)") from None
    if isinstance(number, float) and not 0.0 <= number < 1.0:
        raise ValueError(f"split fraction {value!r} must be at least 0 and below 1")
    if isinstance(number, int) and number < 0:
        raise ValueError(f"split count {value!r} must not be negative")
    return number


def split_targets(*, total: int, val: int | float | None, test: int | float | None) -> tuple[int, int]:
    """Val and test sizes in pairs; None means the issue's default for this many pairs."""

    def resolve(size: int | float | None) -> int:
        if size is None:
            return LARGE_SPLIT_PAIRS if total >= LARGE_DATASET_PAIRS else round(total * SMALL_SPLIT_FRACTION)
        return round(total * size) if isinstance(size, float) else size

    val_pairs, test_pairs = resolve(val), resolve(test)
    if val_pairs + test_pairs > total:
        raise ValueError(f"val ({val_pairs}) and test ({test_pairs}) pairs exceed the {total} pairs selected")
    return val_pairs, test_pairs


def prompts_split(*, prompts: Mapping[int, PromptGroup], val_pairs: int, test_pairs: int, seed: int) -> dict[int, str]:
    """prompt id -> split name for every prompt given."""
    by_category: dict[str, list[int]] = defaultdict(list)
    for prompt_id in sorted(prompts):
        by_category[prompts[prompt_id].category].append(prompt_id)
    total = sum(group.pairs for group in prompts.values())
    wanted = {Split.TEST.value: test_pairs, Split.VAL.value: val_pairs}
    placed = dict.fromkeys(wanted, 0)
    seen = 0
    assignment: dict[int, str] = {}
    for category in sorted(by_category):
        ids = by_category[category]
        seen += sum(prompts[p].pairs for p in ids)
        # Cumulative targets: what one category misses (prompts are indivisible) passes to the next.
        targets = {split: math.floor(n * seen / total + 0.5) - placed[split] for split, n in wanted.items()}
        random.Random(f"{seed}:{category}").shuffle(ids)
        for prompt_id, split in _fill(ids, prompts, targets).items():
            assignment[prompt_id] = split
            if split in placed:
                placed[split] += prompts[prompt_id].pairs
    return assignment


def _fill(ids: list[int], prompts: Mapping[int, PromptGroup], targets: Mapping[str, int]) -> dict[int, str]:
    sizes = dict.fromkeys(targets, 0)
    assignment = {}
    for prompt_id in ids:
        pairs = prompts[prompt_id].pairs
        assignment[prompt_id] = Split.TRAIN.value
        for split, target in targets.items():
            if abs(sizes[split] + pairs - target) < abs(sizes[split] - target):
                sizes[split] += pairs
                assignment[prompt_id] = split
                break
    return assignment
