"""The database itself refuses what must never be stored (checked on PostgreSQL)."""

import pytest
from django.db import IntegrityError, transaction

from annotation.models import Choice, Image, Judgement, Pair, PairKind, Side
from annotation.tests.factories import make_generator, make_image, make_pair, make_prompt, make_user

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def _judgement(pair, annotator, **overrides) -> Judgement:
    fields = {
        "pair": pair,
        "annotator": annotator,
        "aesthetics": Choice.FIRST,
        "detail": Choice.SECOND,
        "alignment": Choice.TIE,
        "overall": Choice.FIRST,
        "left_side": Side.SECOND,
        "duration_ms": 4200,
    }
    fields.update(overrides)
    return Judgement.objects.create(**fields)


def test_second_judgement_by_same_annotator_on_same_pair_is_refused():
    pair, annotator = make_pair(), make_user()
    _judgement(pair, annotator)
    with pytest.raises(IntegrityError), transaction.atomic():
        _judgement(pair, annotator, overall=Choice.SECOND)
    assert Judgement.objects.filter(pair=pair).count() == 1
    assert Judgement.objects.get(pair=pair).overall == Choice.FIRST


def test_another_annotator_may_judge_the_same_pair():
    pair = make_pair()
    _judgement(pair, make_user())
    _judgement(pair, make_user())
    assert Judgement.objects.filter(pair=pair).count() == 2


def test_judgement_choice_outside_first_second_tie_is_refused():
    with pytest.raises(IntegrityError), transaction.atomic():
        _judgement(make_pair(), make_user(), detail="left")
    assert not Judgement.objects.exists()


def test_image_sha256_is_unique():
    image = make_image(make_prompt(), make_generator())
    duplicate = Image(
        prompt=image.prompt, generator=image.generator, file=image.file.name, sha256=image.sha256, width=1, height=1
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        duplicate.save()
    assert Image.objects.filter(sha256=image.sha256).count() == 1


def _raw_pair(first: Image, second: Image) -> Pair:
    return Pair.objects.create(
        prompt=first.prompt, image_first=first, image_second=second, kind=PairKind.SAME_GENERATOR
    )


def test_pair_of_an_image_with_itself_is_refused():
    image = make_image(make_prompt(), make_generator())
    with pytest.raises(IntegrityError), transaction.atomic():
        _raw_pair(image, image)
    assert not Pair.objects.exists()


def test_pair_out_of_canonical_order_is_refused():
    prompt, generator = make_prompt(), make_generator()
    low, high = sorted((make_image(prompt, generator), make_image(prompt, generator)), key=lambda i: i.pk)
    with pytest.raises(IntegrityError), transaction.atomic():
        _raw_pair(high, low)
    _raw_pair(low, high)
    with pytest.raises(IntegrityError), transaction.atomic():
        _raw_pair(low, high)
    assert Pair.objects.count() == 1


def test_judgements_done_cannot_exceed_required():
    pair = make_pair()
    pair.judgements_done = pair.judgements_required + 1
    with pytest.raises(IntegrityError), transaction.atomic():
        pair.save()
    pair.refresh_from_db()
    assert pair.judgements_done == 0
