"""The balance page: accepted prompts per category against target shares, deficits, "fill all deficits"."""

import pytest
from django.core.exceptions import ValidationError

from annotation import roles
from annotation.models import AugmentationJob, Category
from annotation.prompts.selectors import category_balance
from annotation.prompts.services.augmentation import augmentation_jobs_create
from annotation.prompts.services.store import prompt_accept
from annotation.tests.factories import make_prompt, make_user

pytestmark = pytest.mark.django_db

BALANCE_URL = "/admin/annotation/category/balance/"


@pytest.fixture
def accepted():
    """Shares animals 0.5, food 0.25, arts 0.25, the rest none; accepted: animals 1, food 6, arts 1, none 2."""
    Category.objects.filter(parent__isnull=True).update(target_share=None)
    shares = {"animals": 0.5, "food": 0.25, "arts": 0.25}
    for slug, share in shares.items():
        Category.objects.filter(slug=slug).update(target_share=share)
    for slug, count in {"animals": 1, "food": 6, "arts": 1, None: 2}.items():
        category = Category.objects.get(slug=slug) if slug else None
        for _ in range(count):
            prompt_accept(prompt=make_prompt(), category=category)
    make_prompt()  # pending: not counted


def test_deficits_are_target_share_times_accepted_minus_actual(accepted):
    balance = category_balance()
    rows = {row.category.slug: (row.accepted, row.target_count, row.deficit) for row in balance.rows}
    # 10 accepted: animals 0.5 x 10 = 5, deficit 4; food 2.5 -> 3, has 6, deficit 0; arts 2.5 -> 3, deficit 2.
    assert rows == {
        "characters": (0, 0, 0),
        "scenes": (0, 0, 0),
        "objects": (0, 0, 0),
        "animals": (1, 5, 4),
        "plants": (0, 0, 0),
        "food": (6, 3, 0),
        "arts": (1, 3, 2),
    }
    assert (balance.total_accepted, balance.uncategorised, balance.total_deficit) == (10, 2, 6)


def test_subcategories_are_counted(accepted):
    animals = Category.objects.get(slug="animals")
    birds = animals.children.get(slug="animals-birds")
    prompt = make_prompt()
    prompt_accept(prompt=prompt, category=animals)
    prompt.subcategory = birds
    prompt.save()
    row = next(row for row in category_balance().rows if row.category == animals)
    assert {sub.category.slug: sub.accepted for sub in row.subcategories}["animals-birds"] == 1
    assert (row.accepted, row.target_count, row.deficit) == (2, 6, 4)  # 11 accepted: 5.5 -> 6


def test_the_page_shows_the_figures_and_fill_all_deficits_queues_one_job_per_deficit(
    client, accepted, django_capture_on_commit_callbacks, settings
):
    settings.OPENAI_API_KEY = "test-key"  # without one nothing is queued (test_augmentation)
    client.force_login(make_user(roles.ADMIN))
    page = client.get(BALANCE_URL).content.decode()
    assert 'id="balance-animals"' in page and '<td class="deficit-count deficit">4</td>' in page
    assert '<strong id="total-deficit">6</strong>' in page and "Fill all deficits" in page
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(
            "/admin/annotation/augmentationjob/start/", {"category": "", "requested_count": 3, "llm_model": "m"}
        )
    assert response.status_code == 302 and len(callbacks) == 2
    jobs = {job.category.slug: job.requested_count for job in AugmentationJob.objects.all()}
    assert jobs == {"animals": 3, "arts": 2}  # capped at the count given


def test_fill_all_deficits_without_a_deficit_is_refused_and_creates_nothing(settings):
    settings.OPENAI_API_KEY = "test-key"
    Category.objects.filter(parent__isnull=True).update(target_share=None)
    with pytest.raises(ValidationError, match="no category has a deficit"):
        augmentation_jobs_create(category=None, requested_count=5, llm_model="m", created_by=None)
    assert AugmentationJob.objects.count() == 0


def test_an_empty_table_has_no_deficit():
    balance = category_balance()
    assert (balance.total_accepted, balance.total_deficit) == (0, 0)
    assert {row.target_count for row in balance.rows} == {0}
