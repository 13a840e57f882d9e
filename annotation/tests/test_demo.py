import pytest
from django.contrib.auth import get_user_model

from annotation.demo import GENERATORS, IMAGES_PER_GENERATOR, PROMPTS_WITH_IMAGES, demo_load
from annotation.models import Generator, Image, Pair, Prompt, PromptStatus

pytestmark = pytest.mark.django_db


def _table_sizes() -> dict[str, int]:
    return {
        "prompts": Prompt.objects.count(),
        "generators": Generator.objects.count(),
        "images": Image.objects.count(),
        "pairs": Pair.objects.count(),
        "users": get_user_model().objects.count(),
    }


def test_demo_loads_a_usable_project():
    summary = demo_load()
    images = PROMPTS_WITH_IMAGES * len(GENERATORS) * IMAGES_PER_GENERATOR
    assert _table_sizes() == {"prompts": 300, "generators": 3, "images": images, "pairs": 120, "users": 3}
    assert Prompt.objects.filter(status=PromptStatus.ACCEPTED).count() == PROMPTS_WITH_IMAGES
    admin = get_user_model().objects.get(username="demo-admin")
    assert admin.is_staff and admin.check_password(summary.passwords["demo-admin"])
    assert Image.objects.filter(thumbnail="").count() == 0


def test_demo_loader_runs_twice_without_duplicating_anything():
    demo_load()
    before = _table_sizes()
    summary = demo_load()
    assert _table_sizes() == before
    assert (summary.prompts_created, summary.images_created, summary.pairs_created) == (0, 0, 0)
    annotator = get_user_model().objects.get(username="demo-annotator")
    assert annotator.check_password(summary.passwords["demo-annotator"])
    assert list(annotator.groups.values_list("name", flat=True)) == ["annotator"]
