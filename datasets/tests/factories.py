"""Builders for dataset tests: judged pairs with hand-chosen votes."""

import itertools

from annotation.dimensions import DIMENSION_KEYS
from annotation.images.services.pairs import pair_get_or_create
from annotation.models import AnnotatorProfile, Category, Judgement, Pair, Prompt
from annotation.tests.factories import make_generator, make_image, make_prompt, make_user

_durations = itertools.count(1000)


def judge(pair: Pair, annotator, choice: str | dict[str, str]) -> Judgement:
    """One judgement; `choice` is one answer for every dimension or a dimension -> answer mapping."""
    answers = choice if isinstance(choice, dict) else dict.fromkeys(DIMENSION_KEYS, choice)
    return Judgement.objects.create(
        pair=pair, annotator=annotator, left_side="first", duration_ms=next(_durations), **answers
    )


def exclude_annotator(user) -> None:
    AnnotatorProfile.objects.update_or_create(user=user, defaults={"judgements_excluded": True})


def set_category(prompt: Prompt, slug: str) -> None:
    Prompt.objects.filter(pk=prompt.pk).update(category=Category.objects.get(slug=slug, parent__isnull=True))


class JudgedPairs:
    """Pairs over a few shared images per prompt (image decoding is the slow part), judged by a pool."""

    def __init__(self, annotators: int = 3) -> None:
        self.annotators = [make_user(role="annotator") for _ in range(annotators)]
        self.generators = [make_generator(), make_generator()]

    def prompt_pairs(self, count: int, *, category: str | None = None, required: int = 3) -> list[Pair]:
        prompt = make_prompt()
        if category:
            set_category(prompt, category)
        images = [make_image(prompt, self.generators[i % 2]) for i in range(count + 1)]
        pairs = []
        for other in images[1:]:
            pair, _ = pair_get_or_create(image_a=images[0], image_b=other, judgements_required=required)
            pairs.append(pair)
        return pairs

    def judge_all(self, pair: Pair, choices: list) -> None:
        for annotator, choice in zip(self.annotators, choices, strict=False):
            judge(pair, annotator, choice)
