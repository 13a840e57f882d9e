"""The quality figures are cached, and still right after a new judgement, a gold answer or an exclusion."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from annotation import roles
from annotation.labeling.services import annotator_deactivate, pair_gold_set
from annotation.labeling.tests.labeling_factories import make_pairs
from annotation.tests.factories import make_user
from datasets.tests.factories import judge

pytestmark = pytest.mark.django_db
PAGE = reverse("annotation:label-quality")


@pytest.fixture
def table():
    """Two pairs: one judged first by a and b, one judged first by a and second by b."""
    agreed, split = make_pairs(2, required=3)
    a, b = make_user(roles.ANNOTATOR, username="cache-a"), make_user(roles.ANNOTATOR, username="cache-b")
    judge(agreed, a, "first")
    judge(agreed, b, "first")
    judge(split, a, "first")
    judge(split, b, "second")
    return agreed, split, a, b


@pytest.fixture
def reviewer(client):
    client.force_login(make_user(roles.REVIEWER))
    return client


def _figures(client) -> dict:
    response = client.get(PAGE)
    assert response.status_code == 200
    return response.context["figures"]


def _reads_judgement_choices(queries) -> bool:
    return any('"annotation_judgement"' in q["sql"] and '"aesthetics"' in q["sql"] for q in queries)


def test_a_repeated_view_is_served_from_the_cache(reviewer, table):
    with CaptureQueriesContext(connection) as first:
        figures = _figures(reviewer)
    assert _reads_judgement_choices(first.captured_queries)
    with CaptureQueriesContext(connection) as again:
        assert _figures(reviewer) == figures
    # The second view reads only the fingerprint (counts, highest id, gold answers, exclusions).
    assert not _reads_judgement_choices(again.captured_queries)
    assert figures["judgements"] == 4 and figures["dimensions"]["overall"]["percent_agreement"] == 0.5


def test_a_new_judgement_changes_the_figures_shown(reviewer, table):
    agreed, split, a, b = table
    before = _figures(reviewer)
    assert [row["username"] for row in before["annotators"]] == ["cache-a", "cache-b"]
    c = make_user(roles.ANNOTATOR, username="cache-c")
    judge(split, c, "first")
    after = _figures(reviewer)
    assert (after["judgements"], before["judgements"]) == (5, 4)
    # split is now (first, second, first): 1/3 of its rater pairs agree; agreed still 1 -> (1 + 1/3) / 2.
    assert after["dimensions"]["overall"]["percent_agreement"] == pytest.approx(2 / 3)
    assert [row["username"] for row in after["annotators"]] == ["cache-a", "cache-b", "cache-c"]
    page = reviewer.get(PAGE).content.decode()
    assert "5 judgements on 2 pairs" in page and 'data-annotator="cache-c"' in page
    # The API reads the same figures.
    api = APIClient()
    api.force_authenticate(make_user(roles.REVIEWER))
    assert api.get(reverse("label-api:quality")).json()["judgements"] == 5


def test_gold_answers_and_exclusions_change_the_figures_shown(reviewer, table):
    agreed, split, a, b = table
    assert _figures(reviewer)["annotators"][1]["dimensions"]["overall"]["gold_accuracy"] is None
    pair_gold_set(
        reviewer=make_user(roles.REVIEWER),
        pair_id=split.pk,
        answers=dict.fromkeys(("aesthetics", "detail", "alignment", "overall"), "second"),
    )
    rows = {row["username"]: row for row in _figures(reviewer)["annotators"]}
    assert rows["cache-a"]["dimensions"]["overall"]["gold_accuracy"] == 0.0
    assert rows["cache-b"]["dimensions"]["overall"]["gold_accuracy"] == 1.0
    # Answers changed on a pair that is already gold.
    pair_gold_set(
        reviewer=make_user(roles.REVIEWER),
        pair_id=split.pk,
        answers=dict.fromkeys(("aesthetics", "detail", "alignment", "overall"), "first"),
    )
    rows = {row["username"]: row for row in _figures(reviewer)["annotators"]}
    assert rows["cache-a"]["dimensions"]["overall"]["gold_accuracy"] == 1.0
    annotator_deactivate(user=b)
    rows = {row["username"]: row for row in _figures(reviewer)["annotators"]}
    assert (rows["cache-a"]["excluded"], rows["cache-b"]["excluded"]) == (False, True)
