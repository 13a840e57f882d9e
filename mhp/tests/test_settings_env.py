"""Settings come from the environment and a malformed value stops start-up naming the variable."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from mhp import env

ROOT = Path(__file__).resolve().parents[2]


def _start_django(**variables: str) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items() if key not in {"DATABASE_URL", "REDIS_URL"}}
    environment.update({"DJANGO_SETTINGS_MODULE": "mhp.settings", "DEBUG": "1", **variables})
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings; print(settings.DEBUG)",
        ],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DEBUG", "maybe"),
        ("DATABASE_URL", "mysql://root@localhost/db"),
        ("DATABASE_URL", "postgres://localhost"),
        ("DATABASE_URL", "postgres://u@host:notaport/db"),
        ("REDIS_URL", "http://127.0.0.1:6379"),
        ("PAIR_JUDGEMENTS_REQUIRED", "three"),
        ("PAIR_JUDGEMENTS_REQUIRED", "0"),
        ("GOLD_PAIR_RATE", "1.5"),
        ("ALLOWED_HOSTS", "example.com,,other"),
        ("OPENAI_BASE_URL", "localhost:8000"),
        ("DATABASE_CONN_MAX_AGE", "-1"),
        ("API_THROTTLE_USER", "fast"),
        ("API_THROTTLE_ANON", "0/minute"),
        ("API_THROTTLE_ANON", "10/fortnight"),
        ("HTTPS", "sometimes"),
    ],
)
def test_malformed_value_stops_start_up_with_its_name(variable, value):
    result = _start_django(**{variable: value})
    assert result.returncode != 0
    assert f"Environment variable {variable}={value!r} is malformed" in result.stderr


def test_secret_key_is_required_without_debug():
    result = _start_django(DEBUG="0", SECRET_KEY="")
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr


def test_well_formed_environment_starts():
    result = _start_django(DEBUG="false", SECRET_KEY="x" * 50, ALLOWED_HOSTS="mhp.example.com")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_database_url_parsing(tmp_path):
    assert env.env_database("UNSET_VARIABLE_FOR_TEST", tmp_path / "x.db") == {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(tmp_path / "x.db"),
    }
    os.environ["MHP_TEST_DB_URL"] = "postgres://mhp:s%40cret@db.internal:6543/studio?sslmode=require"
    try:
        parsed = env.env_database("MHP_TEST_DB_URL", tmp_path / "x.db")
    finally:
        del os.environ["MHP_TEST_DB_URL"]
    assert parsed["ENGINE"] == "django.db.backends.postgresql"
    assert (parsed["USER"], parsed["PASSWORD"], parsed["HOST"], parsed["PORT"], parsed["NAME"]) == (
        "mhp",
        "s@cret",
        "db.internal",
        "6543",
        "studio",
    )
    assert parsed["OPTIONS"] == {"sslmode": "require"}


def test_unset_redis_means_tasks_run_in_process(monkeypatch):
    monkeypatch.delenv("MHP_TEST_NOT_SET", raising=False)
    assert env.env_url("MHP_TEST_NOT_SET", None, schemes=("redis",)) is None
    monkeypatch.setenv("MHP_TEST_INT", "12")
    assert env.env_int("MHP_TEST_INT", 3, minimum=1) == 12
    monkeypatch.setenv("MHP_TEST_INT", "1e3")
    with pytest.raises(ImproperlyConfigured, match="MHP_TEST_INT"):
        env.env_int("MHP_TEST_INT", 3)
