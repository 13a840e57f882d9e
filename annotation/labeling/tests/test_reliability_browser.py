"""Real headless Chromium: a reviewer reaches the annotator flags from home and dismisses one; quality staff
refit the reliabilities from the quality page and read them in the annotator table."""

import pytest

from annotation import roles
from annotation.dimensions import DIMENSION_KEYS
from annotation.labeling.tests.test_reliability import PLANTED, make_world
from annotation.models import AnnotatorFlag, AnnotatorReliability, FlagKind, ReliabilityRun
from annotation.tests.factories import make_user
from mhp.jobs import JobStatus

pytestmark = pytest.mark.django_db(transaction=True)
NOTE = "new annotator; the side they favour is the better image here"


def test_a_reviewer_reaches_the_flags_from_home_and_dismisses_one(browser_login, live_server):
    spammer = make_user(roles.ANNOTATOR, username="spammer")
    figures = {"dimensions": {key: {"accuracy": 0.41, "informativeness": 0.03} for key in DIMENSION_KEYS}}
    flag = AnnotatorFlag.objects.create(
        annotator=spammer, kind=FlagKind.SPAMMER, detail="Mean informativeness 0.03", figures=figures
    )
    reviewer = make_user(roles.REVIEWER, username="rev")
    page = browser_login("rev")

    assert page.locator("#review [data-count=flags-open]").inner_text() == "1"
    page.locator("#review").get_by_role("link", name="Annotator flags").click()
    page.wait_for_url(f"{live_server.url}/label/flags/")
    card = page.locator(f"#flag-{flag.pk}")
    assert "spammer" in card.locator("h2").inner_text()
    assert card.locator("table.figures td.num").first.inner_text() == "0.41"

    # Without a note the dismissal is refused, and the flag stays open.
    card.get_by_role("button", name="Dismiss").click()
    page.wait_for_selector("text=say in a note why the flag is dismissed")
    assert AnnotatorFlag.objects.get(pk=flag.pk).reviewed_at is None

    card = page.locator(f"#flag-{flag.pk}")
    card.locator("textarea[name=note]").fill(NOTE)
    card.get_by_role("button", name="Dismiss").click()
    page.wait_for_selector("text=Flag on spammer dismissed.")
    assert page.locator("#no-open-flags").is_visible()
    assert "the side they favour" in page.locator("#reviewed-flags").inner_text()
    flag.refresh_from_db()
    assert (flag.reviewed_by, flag.review_note) == (reviewer, NOTE)


def test_quality_staff_refit_the_reliabilities_and_read_them_in_the_annotator_table(browser_login, live_server):
    make_world(pairs=40)
    reviewer = make_user(roles.REVIEWER, username="rev")
    page = browser_login("rev")
    page.locator("#quality-summary").get_by_role("link", name="(details)").click()
    page.wait_for_url(f"{live_server.url}/label/quality/")
    assert page.locator("#reliability-status").inner_text() == "No fit yet."
    assert "not fitted yet" in page.locator('tr[data-of="careful overall"]').inner_text()

    page.get_by_role("button", name="Refit reliabilities").click()
    page.wait_for_url(f"{live_server.url}/label/quality/#reliability-run")
    assert page.locator("#reliability-status").inner_text() == "Succeeded"
    run = ReliabilityRun.objects.get()
    assert (run.status, run.created_by, run.judgements_used) == (JobStatus.SUCCEEDED, reviewer, 40 * 6)
    for name in PLANTED:
        for key in DIMENSION_KEYS:
            row = AnnotatorReliability.objects.get(annotator__username=name, dimension=key)
            cells = page.locator(f'tr[data-of="{name} {key}"]')
            assert cells.locator("[data-figure=reliability]").inner_text() == f"{row.accuracy:.2f}"
            assert cells.locator("[data-figure=informativeness]").inner_text() == f"{row.informativeness:.2f}"
