"""The production settings pass Django's deployment checklist, and the TLS settings follow the environment."""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def _compose_settings() -> dict[str, str]:
    """The fixed values docker-compose gives the app (HTTPS, BEHIND_PROXY, MEDIA_ACCEL_REDIRECT...)."""
    environment = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["x-app-environment"]
    return {key: str(value) for key, value in environment.items() if "${" not in str(value) and "://" not in str(value)}


def production_environment(**overrides: str) -> dict[str, str]:
    """What docker-compose gives the web service, with the .env values the README asks for, on the test's
    database."""
    db = connection.settings_dict
    environment = {key: value for key, value in os.environ.items() if key not in {"REDIS_URL", "DEBUG"}}
    return {
        **environment,
        **_compose_settings(),
        "DJANGO_SETTINGS_MODULE": "mhp.settings",
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "mhp.example.com",
        "DATABASE_URL": os.environ.get("DATABASE_URL", f"sqlite:///{db['NAME']}"),
        **overrides,
    }


def _manage(*arguments: str, **overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *arguments],
        cwd=ROOT,
        env=production_environment(**overrides),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.django_db
def test_check_deploy_is_clean_with_the_production_settings():
    result = _manage("check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


@pytest.mark.django_db
def test_check_deploy_warns_without_https():
    # The check itself is live: without HTTPS=1 it names what is missing.
    result = _manage("check", "--deploy", HTTPS="0")
    assert result.returncode == 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in result.stderr + result.stdout


def _settings_in(**overrides: str) -> dict:
    code = (
        "import django, json; django.setup(); from django.conf import settings as s; print(json.dumps(["
        "s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS, "
        "s.SECURE_PROXY_SSL_HEADER, s.REST_FRAMEWORK['DEFAULT_THROTTLE_RATES']]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=production_environment(**overrides), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.django_db
def test_tls_and_throttle_settings_come_from_the_environment():
    assert _settings_in() == [
        True,
        True,
        True,
        365 * 24 * 3600,
        ["HTTP_X_FORWARDED_PROTO", "https"],
        {"anon": "60/minute", "user": "12000/minute"},
    ]
    plain = _settings_in(HTTPS="0", BEHIND_PROXY="0", API_THROTTLE_USER="off", API_THROTTLE_ANON="5/second")
    assert plain == [False, False, False, 0, None, {"anon": "5/second", "user": None}]
