"""Suite-wide checks: the real services are there, and CI never falls back to SQLite without asking."""

import os

import pytest
from django.conf import settings

# Fixtures for tests that start real services (Celery workers, gunicorn): clean_redis.
pytest_plugins = ["mhp.tests.services"]


def _database_vendor() -> str:
    return "postgresql" if "postgresql" in settings.DATABASES["default"]["ENGINE"] else "sqlite"


def _postgres_reachable() -> str | None:
    import psycopg

    db = settings.DATABASES["default"]
    try:
        psycopg.connect(
            host=db["HOST"],
            port=db["PORT"],
            user=db["USER"],
            password=db["PASSWORD"],
            dbname="postgres",
            connect_timeout=5,
        ).close()
    except psycopg.OperationalError as error:
        return str(error).strip()
    return None


def pytest_sessionstart(session):
    vendor = _database_vendor()
    # CI runs the suite on PostgreSQL, then once more on SQLite (the demo's database) by asking for it.
    if os.environ.get("CI") and vendor != "postgresql" and os.environ.get("MHP_TEST_SQLITE") != "1":
        pytest.exit(
            "CI must run the tests on PostgreSQL, but DATABASE_URL points at SQLite (MHP_TEST_SQLITE=1 allows it).",
            returncode=2,
        )
    if vendor == "postgresql" and (problem := _postgres_reachable()):
        pytest.exit(
            f"The tests need PostgreSQL (DATABASE_URL={os.environ.get('DATABASE_URL')}): {problem}\n"
            "Start it, point DATABASE_URL at one, or run on SQLite with DATABASE_URL=sqlite:///test.db "
            "(PostgreSQL-only tests are then skipped).",
            returncode=2,
        )


_DATABASE_FIXTURES = {"db", "transactional_db", "django_db_setup", "live_server"}


def pytest_configure(config):
    config.addinivalue_line("markers", "database: uses the database (set from its fixtures and django_db marks)")


@pytest.hookimpl(tryfirst=True)  # before `-m` selects on the marks added here
def pytest_collection_modifyitems(config, items):
    # CI's SQLite pass runs `-m "database and not postgres"`: a test that never touches the database
    # would only repeat what the PostgreSQL pass showed.
    for item in items:
        if item.get_closest_marker("django_db") or _DATABASE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.database)
    if _database_vendor() == "postgresql":
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL (DATABASE_URL=postgres://...)")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def chromium():
    """A real headless Debian Chromium driven by Playwright (never a browser Playwright downloads)."""
    import shutil

    from playwright.sync_api import sync_playwright

    executable = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(executable):
        pytest.fail(f"Chromium is needed for page tests (apt-get install chromium); not found at {executable}")
    # Playwright's sync API runs an event loop; Django must still allow the test's own ORM calls.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium):
    # Playwright's polling wait_for_function compiles its predicate with eval, which the site's CSP
    # refuses; the policy itself is checked in a context that enforces it (mhp/tests/test_csp_browser.py).
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def browser_login(page, live_server):
    """Log a user in through the real login form; returns the page."""

    def login(username: str, password: str = "pw-123456"):
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_server.url}/")
        return page

    return login


def _reseed_migration_data() -> None:
    """Put back the rows that data migrations made (categories, role groups) after a flush emptied them."""
    import importlib

    from django.apps import apps
    from django.contrib.auth.models import Group, Permission

    importlib.import_module("annotation.migrations.0002_seed_categories").seed(apps, None)
    if Group.objects.filter(name="annotator").exists():
        return
    roles = importlib.import_module("annotation.migrations.0003_roles")
    memberships = {
        "annotator": roles._permissions(Permission, roles.ANNOTATOR),
        "reviewer": roles._permissions(Permission, roles.REVIEWER),
        "admin": list(Permission.objects.filter(content_type__app_label__in=roles.ADMIN_APPS))
        + roles._permissions(Permission, roles.ADMIN_EXTRA),
    }
    for name, permissions in memberships.items():
        Group.objects.create(name=name).permissions.set(permissions)


@pytest.fixture(autouse=True)
def _migration_data_in_transactional_tests(request):
    # Transactional tests flush every table when they end, data-migration rows included.
    marker = request.node.get_closest_marker("django_db")
    transactional = (marker is not None and marker.kwargs.get("transaction")) or bool(
        {"transactional_db", "live_server"} & set(request.fixturenames)
    )
    if transactional:
        request.getfixturevalue("_django_db_helper")
        _reseed_migration_data()
