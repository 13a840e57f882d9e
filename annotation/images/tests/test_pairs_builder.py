import hashlib
import itertools
from collections import Counter

import pytest
from django.core.management import call_command

from annotation import roles
from annotation.images.services.pair_builder import NOT_ACCEPTED, TOO_FEW_IMAGES, pairs_build
from annotation.models import Image, Pair, PairKind, Prompt, PromptStatus
from annotation.tests.factories import make_generator, make_prompt, make_user

pytestmark = pytest.mark.django_db
_serial = itertools.count(1)


def _images(prompt: Prompt, generator, count: int) -> list[Image]:
    """Image rows without files: the builder reads only ids, prompts and generators."""
    rows = []
    for _ in range(count):
        n = next(_serial)
        rows.append(
            Image(
                prompt=prompt,
                generator=generator,
                file=f"missing/{n}.png",
                sha256=hashlib.sha256(f"img{n}".encode()).hexdigest(),
                width=64,
                height=64,
                seed=n,
            )
        )
    return Image.objects.bulk_create(rows)


def _accepted_prompt(generators, per_generator: int) -> Prompt:
    prompt = make_prompt()
    Prompt.objects.filter(pk=prompt.pk).update(status=PromptStatus.ACCEPTED)
    for generator in generators:
        _images(prompt, generator, per_generator)
    return prompt


def _project(prompts: int = 60, per_generator: int = 3):
    generators = [make_generator() for _ in range(4)]
    return [_accepted_prompt(generators, per_generator) for _ in range(prompts)], generators


def _pair_set() -> set[tuple[int, int, int, str]]:
    return set(Pair.objects.values_list("prompt_id", "image_first_id", "image_second_id", "kind"))


def test_cross_share_is_80_percent_within_tolerance_on_hundreds_of_pairs():
    _project(prompts=60)
    summary = pairs_build(per_prompt=5, seed=7)
    kinds = Counter(Pair.objects.values_list("kind", flat=True))
    assert summary.total_created == 300 == sum(kinds.values())
    assert summary.created == kinds
    assert abs(kinds[PairKind.CROSS_GENERATOR] / 300 - 0.8) <= 0.02
    # Every stored pair is in canonical order and its kind matches its generators.
    for pair in Pair.objects.select_related("image_first", "image_second"):
        assert pair.image_first_id < pair.image_second_id
        same = pair.image_first.generator_id == pair.image_second.generator_id
        assert pair.kind == (PairKind.SAME_GENERATOR if same else PairKind.CROSS_GENERATOR)


def test_same_seed_same_pairs_and_another_seed_differs():
    _project(prompts=10)
    pairs_build(per_prompt=5, seed=3)
    first = _pair_set()
    Pair.objects.all().delete()
    pairs_build(per_prompt=5, seed=3)
    assert _pair_set() == first
    Pair.objects.all().delete()
    pairs_build(per_prompt=5, seed=4)
    assert _pair_set() != first


def test_rerun_adds_nothing_and_a_larger_target_only_tops_up():
    prompts, _ = _project(prompts=5)
    pairs_build(per_prompt=4, seed=1)
    before = _pair_set()
    again = pairs_build(per_prompt=4, seed=1)
    assert again.total_created == 0 and again.skipped == {"already has enough pairs": 5}
    assert _pair_set() == before
    more = pairs_build(per_prompt=6, seed=1)
    assert more.total_created == 10 and before < _pair_set()
    assert Counter(Pair.objects.values_list("prompt_id", flat=True)) == {p.pk: 6 for p in prompts}
    assert Pair.objects.count() == len(_pair_set())  # no pair twice


def test_generators_appear_evenly_in_each_prompts_pairs():
    prompts, generators = _project(prompts=20)
    pairs_build(per_prompt=10, seed=11)
    for prompt in prompts:
        seen = Counter()
        for first, second in Pair.objects.filter(prompt=prompt).values_list(
            "image_first__generator_id", "image_second__generator_id"
        ):
            seen[first] += 1
            seen[second] += 1
        # 10 pairs are 20 image appearances over 4 generators: 5 each, give or take one.
        assert sum(seen.values()) == 20
        assert set(seen) == {g.pk for g in generators}
        assert max(seen.values()) - min(seen.values()) <= 1


def test_prompts_with_one_image_or_not_accepted_are_skipped_with_a_reason():
    generator = make_generator()
    lonely = _accepted_prompt([generator], 1)
    pending = make_prompt()
    _images(pending, generator, 3)
    good = _accepted_prompt([generator, make_generator()], 2)
    summary = pairs_build(per_prompt=3, seed=0, prompt_ids=[lonely.pk, pending.pk, good.pk])
    assert summary.skipped == {TOO_FEW_IMAGES: 1, NOT_ACCEPTED: 1}
    assert summary.skipped_examples[TOO_FEW_IMAGES] == [lonely.pk]
    assert summary.skipped_examples[NOT_ACCEPTED] == [pending.pk]
    assert set(Pair.objects.values_list("prompt_id", flat=True)) == {good.pk}
    assert Pair.objects.count() == 3


def test_build_pairs_command_reports_what_it_built(capsys):
    generator = make_generator()
    lonely = _accepted_prompt([generator], 1)
    _accepted_prompt([generator, make_generator()], 3)
    call_command("build_pairs", "--per-prompt", "5", "--seed", "2", "--cross-share", "0.8", verbosity=0)
    out = capsys.readouterr().out
    assert "5 pairs created (4 cross-generator, 1 same-generator) for 1 of 2 prompts" in out
    assert f"skipped 1 prompts: fewer than 2 images (ids {lonely.pk})" in out


def test_admin_action_builds_pairs_for_selected_prompts(client):
    generators = [make_generator(), make_generator()]
    chosen = _accepted_prompt(generators, 2)
    other = _accepted_prompt(generators, 2)
    url = "/admin/annotation/prompt/"
    data = {"action": "build_pairs", "_selected_action": [chosen.pk]}
    client.force_login(make_user(roles.ANNOTATOR))
    assert client.post(url, data).status_code == 302 and not Pair.objects.exists()
    client.force_login(make_user(roles.ADMIN))
    assert client.post(url, data).status_code == 302
    assert Pair.objects.filter(prompt=chosen).count() == 6  # all 6 possible pairs of 4 images (target 6)
    assert not Pair.objects.filter(prompt=other).exists()


def test_seed_pairs_command_creates_exact_counts(capsys):
    call_command("seed_pairs", "--pairs", "100", "--prompts", "20", "--generators", "3", verbosity=0)
    assert "20 prompts, 80 images, 100 pairs" in capsys.readouterr().out
    assert Pair.objects.count() == 100
    assert set(Counter(Pair.objects.values_list("prompt_id", flat=True)).values()) == {5}
    assert Prompt.objects.filter(status=PromptStatus.ACCEPTED, source="seed").count() == 20
    kinds = Counter(Pair.objects.values_list("kind", flat=True))
    assert kinds[PairKind.CROSS_GENERATOR] > kinds[PairKind.SAME_GENERATOR] > 0
