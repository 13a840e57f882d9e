"""Builders for labeling tests: many pairs of one prompt from few images (decoding images is the slow part)."""

import itertools

from django.db.models import F

from annotation.images.services.pairs import pair_get_or_create
from annotation.models import Choice, Judgement, Pair, Side
from annotation.tests.factories import make_generator, make_image, make_prompt

ANSWERS_LEFT = {"aesthetics": "left", "detail": "left", "alignment": "tie", "overall": "right"}


def make_pairs(count: int, *, required: int | None = 3, generators: int = 3) -> list[Pair]:
    """`count` pairs over as few images of one prompt as needed, each needing `required` judgements (None:
    the count the redundancy policy gives a new pair)."""
    prompt = make_prompt()
    gens = [make_generator() for _ in range(generators)]
    images = []
    pairs: list[Pair] = []
    for index in itertools.count():
        images.append(make_image(prompt, gens[index % generators]))
        for other in images[:-1]:
            pair, _ = pair_get_or_create(image_a=other, image_b=images[-1], judgements_required=required)
            pairs.append(pair)
            if len(pairs) == count:
                return pairs
    raise AssertionError("unreachable")


def judged_by(user, pairs: list[Pair]) -> None:
    """Judgements stored as if `user` had judged each of `pairs` (no leases: the state after submits)."""
    answers = {"aesthetics": Choice.FIRST, "detail": Choice.SECOND, "alignment": Choice.TIE, "overall": Choice.FIRST}
    Judgement.objects.bulk_create(
        Judgement(pair=pair, annotator=user, left_side=Side.FIRST, duration_ms=900, **answers) for pair in pairs
    )
    Pair.objects.filter(pk__in=[pair.pk for pair in pairs]).update(judgements_done=F("judgements_done") + 1)
