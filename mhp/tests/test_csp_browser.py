"""In a real Chromium under the Content-Security-Policy: the labeling page shows its images and runs its
script, and the API docs render from the installed package, with no violation and nothing from elsewhere."""

import pytest

from annotation import roles
from annotation.labeling.tests.labeling_factories import make_pairs
from annotation.tests.factories import make_user

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def page(chromium):
    """Unlike the suite's page fixture, this one enforces the policy."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def _watch(page, base_url: str) -> tuple[list[str], list[str]]:
    """Console errors about the policy, and requests to any other origin."""
    violations: list[str] = []
    foreign: list[str] = []
    page.on("console", lambda message: "Content Security Policy" in message.text and violations.append(message.text))
    page.on(
        "request",
        lambda request: (
            request.url.startswith(("http", "ws"))
            and not request.url.startswith(base_url)
            and foreign.append(request.url)
        ),
    )
    return violations, foreign


def test_the_labeling_page_shows_both_images_and_breaks_no_policy(browser_login, live_server):
    make_pairs(2)
    make_user(roles.ANNOTATOR, username="csp-annotator")
    page = browser_login("csp-annotator")
    violations, foreign = _watch(page, live_server.url)
    page.goto(f"{live_server.url}/label/", wait_until="load")  # after every image of the page
    for image in ("#left-image", "#right-image"):
        loaded = page.eval_on_selector(image, "element => element.complete && element.naturalWidth")
        assert loaded > 0, image
    assert (violations, foreign) == ([], [])


def test_the_api_docs_render_offline_under_the_policy(browser_login, live_server):
    staff = make_user(roles.ADMIN, username="csp-staff")
    assert staff.is_staff
    page = browser_login("csp-staff")
    violations, foreign = _watch(page, live_server.url)
    page.goto(f"{live_server.url}/api/docs/")
    page.wait_for_selector(".swagger-ui .info .title")
    assert "MHP Studio API" in page.inner_text(".swagger-ui .info .title")
    page.wait_for_selector(".opblock-tag")  # the schema was fetched and drawn
    assert (violations, foreign) == ([], [])
