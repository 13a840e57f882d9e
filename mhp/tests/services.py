"""Real processes for tests: Celery workers and a gunicorn web server on the test database and Redis."""

import functools
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def service_environment() -> dict[str, str]:
    """What a worker or web process needs to share the test's database, Redis and media folder."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":  # the test database is a file (mhp.test_settings) the processes share
        database_url = f"sqlite:///{db['NAME']}"
    else:
        database_url = f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "mhp.settings",
        "SECRET_KEY": "service-test-key",
        "DEBUG": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": database_url,
        "REDIS_URL": settings.TEST_REDIS_URL,
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
    }


@pytest.fixture
def clean_redis():
    client = redis.Redis.from_url(settings.TEST_REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError as error:
        pytest.fail(f"Redis is needed at {settings.TEST_REDIS_URL}: {error}")
    client.flushdb()
    yield
    client.flushdb()


def start_worker(queues: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "celery", "-A", "mhp", "worker", "-Q", queues, "--pool", "solo"]
    command += ["--without-mingle", "--without-gossip", "--loglevel", "INFO"]
    worker = subprocess.Popen(
        command, cwd=ROOT, env=service_environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    deadline = time.monotonic() + 60
    for line in worker.stdout:
        if " ready." in line:
            return worker
        if time.monotonic() > deadline:
            break
    worker.kill()
    pytest.fail("the Celery worker did not become ready")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@functools.cache
def collected_static() -> str:
    """The static files collected once per test session, as the image's build does (production settings
    serve them from a manifest and refuse a page that names a file it does not list)."""
    root = tempfile.mkdtemp(prefix="mhp-test-static-collected-")
    command = [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"]
    subprocess.run(command, cwd=ROOT, env={**service_environment(), "STATIC_ROOT": root}, check=True, timeout=600)
    return root


def start_web(**environment: str) -> tuple[subprocess.Popen, str]:
    """gunicorn serving the project, as deployed; returns the process and its base URL."""
    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "mhp.wsgi:application", "-w", "1", "-b", f"127.0.0.1:{port}"]
    env = {**service_environment(), "STATIC_ROOT": collected_static(), **environment}
    web = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
    base_url = f"http://127.0.0.1:{port}"
    # A loaded machine can take a while to import Django and torch-free apps in a fresh process.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{base_url}/healthz", timeout=5)
            return web, base_url
        except OSError:  # refused, reset or timed out while gunicorn starts
            time.sleep(0.2)
    stop(web)
    pytest.fail("gunicorn did not start")


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
