"""Strict readers for settings that come from environment variables.

A malformed value stops start-up with a message that names the variable, instead of running
with a silently wrong configuration.
"""

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    return None if value is None else value.strip()


def _fail(name: str, value: str, expected: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"Environment variable {name}={value!r} is malformed: expected {expected}.")


def env_str(name: str, default: str | None = None) -> str | None:
    value = _raw(name)
    return default if value in (None, "") else value


def env_bool(name: str, default: bool = False) -> bool:
    value = _raw(name)
    if value is None:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise _fail(name, value, "one of 1/0, true/false, yes/no, on/off")


def env_choice(name: str, default: str, *, choices: tuple[str, ...]) -> str:
    value = _raw(name)
    if value in (None, ""):
        return default
    if value not in choices:
        raise _fail(name, value, f"one of {', '.join(choices)}")
    return value


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    value = _raw(name)
    if value in (None, ""):
        return default
    try:
        number = int(value)
    except ValueError:
        raise _fail(name, value, "an integer") from None
    if minimum is not None and number < minimum:
        raise _fail(name, value, f"an integer >= {minimum}")
    return number


def env_float(name: str, default: float, *, minimum: float | None = None, maximum: float | None = None) -> float:
    value = _raw(name)
    if value in (None, ""):
        return default
    try:
        number = float(value)
    except ValueError:
        raise _fail(name, value, "a number") from None
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        raise _fail(name, value, f"a number between {minimum} and {maximum}")
    return number


def env_list(name: str, default: list[str]) -> list[str]:
    value = _raw(name)
    if value is None:
        return default
    items = [item.strip() for item in value.split(",")]
    if any(not item for item in items):
        raise _fail(name, value, "a comma-separated list without empty items")
    return items


_RATE_PERIODS = ("second", "minute", "hour", "day")


def env_rate(name: str, default: str) -> str | None:
    """A DRF throttle rate, `N/second|minute|hour|day`; `off` turns the throttle off (None)."""
    value = _raw(name) or default
    if value.lower() == "off":
        return None
    count, _, period = value.partition("/")
    if not count.isdigit() or int(count) < 1 or period not in _RATE_PERIODS:
        raise _fail(name, value, f"N/{'|'.join(_RATE_PERIODS)} with N >= 1, or off")
    return value


def env_path(name: str, default: Path) -> Path:
    value = _raw(name)
    return default if value in (None, "") else Path(value).expanduser().resolve()


def env_paths(name: str, default: list[Path]) -> list[Path]:
    """A comma-separated list of absolute paths (resolved; ``~`` expanded); a relative one is refused."""
    value = _raw(name)
    if value in (None, ""):
        return default
    items = env_list(name, [])
    paths = [Path(item).expanduser() for item in items]
    if any(not path.is_absolute() for path in paths):
        raise _fail(name, value, "a comma-separated list of absolute paths")
    return [path.resolve() for path in paths]


def env_url(name: str, default: str | None, *, schemes: tuple[str, ...]) -> str | None:
    value = _raw(name)
    if value in (None, ""):
        return default
    parts = urlsplit(value)
    if parts.scheme not in schemes or not (parts.netloc or parts.path):
        raise _fail(name, value, f"a URL with scheme {'/'.join(schemes)}")
    return value


def s3_origins(bucket: str, region: str | None, endpoint: str | None) -> list[str]:
    """Where a bucket's (signed) URLs point, virtual-hosted or path style (only the bucket's own path),
    for the CSP's img-src."""
    if not bucket:
        return []
    if endpoint:
        parts = urlsplit(endpoint)
        return [f"{parts.scheme}://{bucket}.{parts.netloc}", f"{parts.scheme}://{parts.netloc}/{bucket}/"]
    hosts = ["s3.amazonaws.com", *([f"s3.{region}.amazonaws.com"] if region else [])]
    return [origin for host in hosts for origin in (f"https://{bucket}.{host}", f"https://{host}/{bucket}/")]


@dataclass(frozen=True)
class _DatabaseScheme:
    engine: str
    default_port: int | None


_DATABASE_SCHEMES = {
    "sqlite": _DatabaseScheme("django.db.backends.sqlite3", None),
    "postgres": _DatabaseScheme("django.db.backends.postgresql", 5432),
    "postgresql": _DatabaseScheme("django.db.backends.postgresql", 5432),
}


def env_database(name: str, default_sqlite_path: Path) -> dict:
    """Parse DATABASE_URL: sqlite:///relative.db, sqlite:////abs/path.db or postgres://user:pw@host:port/db."""
    value = _raw(name)
    if value in (None, ""):
        return {"ENGINE": _DATABASE_SCHEMES["sqlite"].engine, "NAME": str(default_sqlite_path)}
    parts = urlsplit(value)
    scheme = _DATABASE_SCHEMES.get(parts.scheme)
    if scheme is None:
        raise _fail(name, value, "a sqlite:// or postgres:// URL")
    if scheme.default_port is None:
        path = unquote(parts.path[1:] if parts.path.startswith("/") else parts.path)
        if not path:
            raise _fail(name, value, "sqlite:///path/to/file.db")
        return {"ENGINE": scheme.engine, "NAME": path}
    return _postgres_settings(name, value, parts, scheme)


def _postgres_settings(name: str, value: str, parts, scheme: _DatabaseScheme) -> dict:
    database = unquote(parts.path.lstrip("/"))
    if not database or not parts.hostname:
        raise _fail(name, value, "postgres://user:password@host:port/database")
    try:
        port = parts.port or scheme.default_port
    except ValueError:
        raise _fail(name, value, "a numeric port") from None
    return {
        "ENGINE": scheme.engine,
        "NAME": database,
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname,
        "PORT": str(port),
        "OPTIONS": dict(parse_qsl(parts.query)),
    }
