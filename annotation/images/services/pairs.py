from annotation.labeling.redundancy import judgements_required_default
from annotation.models import Image, Pair, PairKind
from annotation.unique import get_or_create_unique


class PairRejected(ValueError):
    """The two images cannot form a pair; the message says why."""


def pair_get_or_create(*, image_a: Image, image_b: Image, judgements_required: int | None = None) -> tuple[Pair, bool]:
    """A pair of two images of one prompt, stored in canonical order (smaller id first)."""
    if image_a.pk == image_b.pk:
        raise PairRejected("an image cannot be paired with itself")
    if image_a.prompt_id != image_b.prompt_id:
        raise PairRejected("the two images belong to different prompts")
    first, second = sorted((image_a, image_b), key=lambda image: image.pk)
    kind = PairKind.SAME_GENERATOR if first.generator_id == second.generator_id else PairKind.CROSS_GENERATOR
    return get_or_create_unique(
        Pair.objects.filter(image_first=first, image_second=second),
        lambda: Pair(
            prompt_id=first.prompt_id,
            image_first=first,
            image_second=second,
            kind=kind,
            judgements_required=judgements_required or judgements_required_default(),
        ),
    )
