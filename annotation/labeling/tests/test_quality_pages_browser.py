"""Real headless Chromium on the reviewer pages: quality figures and charts, adjudicating a disputed pair."""

import pytest

from annotation import roles
from annotation.labeling.tests import test_disputes
from annotation.models import Adjudication
from annotation.tests.factories import make_user

pytestmark = pytest.mark.django_db(transaction=True)
# The disputes tests' `pairs` fixture (unanimous, split, partial, fresh), offered here.
pairs = test_disputes.pairs


def _annotators(split) -> list[str]:
    """The three annotators' names, in the order they judged the split pair: first, second, tie."""
    return list(split.judgements.order_by("id").values_list("annotator__username", flat=True))


def _values(page, selector: str) -> dict[tuple[str, str], str]:
    return {
        (rect.evaluate("r => r.closest('g').dataset.row"), rect.get_attribute("data-figure")): rect.get_attribute(
            "data-value"
        )
        for rect in page.locator(selector).all()
    }


def test_reviewer_sees_the_figures_and_their_charts(browser_login, live_server, pairs):
    a, b, c = _annotators(pairs[1])
    make_user(roles.REVIEWER, username="rev")
    page = browser_login("rev")
    page.goto(f"{live_server.url}/label/quality/")

    assert page.locator("#dimension-figures tr[data-dimension]").count() == 4
    # Every dimension has the same votes: agreement 1/3 (only the unanimous pair agrees), Fleiss' kappa 0
    # (pairs with three judgements: P = 1/2, P_e = (4/6)^2 + 2 (1/6)^2 = 1/2), alpha 1 - 5 / (34/7) = -1/34.
    bars = _values(page, "#dimension-chart rect.bar")
    assert len(bars) == 12
    for dimension in ("aesthetics", "detail", "alignment", "overall"):
        assert bars[(dimension, "agreement")] == "0.333"
        assert bars[(dimension, "kappa")] == "0.000"
        assert bars[(dimension, "alpha")] == "-0.029"
    assert page.locator("#dimension-chart svg").is_visible()
    # A negative alpha draws its bar left of the zero line.
    zero = float(page.locator("#dimension-chart line[stroke='#5b6672']").get_attribute("x1"))
    alpha = page.locator("#dimension-chart g[data-row=overall] rect[data-figure=alpha]")
    assert float(alpha.get_attribute("x")) + float(alpha.get_attribute("width")) == pytest.approx(zero)

    # Per annotator (overall): agreement and tie rate drawn, gold accuracy n/a (no gold pair yet).
    people = _values(page, "#annotator-chart rect.bar")
    assert sorted(people) == sorted((name, f) for name in (a, b, c) for f in ("agreement", "ties"))
    assert people[(a, "agreement")] == "0.400"  # agrees with 2 of the 5 others it met
    assert people[(c, "ties")] == "0.500"  # tie on the split pair, first on the unanimous one
    assert page.locator("#annotator-chart text.na[data-figure=gold]").count() == 3


def test_reviewer_adjudicates_a_disputed_pair_in_the_browser(browser_login, live_server, pairs):
    _, split, _, _ = pairs
    reviewer = make_user(roles.REVIEWER, username="rev")
    page = browser_login("rev")
    page.goto(f"{live_server.url}/label/disputes/")
    card = page.locator(f"#pair-{split.pk}")
    assert card.locator("td.num").first.inner_text() == "1 / 1 / 1"
    answers = {"aesthetics": "second", "detail": "first", "alignment": "tie", "overall": "second"}
    for key, value in answers.items():
        card.locator(f"input[aria-label='{key} {value}']").check()
    card.locator("textarea[name=note]").fill("the second one has the better hands")
    card.locator("button[value=adjudicate]").click()
    page.wait_for_selector(f"text=Pair {split.pk} adjudicated.")

    adjudication = Adjudication.objects.get()
    assert (adjudication.pair_id, adjudication.reviewer_id) == (split.pk, reviewer.pk)
    assert {key: getattr(adjudication, key) for key in answers} == answers
    assert adjudication.note == "the second one has the better hands"
    # The page now shows the stored answers checked, and the pair marked as adjudicated.
    card = page.locator(f"#pair-{split.pk}")
    assert "adjudicated" in card.inner_text()
    assert card.locator("input[aria-label='overall second']").is_checked()


def test_an_annotator_is_refused_the_reviewer_pages(browser_login, live_server, pairs):
    _, split, _, _ = pairs
    page = browser_login(_annotators(split)[0])
    for path in ("/label/quality/", "/label/disputes/"):
        response = page.goto(f"{live_server.url}{path}")
        assert response.status == 403, path
        assert page.locator("svg rect.bar, form[action$='/adjudicate/']").count() == 0
    # Not even a forged form post from the annotator's session gets through.
    token = page.context.cookies()
    csrf = next(cookie["value"] for cookie in token if cookie["name"] == "csrftoken")
    response = page.request.post(
        f"{live_server.url}/label/disputes/adjudicate/",
        form={
            "pair_id": str(split.pk),
            "action": "adjudicate",
            "aesthetics": "first",
            "detail": "first",
            "alignment": "first",
            "overall": "first",
        },
        headers={"X-CSRFToken": csrf, "Referer": f"{live_server.url}/label/disputes/"},
    )
    assert response.status == 403
    assert not Adjudication.objects.exists()
