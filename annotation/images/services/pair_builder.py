"""Build the pairs to judge: per accepted prompt, mostly across generators, some within one.

For each prompt the builder tops its pairs up to `per_prompt` (existing pairs count, so a re-run
adds nothing). The kind of each new pair follows a running quota over the whole run, so the
project's cross share stays near `cross_share` even when single prompts cannot follow it (one
generator only, one image per generator). Within a kind, the pair whose generators and images
have appeared least in the prompt's pairs is taken next, so every generator is seen about equally.
Ties are broken by a shuffle seeded with (seed, prompt id): the same seed and data give the same pairs.
"""

import random
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import combinations, islice

from django.db import transaction

from annotation.labeling.redundancy import judgements_required_default
from annotation.models import Image, Pair, PairKind, Prompt, PromptStatus
from mhp.db import tables_analyze

# Prompts handled per transaction (their images and existing pairs are read in one go).
PROMPT_BATCH = 500
SKIP_EXAMPLES = 20

TOO_FEW_IMAGES = "fewer than 2 images"
NOT_ACCEPTED = "not accepted"
ALREADY_FULL = "already has enough pairs"
NO_CANDIDATES = "every possible pair exists already"


@dataclass
class PairBuildSummary:
    prompts_seen: int = 0
    prompts_paired: int = 0
    created: Counter = field(default_factory=Counter)  # kind -> pairs created
    skipped: Counter = field(default_factory=Counter)  # reason -> prompts
    skipped_examples: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))

    def skip(self, prompt_id: int, reason: str) -> None:
        self.skipped[reason] += 1
        if len(self.skipped_examples[reason]) < SKIP_EXAMPLES:
            self.skipped_examples[reason].append(prompt_id)

    @property
    def total_created(self) -> int:
        return sum(self.created.values())


@dataclass(frozen=True)
class _Img:
    id: int
    generator_id: int


class _KindQuota:
    """Error diffusion over the run: the next pair is cross when that keeps the share closest to target."""

    def __init__(self, cross_share: float) -> None:
        self.cross_share = cross_share
        self.cross = 0
        self.total = 0

    def wants_cross(self) -> bool:
        return self.cross + 0.5 <= self.cross_share * (self.total + 1)

    def count(self, kind: str) -> None:
        self.total += 1
        self.cross += kind == PairKind.CROSS_GENERATOR


def pairs_build(
    *,
    per_prompt: int = 6,
    cross_share: float = 0.8,
    seed: int = 0,
    prompt_ids: Iterable[int] | None = None,
    judgements_required: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> PairBuildSummary:
    """Top up every accepted prompt (or the given ones) to `per_prompt` pairs; returns what was built."""
    if per_prompt < 1:
        raise ValueError("per_prompt must be at least 1")
    if not 0.0 <= cross_share <= 1.0:
        raise ValueError("cross_share must be between 0 and 1")
    summary = PairBuildSummary()
    quota = _KindQuota(cross_share)
    required = judgements_required or judgements_required_default()
    prompts = Prompt.objects.filter(status=PromptStatus.ACCEPTED)
    if prompt_ids is not None:
        wanted = set(prompt_ids)
        prompts = prompts.filter(pk__in=wanted)
        for missing in sorted(wanted - set(prompts.values_list("pk", flat=True))):
            summary.skip(missing, NOT_ACCEPTED)
    ids = prompts.order_by("pk").values_list("pk", flat=True).iterator(chunk_size=PROMPT_BATCH)
    for batch in _batches(ids, PROMPT_BATCH):
        with transaction.atomic():
            _build_batch(batch, per_prompt=per_prompt, seed=seed, quota=quota, required=required, summary=summary)
        if progress:
            progress(len(batch))
    tables_analyze(Pair)
    return summary


def _batches(items: Iterable[int], size: int) -> Iterator[list[int]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def _build_batch(
    prompt_ids: list[int], *, per_prompt: int, seed: int, quota: _KindQuota, required: int, summary: PairBuildSummary
) -> None:
    images: dict[int, list[_Img]] = defaultdict(list)
    rows = Image.objects.filter(prompt_id__in=prompt_ids).order_by("pk").values_list("prompt_id", "pk", "generator_id")
    for prompt_id, image_id, generator_id in rows:
        images[prompt_id].append(_Img(image_id, generator_id))
    existing: dict[int, list[tuple[int, int, str]]] = defaultdict(list)
    # Locked so that two builders running at once cannot both top up the same prompt.
    for prompt_id, first, second, kind in (
        Pair.objects.select_for_update()
        .filter(prompt_id__in=prompt_ids)
        .values_list("prompt_id", "image_first_id", "image_second_id", "kind")
    ):
        existing[prompt_id].append((first, second, kind))
    new_pairs: list[Pair] = []
    for prompt_id in prompt_ids:
        summary.prompts_seen += 1
        chosen = _plan_prompt(
            prompt_id,
            images[prompt_id],
            existing[prompt_id],
            per_prompt=per_prompt,
            seed=seed,
            quota=quota,
            summary=summary,
        )
        new_pairs += [
            Pair(prompt_id=prompt_id, image_first_id=a, image_second_id=b, kind=kind, judgements_required=required)
            for a, b, kind in chosen
        ]
    # Conflicts can only come from a concurrent builder; the unique pair constraint settles them.
    Pair.objects.bulk_create(new_pairs, batch_size=5000, ignore_conflicts=True)


def _plan_prompt(
    prompt_id: int,
    images: list[_Img],
    existing: list[tuple[int, int, str]],
    *,
    per_prompt: int,
    seed: int,
    quota: _KindQuota,
    summary: PairBuildSummary,
) -> list[tuple[int, int, str]]:
    if len(images) < 2:
        summary.skip(prompt_id, TOO_FEW_IMAGES)
        return []
    for _, _, kind in existing:
        quota.count(kind)
    wanted = per_prompt - len(existing)
    if wanted <= 0:
        summary.skip(prompt_id, ALREADY_FULL)
        return []
    chosen = _PromptPlanner(prompt_id, images, existing, seed).pick(wanted, quota)
    if not chosen:
        summary.skip(prompt_id, NO_CANDIDATES)
        return []
    summary.prompts_paired += 1
    summary.created.update(kind for _, _, kind in chosen)
    return chosen


class _PromptPlanner:
    """Greedy choice of one prompt's new pairs, least-exposed generators and images first."""

    def __init__(self, prompt_id: int, images: list[_Img], existing: list[tuple[int, int, str]], seed: int) -> None:
        generator_of = {image.id: image.generator_id for image in images}
        taken = {(first, second) for first, second, _ in existing}
        candidates = [(a.id, b.id) for a, b in combinations(images, 2) if (a.id, b.id) not in taken]
        # A string seed hashes the same in every process (unlike hash() of a tuple).
        random.Random(f"{seed}:{prompt_id}").shuffle(candidates)
        self.generator_of = generator_of
        self.by_kind: dict[str, list[tuple[int, int]]] = {PairKind.CROSS_GENERATOR: [], PairKind.SAME_GENERATOR: []}
        for a, b in candidates:
            self.by_kind[self._kind(a, b)].append((a, b))
        self.generator_seen: Counter = Counter(dict.fromkeys(generator_of.values(), 0))
        self.image_seen: Counter = Counter()
        for first, second, _ in existing:
            self._expose(first, second)

    def _kind(self, a: int, b: int) -> str:
        same = self.generator_of[a] == self.generator_of[b]
        return PairKind.SAME_GENERATOR if same else PairKind.CROSS_GENERATOR

    def _expose(self, a: int, b: int) -> None:
        self.generator_seen[self.generator_of.get(a)] += 1
        self.generator_seen[self.generator_of.get(b)] += 1
        self.image_seen[a] += 1
        self.image_seen[b] += 1

    def pick(self, wanted: int, quota: _KindQuota) -> list[tuple[int, int, str]]:
        chosen = []
        for _ in range(wanted):
            preferred = PairKind.CROSS_GENERATOR if quota.wants_cross() else PairKind.SAME_GENERATOR
            other = PairKind.SAME_GENERATOR if preferred == PairKind.CROSS_GENERATOR else PairKind.CROSS_GENERATOR
            kind = preferred if self.by_kind[preferred] else other
            if not self.by_kind[kind]:
                break
            a, b = self._take(kind)
            quota.count(kind)
            chosen.append((min(a, b), max(a, b), kind))
        return chosen

    def _take(self, kind: str) -> tuple[int, int]:
        candidates = self.by_kind[kind]
        # min() keeps the first of equals, and the list is in seeded-shuffle order: ties break by the seed.
        index = min(range(len(candidates)), key=lambda i: self._exposure(*candidates[i]))
        a, b = candidates.pop(index)
        self._expose(a, b)
        return a, b

    def _exposure(self, a: int, b: int) -> tuple[int, int]:
        gen_a, gen_b = self.generator_of[a], self.generator_of[b]
        return (
            max(self.generator_seen[gen_a], self.generator_seen[gen_b]),
            self.generator_seen[gen_a] + self.generator_seen[gen_b],
            self.image_seen[a] + self.image_seen[b],
        )
