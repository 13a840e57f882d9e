import pytest
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from django.db.models import Count, F

from annotation.models import Image, Judgement, Pair, Prompt
from datasets.services.freeze import FreezeOptions, dataset_freeze
from datasets.services.synthetic import synthetic_seed

pytestmark = pytest.mark.django_db


def test_seed_synthetic_rows_are_valid_and_freezable():
    call_command("seed_synthetic", "--prompts", "40", "--pairs", "250", "--annotators", "5", verbosity=0)
    assert Prompt.objects.filter(source="synthetic", status="accepted").count() == 40
    assert Pair.objects.count() == 250
    assert Judgement.objects.count() == 750
    per_prompt = Pair.objects.values("prompt").annotate(n=Count("id")).values_list("n", flat=True)
    assert sorted(set(per_prompt)) == [6, 7]  # 250 over 40 prompts
    assert not Pair.objects.exclude(image_first__prompt=F("prompt")).exists()
    assert not Pair.objects.exclude(image_second__prompt=F("prompt")).exists()
    assert Pair.objects.filter(kind="cross").count() > 200
    assert set(Judgement.objects.values_list("overall", flat=True)) == {"first", "second", "tie"}
    # Sequences were reset: the ORM can add rows after the copied ones.
    assert (
        Image.objects.order_by("-id").first().pk < Prompt.objects.create(text="x", normalized_hash="0" * 64).pk + 10**9
    )
    version = dataset_freeze(name="synthetic", options=FreezeOptions(seed=1))
    assert version.stats["pairs"] == 250 and len(version.stats["categories"]["train"]) >= 5

    synthetic_seed(prompts=3, pairs=3, annotators=5)  # a second run adds, with fresh unique rows
    assert Pair.objects.count() == 253


def test_tiny_files_and_refusals():
    synthetic_seed(prompts=2, pairs=2, annotators=3, tiny_files=True)
    for image in Image.objects.all():
        assert default_storage.open(image.file.name).read()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(CommandError, match="own annotator"):
        call_command("seed_synthetic", "--prompts", "1", "--pairs", "1", "--annotators", "2", verbosity=0)
    assert Pair.objects.count() == 2
