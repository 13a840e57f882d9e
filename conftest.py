"""Suite-wide checks: the real services are there, and CI never quietly falls back to SQLite."""

import os

import pytest
from django.conf import settings


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
    if os.environ.get("CI") and vendor != "postgresql":
        pytest.exit("CI must run the tests on PostgreSQL, but DATABASE_URL points at SQLite.", returncode=2)
    if vendor == "postgresql" and (problem := _postgres_reachable()):
        pytest.exit(
            f"The tests need PostgreSQL (DATABASE_URL={os.environ.get('DATABASE_URL')}): {problem}\n"
            "Start it, point DATABASE_URL at one, or run on SQLite with DATABASE_URL=sqlite:///test.db "
            "(PostgreSQL-only tests are then skipped).",
            returncode=2,
        )


def pytest_collection_modifyitems(config, items):
    if _database_vendor() == "postgresql":
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL (DATABASE_URL=postgres://...)")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)
