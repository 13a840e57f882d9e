"""Real Celery workers, started by the test, against the real Redis and PostgreSQL."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import connection

from mhp.celery import app

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _database_url() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def _environment() -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "mhp.settings",
        "SECRET_KEY": "worker-test-key",
        "DATABASE_URL": _database_url(),
        "REDIS_URL": settings.TEST_REDIS_URL,
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


def _start_worker(queues: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "celery", "-A", "mhp", "worker", "-Q", queues, "--pool", "solo"]
    command += ["--without-mingle", "--without-gossip", "--loglevel", "INFO"]
    worker = subprocess.Popen(
        command, cwd=ROOT, env=_environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    deadline = time.monotonic() + 60
    for line in worker.stdout:
        if " ready." in line:
            return worker
        if time.monotonic() > deadline:
            break
    worker.kill()
    pytest.fail("the Celery worker did not become ready")


def _stop(worker: subprocess.Popen) -> None:
    worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(timeout=20)
    except subprocess.TimeoutExpired:
        worker.kill()


def _check_workers(timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check_workers", "--timeout", str(timeout)],
        cwd=ROOT,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_worker_answers_on_both_queues_and_result_is_read_back(clean_redis):
    worker = _start_worker("default,gpu")
    try:
        result = _check_workers(timeout=30)
    finally:
        _stop(worker)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for queue in ("default", "gpu"):
        assert f"{queue}: answered by " in result.stdout
        assert any(line.startswith(queue) and f"(pid {worker.pid}, postgresql)" in line for line in lines)


def test_gpu_tasks_wait_for_a_gpu_worker(clean_redis):
    worker = _start_worker("default")
    try:
        result = _check_workers(timeout=3)
    finally:
        _stop(worker)
    assert result.returncode != 0
    assert "default: answered by" in result.stdout
    assert "no worker answered on queue(s): gpu" in result.stderr


def test_training_tasks_route_to_the_gpu_queue():
    router = app.amqp.router
    assert router.route({}, "training.tasks.train_mps")["queue"].name == "gpu"
    assert router.route({}, "annotation.tasks.import_prompts")["queue"].name == "default"
