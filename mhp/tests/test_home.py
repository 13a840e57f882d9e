"""The reviewer's home: the disputes and prompt disagreements waiting, counted as their pages count them."""

import pytest
from django.core.cache import cache
from django.db.models import F
from django.urls import reverse

from annotation import roles
from annotation.labeling.tests.labeling_factories import judged_by, make_pairs
from annotation.models import Adjudication, Judgement, Pair
from annotation.prompts.tests.test_prompt_disagreements import _disputed
from annotation.tests.factories import make_user


@pytest.fixture(autouse=True)
def _fresh_cache():
    # The homes read cached figures (open pairs, quality); a previous test's must not stand in for this one's.
    cache.clear()


pytestmark = pytest.mark.django_db


def _count(content: bytes, name: str) -> int:
    marker = f'data-count="{name}">'.encode()
    start = content.index(marker) + len(marker)
    return int(content[start : content.index(b"<", start)])


def test_reviewer_home_counts_disputes_and_prompt_disagreements(client):
    # First: the disagreement builder claims the first pending prompt, so it must be the only one yet.
    _disputed()
    _disputed("a teapot shaped like a snail, studio light")
    agreed, split, adjudicated, single = make_pairs(4)
    annotators = [make_user(roles.ANNOTATOR) for _ in range(2)]
    judged_by(annotators[0], [agreed, split, adjudicated, single])
    judged_by(annotators[1], [agreed, split, adjudicated])
    # The second annotator saw `split` and `adjudicated` differently on one dimension.
    Judgement.objects.filter(annotator=annotators[1], pair__in=[split, adjudicated]).update(overall="second")
    reviewer = make_user(roles.REVIEWER)
    Adjudication.objects.create(
        pair=adjudicated, reviewer=reviewer, aesthetics="first", detail="second", alignment="tie", overall="first"
    )

    client.force_login(reviewer)
    content = client.get(reverse("home")).content
    assert _count(content, "disputes") == 1  # split: judged twice, answers differ, not adjudicated
    assert _count(content, "prompt-disagreements") == 2
    assert b'id="quality-summary"' in content
    assert _count(content, "pairs-waiting") == Pair.objects.filter(judgements_done__lt=F("judgements_required")).count()


def test_annotator_home_has_no_review_figures(client):
    client.force_login(make_user(roles.ANNOTATOR))
    content = client.get(reverse("home")).content
    assert b'data-count="pairs-waiting"' in content
    assert b'data-count="disputes"' not in content and b'id="quality-summary"' not in content
