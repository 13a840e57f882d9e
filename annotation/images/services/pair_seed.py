"""Scale data for benchmarks: prompts, generators, image rows (no files) and pairs, bulk-inserted fast.

Images get a fake sha256 and a file name that does not exist; nothing here is meant for a real
project's data, only for measuring the queue and the pages on realistic table sizes.
"""

import hashlib
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations

from django.db import transaction

from annotation.labeling.redundancy import judgements_required_default
from annotation.models import Generator, GeneratorFamily, Image, Pair, PairKind, Prompt, PromptStatus
from mhp.db import tables_analyze

# Prompts per transaction: their images and pairs go in with them (about 10k rows per statement).
PROMPTS_PER_BATCH = 2000
ROWS_PER_STATEMENT = 10_000


@dataclass
class SeedSummary:
    tag: str
    prompts: int = 0
    images: int = 0
    pairs: int = 0


def _images_per_prompt(pairs_per_prompt: int, generators: int) -> int:
    """Enough images for the pairs, at least one per generator (n * (n - 1) / 2 >= pairs)."""
    needed = math.ceil((1 + math.sqrt(1 + 8 * pairs_per_prompt)) / 2)
    return max(needed, generators, 2)


def pairs_seed(
    *, pairs: int, prompts: int | None = None, generators: int = 4, progress: Callable[[int], None] | None = None
) -> SeedSummary:
    """About `pairs` pairs over `prompts` accepted prompts (default: 6 pairs each) and `generators` generators."""
    if pairs < 1 or generators < 1:
        raise ValueError("pairs and generators must be at least 1")
    prompts = prompts or max(1, math.ceil(pairs / 6))
    summary = SeedSummary(tag=secrets.token_hex(4))
    gens = [
        Generator.objects.get_or_create(name=f"seed-{index}", defaults={"family": GeneratorFamily.DIFFUSION})[0].pk
        for index in range(generators)
    ]
    per_prompt = math.ceil(pairs / prompts)
    plan = _PromptPlan(n_images=_images_per_prompt(per_prompt, generators), generator_ids=gens)
    for start in range(0, prompts, PROMPTS_PER_BATCH):
        count = min(PROMPTS_PER_BATCH, prompts - start)
        wanted = min(per_prompt * count, pairs - summary.pairs)
        with transaction.atomic():
            _seed_batch(summary, plan, start, count, wanted)
        if progress:
            progress(count)
    tables_analyze(Pair)
    return summary


@dataclass(frozen=True)
class _PromptPlan:
    n_images: int
    generator_ids: list[int]


def _seed_batch(summary: SeedSummary, plan: _PromptPlan, start: int, count: int, wanted: int) -> None:
    texts = [f"seed {summary.tag} prompt {start + offset}: a lighthouse on a cliff at dusk" for offset in range(count)]
    prompt_rows = Prompt.objects.bulk_create(
        [
            Prompt(
                text=text,
                normalized_text=text,
                normalized_hash=hashlib.sha256(text.encode()).hexdigest(),
                source="seed",
                status=PromptStatus.ACCEPTED,
            )
            for text in texts
        ],
        batch_size=ROWS_PER_STATEMENT,
    )
    images = Image.objects.bulk_create(
        [_image(summary.tag, prompt.pk, index, plan) for prompt in prompt_rows for index in range(plan.n_images)],
        batch_size=ROWS_PER_STATEMENT,
    )
    pair_rows = []
    per_prompt = math.ceil(wanted / count)
    for offset in range(count):
        own = images[offset * plan.n_images : (offset + 1) * plan.n_images]
        for first, second in list(combinations(own, 2))[: min(per_prompt, wanted - len(pair_rows))]:
            pair_rows.append(_pair(first, second))
    Pair.objects.bulk_create(pair_rows, batch_size=ROWS_PER_STATEMENT)
    summary.prompts += count
    summary.images += len(images)
    summary.pairs += len(pair_rows)


def _image(tag: str, prompt_id: int, index: int, plan: _PromptPlan) -> Image:
    sha = hashlib.sha256(f"{tag}:{prompt_id}:{index}".encode()).hexdigest()
    return Image(
        prompt_id=prompt_id,
        generator_id=plan.generator_ids[index % len(plan.generator_ids)],
        file=f"seed/missing/{sha}.png",
        sha256=sha,
        width=512,
        height=512,
        seed=index,
    )


def _pair(first: Image, second: Image) -> Pair:
    same = first.generator_id == second.generator_id
    return Pair(
        prompt_id=first.prompt_id,
        image_first_id=first.pk,
        image_second_id=second.pk,
        kind=PairKind.SAME_GENERATOR if same else PairKind.CROSS_GENERATOR,
        judgements_required=judgements_required_default(),
    )
