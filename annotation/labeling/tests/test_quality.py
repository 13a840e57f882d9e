"""Agreement arithmetic against published examples, and per-annotator figures on a tiny hand-computed table."""

import uuid

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from annotation import roles
from annotation.labeling.quality import (
    fleiss_kappa,
    krippendorff_alpha_counts,
    krippendorff_alpha_nominal,
    modal_rater_count,
    percent_agreement,
)
from annotation.labeling.selectors import quality_figures
from annotation.labeling.tests.labeling_factories import make_pairs
from annotation.models import Judgement, Pair
from annotation.tests.factories import make_user

# Fleiss (1971) as on Wikipedia: 10 subjects, 14 raters, 5 categories; P-bar 0.378, P-bar_e 0.213, kappa 0.210.
FLEISS_TABLE = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]
# Krippendorff, "Computing Krippendorff's Alpha-Reliability" (2011): 4 observers x 12 units, nominal alpha 0.743.
_ = None
KRIPPENDORFF_CODERS = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, _, _, _],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, _, 3],
    [_, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, _],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, _],
]


def test_fleiss_kappa_matches_fleiss_1971_example():
    assert fleiss_kappa(FLEISS_TABLE) == pytest.approx(0.20993, abs=1e-5)
    assert round(fleiss_kappa(FLEISS_TABLE), 3) == 0.210
    assert percent_agreement(FLEISS_TABLE) == pytest.approx(0.378, abs=5e-4)


def test_fleiss_kappa_refuses_unequal_rater_counts_and_is_undefined_on_one_category():
    with pytest.raises(ValueError):
        fleiss_kappa([[2, 1, 0], [1, 1, 0]])
    assert fleiss_kappa([[3, 0, 0], [3, 0, 0]]) is None
    assert fleiss_kappa([]) is None


def test_krippendorff_alpha_matches_the_published_nominal_example():
    units = list(zip(*KRIPPENDORFF_CODERS, strict=True))
    assert round(krippendorff_alpha_nominal(units), 3) == 0.743
    assert krippendorff_alpha_nominal(units) == pytest.approx(1 - 10 / 38.8889 * (40 - 1) / 40 * 40 / 39, rel=1e-3)


def test_krippendorff_alpha_counts_hand_computed():
    # Units (first, second, tie): (1, 2, 0) and (2, 0, 0). Disagreeing coincidences 2, margins (3, 2, 0), n = 5:
    # D_e term = (25 - 13) / 4 = 3, so alpha = 1 - 2 / 3.
    assert krippendorff_alpha_counts([(1, 2, 0), (2, 0, 0)]) == pytest.approx(1 / 3)
    assert krippendorff_alpha_counts([(1, 0, 0)]) is None  # one rating is no evidence
    assert modal_rater_count([(1, 2, 0), (2, 0, 0), (1, 0, 0)]) == 3  # 3 and 2 tie: the larger


def _judge(pair: Pair, annotator, aesthetics, detail, alignment, overall, ms) -> None:
    Judgement.objects.create(
        pair=pair,
        annotator=annotator,
        aesthetics=aesthetics,
        detail=detail,
        alignment=alignment,
        overall=overall,
        left_side="first",
        duration_ms=ms,
        client_token=uuid.uuid4(),
    )
    Pair.objects.filter(pk=pair.pk).update(judgements_done=Judgement.objects.filter(pair=pair).count())


@pytest.fixture
def table(db):
    """Three pairs, three annotators; pair 1 is gold (aesthetics second, overall first)."""
    one, two, three = make_pairs(3)
    Pair.objects.filter(pk=one.pk).update(is_gold=True, gold_answers={"aesthetics": "second", "overall": "first"})
    a, b, c = (make_user(roles.ANNOTATOR, username=name) for name in ("ann-a", "ann-b", "ann-c"))
    _judge(one, a, "first", "first", "tie", "first", 1000)
    _judge(one, b, "second", "first", "first", "first", 3000)
    _judge(one, c, "second", "second", "first", "second", 2000)
    _judge(two, a, "first", "tie", "tie", "second", 5000)
    _judge(two, b, "first", "tie", "first", "second", 2000)
    _judge(three, a, "tie", "tie", "tie", "tie", 4000)
    return a, b, c


def _by_name(figures: dict) -> dict:
    return {row["username"]: row for row in figures["annotators"]}


def test_per_annotator_figures_computed_by_hand(table):
    figures = quality_figures()
    assert (figures["judgements"], figures["pairs_judged"]) == (6, 3)
    rows = _by_name(figures)
    a = rows["ann-a"]
    assert (a["judgements"], a["median_ms"], a["excluded"]) == (3, 4000, False)
    # aesthetics: gold pair wrong (first vs second); agrees with nobody on pair 1 (0 of 2), with b on pair 2 (1 of 1).
    assert a["dimensions"]["aesthetics"] == {
        "gold_accuracy": 0.0,
        "gold_judged": 1,
        "agreement": pytest.approx(1 / 3),
        "agreement_comparisons": 3,
        "tie_rate": pytest.approx(1 / 3),
    }
    assert a["dimensions"]["overall"]["gold_accuracy"] == 1.0
    assert a["dimensions"]["overall"]["agreement"] == pytest.approx(2 / 3)
    assert a["dimensions"]["detail"]["gold_accuracy"] is None  # no gold answer for detail
    assert a["dimensions"]["detail"]["tie_rate"] == pytest.approx(2 / 3)
    assert a["dimensions"]["alignment"]["agreement"] == 0.0 and a["dimensions"]["alignment"]["tie_rate"] == 1.0
    assert rows["ann-b"]["median_ms"] == 2500
    assert rows["ann-b"]["dimensions"]["aesthetics"]["gold_accuracy"] == 1.0
    assert rows["ann-b"]["dimensions"]["aesthetics"]["agreement"] == pytest.approx(2 / 3)
    assert rows["ann-c"]["dimensions"]["overall"]["gold_accuracy"] == 0.0
    assert rows["ann-c"]["dimensions"]["aesthetics"]["agreement"] == pytest.approx(1 / 2)


def test_project_figures_per_dimension_computed_by_hand(table):
    aesthetics = quality_figures()["dimensions"]["aesthetics"]
    # Pair 1 (first 1, second 2), pair 2 (first 2); pair 3 has one judgement and is left out.
    assert aesthetics["units"] == 2
    assert aesthetics["percent_agreement"] == pytest.approx((1 / 3 + 1) / 2)
    # Fleiss on the modal rater count (3: tie with 2, the larger wins): pair 1 alone, (1/3 - 5/9) / (4/9).
    assert (aesthetics["fleiss_raters"], aesthetics["fleiss_units"]) == (3, 1)
    assert aesthetics["fleiss_kappa"] == pytest.approx(-0.5)
    assert aesthetics["krippendorff_alpha"] == pytest.approx(1 / 3)


def test_quality_page_and_api_are_for_reviewers(table, client):
    a, _, _ = table
    client.force_login(a)
    assert client.get(reverse("annotation:label-quality")).status_code == 403
    api = APIClient()
    api.force_authenticate(a)
    assert api.get(reverse("label-api:quality")).status_code == 403
    assert APIClient().get(reverse("label-api:quality")).status_code == 401  # no credentials at all

    reviewer = make_user(roles.REVIEWER)
    client.force_login(reviewer)
    page = client.get(reverse("annotation:label-quality"))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-annotator="ann-a"' in html and "0.333" in html and "-0.500" in html
    api.force_authenticate(reviewer)
    body = api.get(reverse("label-api:quality")).json()
    assert body["judgements"] == 6 and body["pairs_judged"] == 3
    assert body["dimensions"]["aesthetics"]["fleiss_kappa"] == pytest.approx(-0.5)
    assert body["dimensions"]["aesthetics"]["krippendorff_alpha"] == pytest.approx(1 / 3)
    a_row = next(row for row in body["annotators"] if row["username"] == "ann-a")
    assert a_row["median_ms"] == 4000 and a_row["dimensions"]["overall"]["agreement"] == pytest.approx(2 / 3)


def test_openapi_schema_lists_the_quality_endpoint(client, db):
    client.force_login(make_user(roles.REVIEWER))
    schema = client.get(reverse("api-schema")).content.decode()
    assert "/api/label/quality/" in schema and "krippendorff_alpha" in schema
