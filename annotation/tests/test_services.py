import pytest

from annotation.images.services.pairs import PairRejected, pair_get_or_create
from annotation.images.services.store import ImageRejected, image_decode
from annotation.models import PairKind, Prompt
from annotation.prompts.normalize import normalize_prompt
from annotation.prompts.services.store import PromptRejected, prompt_get_or_create
from annotation.tests.factories import make_generator, make_image, make_prompt


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  A  Red\tFOX ", "a red fox"),
        ("a fox!!!  in snow,, ,", "a fox! in snow"),
        ("ｆｕｌｌｗｉｄｔｈ text", "fullwidth text"),
        ("cat , dog", "cat, dog"),
    ],
)
def test_normalize_prompt(raw, expected):
    assert normalize_prompt(raw) == expected


@pytest.mark.django_db
def test_prompt_with_same_normalised_text_is_not_stored_twice():
    first, created = prompt_get_or_create(text="A red fox!!", source="test")
    again, created_again = prompt_get_or_create(text="  a RED fox! ", source="other")
    assert created and not created_again
    assert again.pk == first.pk
    assert Prompt.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("text", ["", "   ", "x" * 2001])
def test_invalid_prompt_text_is_refused(text):
    with pytest.raises(PromptRejected):
        prompt_get_or_create(text=text)
    assert not Prompt.objects.exists()


def test_image_decode_refuses_text_and_truncated_png():
    from annotation.demo import placeholder_png

    png = placeholder_png(1, label="x")
    assert image_decode(png).width == 256
    with pytest.raises(ImageRejected, match="not an image"):
        image_decode(b"just some text, renamed to .png")
    with pytest.raises(ImageRejected, match="truncated"):
        image_decode(png[: len(png) // 2])


@pytest.mark.django_db
def test_pair_is_canonical_and_kind_follows_generators():
    prompt = make_prompt()
    one, two = make_generator(), make_generator()
    a, b, c = make_image(prompt, one), make_image(prompt, one), make_image(prompt, two)
    pair, created = pair_get_or_create(image_a=b, image_b=a)
    assert created and (pair.image_first_id, pair.image_second_id) == (a.pk, b.pk)
    assert pair.kind == PairKind.SAME_GENERATOR
    assert pair_get_or_create(image_a=a, image_b=b) == (pair, False)
    assert pair_get_or_create(image_a=a, image_b=c)[0].kind == PairKind.CROSS_GENERATOR


@pytest.mark.django_db
def test_pair_across_prompts_is_refused():
    generator = make_generator()
    with pytest.raises(PairRejected, match="different prompts"):
        pair_get_or_create(image_a=make_image(make_prompt(), generator), image_b=make_image(make_prompt(), generator))
