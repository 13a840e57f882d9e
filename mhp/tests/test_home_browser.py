"""Real headless Chromium on the Studio as each role uses it: from `/`, by links only, every page the README
lists for the role is reached, none answers 5xx or logs a console error, and no request leaves 127.0.0.1. The
admin's home shows the database's own counts on a seeded project."""

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db.models import F

from annotation import roles
from annotation.demo import demo_load
from annotation.labeling.tests.labeling_factories import judged_by
from annotation.models import Category, Generator, Image, ImportJob, ImportKind, Judgement, Pair, Prompt, PromptStatus
from annotation.tests.factories import make_user
from datasets.models import ExportJob
from datasets.services.freeze import FreezeOptions, dataset_freeze
from mhp.jobs import JobStatus
from training.models import EvaluationRun, TrainingRun


@pytest.fixture(autouse=True)
def _fresh_cache():
    # The homes read cached figures (open pairs, quality); a previous test's must not stand in for this one's.
    cache.clear()


pytestmark = pytest.mark.django_db(transaction=True)

README = Path(__file__).resolve().parents[2] / "README.md"
ROLE_COLUMNS = {roles.ANNOTATOR: 2, roles.REVIEWER: 3, roles.ADMIN: 4}


def readme_pages(role: str) -> set[str]:
    """The paths the README's "Pages per role" table marks for `role`."""
    table = README.read_text().split("## Pages per role", 1)[1].split("\n## ", 1)[0]
    paths = set()
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        match = len(cells) == 5 and re.fullmatch(r"`(/[^`]*)`", cells[1])
        if match and cells[ROLE_COLUMNS[role]] == "✓":
            paths.add(match.group(1))
    return paths


@pytest.fixture
def project(settings):
    """The demo project, three annotators' judgements on some pairs, some prompts filtered."""
    settings.PAIR_REDUNDANCY = "fixed"  # pairs of three judgements, as the counts below are written for
    demo_load()
    for user in get_user_model().objects.filter(username__startswith="demo-"):
        user.set_password("pw-123456")
        user.save()
    annotators = [make_user(roles.ANNOTATOR) for _ in range(3)]
    pairs = list(Pair.objects.order_by("id")[:8])
    # The first four pairs get all three judgements (done), the next four one (partly judged).
    for annotator in annotators:
        judged_by(annotator, pairs[:8] if annotator == annotators[0] else pairs[:4])
    pending = list(Prompt.objects.filter(status=PromptStatus.PENDING).order_by("id")[:5])
    Prompt.objects.filter(pk__in=[p.pk for p in pending[:3]]).update(status=PromptStatus.REJECTED)
    # A frozen version of the four done pairs, and one job of each kind, so the home links to their pages.
    version = dataset_freeze(name="v1", options=FreezeOptions(val=1, test=1))
    ImportJob.objects.create(kind=ImportKind.PROMPTS, status=JobStatus.FAILED, error="not a JSONL file")
    ImportJob.objects.create(
        kind=ImportKind.IMAGES,
        status=JobStatus.SUCCEEDED,
        progress=1.0,
        summary={"lines_read": 2, "imported": 2, "duplicates": 0, "refused": 0, "refused_lines": []},
    )
    ExportJob.objects.create(version=version, status=JobStatus.RUNNING, progress=0.5)
    TrainingRun.objects.create(name="run-1", dataset_version=version, status=JobStatus.QUEUED)
    EvaluationRun.objects.create(benchmark="imagereward", status=JobStatus.SUCCEEDED, progress=1.0)
    return annotators


class Visits:
    """What one browser context asked for and what its pages said."""

    def __init__(self, page, origin: str):
        self.page, self.origin = page, origin
        self.requests: list[str] = []
        self.console_errors: list[str] = []
        self.statuses: dict[str, int] = {}
        page.context.on("request", lambda request: self.requests.append(request.url))
        page.on("console", lambda message: message.type == "error" and self.console_errors.append(message.text))
        page.on("pageerror", lambda error: self.console_errors.append(str(error)))

    def links(self) -> set[str]:
        hrefs = self.page.eval_on_selector_all("a[href]", "elements => elements.map(e => e.href)")
        return {href.split("#")[0] for href in hrefs if href.startswith(self.origin) and "/media/" not in href}

    def open(self, url: str) -> None:
        response = self.page.goto(url)
        self.page.wait_for_load_state("networkidle")
        self.statuses[urlsplit(url).path] = response.status


def _walk(page, origin: str) -> Visits:
    """Home, then every same-site page it links to (nav bar and home): one click from home."""
    visits = Visits(page, origin)
    visits.open(f"{origin}/")
    for url in sorted(visits.links()):
        if urlsplit(url).path not in visits.statuses:
            visits.open(url)
    return visits


@pytest.mark.parametrize("role", [roles.ANNOTATOR, roles.REVIEWER, roles.ADMIN])
def test_each_role_reaches_every_page_the_readme_lists_by_links(role, project, browser_login, live_server):
    page = browser_login(f"demo-{role}")
    visits = _walk(page, live_server.url)

    wanted = readme_pages(role)
    assert len(wanted) >= {"annotator": 5, "reviewer": 8, "admin": 29}[role]
    assert wanted - set(visits.statuses) == set()
    assert {path: status for path, status in visits.statuses.items() if status >= 400} == {}
    assert visits.console_errors == []
    hosts = {urlsplit(url).hostname for url in visits.requests if urlsplit(url).scheme in ("http", "https")}
    # Only the live server itself (pytest-django serves on localhost, i.e. 127.0.0.1): no CDN, no font host.
    assert hosts == {urlsplit(live_server.url).hostname} and hosts <= {"127.0.0.1", "localhost"}
    # Nobody is offered what the README does not give their role (e.g. an annotator sees no review page).
    others = set().union(*(readme_pages(r) for r in roles.ROLES)) - wanted
    assert others & set(visits.statuses) == set()


def _shown(page, selector: str) -> int:
    return int(page.locator(selector).inner_text())


def test_the_admin_home_shows_the_databases_counts(project, browser_login, live_server):
    page = browser_login("demo-admin")
    counts = page.locator("#pipeline-counts")

    def shown(name: str) -> int:
        return int(counts.locator(f"[data-count={name}]").inner_text())

    assert shown("prompts") == Prompt.objects.count() == 300
    for status in ("pending", "accepted", "rejected"):
        assert shown(f"prompts-{status}") == Prompt.objects.filter(status=status).count()
    assert shown("prompts-rejected") == 3
    assert shown("images") == Image.objects.count() == 240
    assert shown("pairs") == Pair.objects.count() == 120
    assert shown("pairs-done") == Pair.objects.filter(judgements_done__gte=F("judgements_required")).count() == 4
    assert shown("pairs-partial") == 4
    assert shown("pairs-fresh") == Pair.objects.filter(judgements_done=0).count() == 112
    assert shown("judgements") == Judgement.objects.count() == 16
    for generator in Generator.objects.all():
        row = page.locator(f"#generators tr[data-generator='{generator.name}'] [data-count=images]")
        assert int(row.inner_text()) == generator.images.count() == 80
    for category in Category.objects.filter(parent=None):
        cell = page.locator(f"#category-balance tr[data-category='{category.slug}'] [data-count=accepted]")
        accepted = Prompt.objects.filter(status=PromptStatus.ACCEPTED, category=category).count()
        assert int(cell.inner_text()) == accepted
    # Judgements per day: today's bar carries all 16, the chart is an inline SVG.
    bars = page.locator("#judgements-per-day g[data-value]")
    assert bars.count() == 14
    assert int(bars.last.get_attribute("data-value")) == 16
    assert sum(int(bars.nth(i).get_attribute("data-value")) for i in range(14)) == 16
    # Jobs: the running export and the queued run first, each linked to its own page.
    jobs = page.locator("#jobs tr[data-job]")
    assert jobs.count() == 5
    assert {jobs.nth(i).get_attribute("data-job").split("-")[0] for i in range(2)} == {"export", "training"}
    assert "not a JSONL file" in page.locator("#jobs").inner_text()
    assert page.locator("#dataset-versions").inner_text().count("v1") == 1


def test_pages_follow_the_systems_dark_scheme_and_have_a_favicon(project, browser_login, live_server):
    page = browser_login("demo-annotator")
    light = page.evaluate("getComputedStyle(document.body).backgroundColor")
    page.emulate_media(color_scheme="dark")
    dark = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert (light, dark) == ("rgb(246, 248, 250)", "rgb(18, 22, 27)")
    icon = page.locator("link[rel=icon]").get_attribute("href")
    response = page.request.get(f"{live_server.url}{icon}")
    assert response.status == 200 and response.headers["content-type"].startswith("image/svg")


def test_the_annotator_home_counts_their_own_work(project, browser_login, live_server):
    annotator = project[0]
    page = browser_login(annotator.username)
    work = page.locator("#work")
    waiting = Pair.objects.filter(judgements_done__lt=F("judgements_required")).exclude(judgements__annotator=annotator)
    assert int(work.locator("[data-count=pairs-waiting]").inner_text()) == waiting.count() == 120 - 8
    assert int(work.locator("[data-count=judged-today]").inner_text()) == 8
    assert "shown after 20 comparisons" in page.locator("#my-agreement").inner_text()
    assert page.locator("#pipeline-counts").count() == 0
    page.click("#work a:has-text('Judge image pairs')")
    page.wait_for_url(f"{live_server.url}/label/")
    # Let the page's own requests (claiming pairs) finish before the test's database is flushed.
    page.wait_for_load_state("networkidle")
