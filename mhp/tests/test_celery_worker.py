"""Real Celery workers, started by the test, against the real Redis and PostgreSQL."""

import subprocess
import sys

import pytest

from mhp.celery import app
from mhp.tests.services import ROOT, service_environment, start_worker, stop

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _check_workers(timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check_workers", "--timeout", str(timeout)],
        cwd=ROOT,
        env=service_environment(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def _gpu_worker_missing() -> str:
    code = "import django; django.setup(); from mhp.workers import queue_worker_missing; "
    code += "print(queue_worker_missing('gpu', needs_torch=True))"
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=service_environment(),
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout.strip()


def test_worker_answers_on_both_queues_and_result_is_read_back(clean_redis):
    worker = start_worker("default,gpu")
    try:
        result = _check_workers(timeout=30)
        missing = _gpu_worker_missing()
    finally:
        stop(worker)
    assert missing == "None"  # the web would send a training run: a worker takes it
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for queue in ("default", "gpu"):
        assert f"{queue}: answered by " in result.stdout
        assert any(line.startswith(queue) and f"(pid {worker.pid}, postgresql)" in line for line in lines)


def test_gpu_tasks_wait_for_a_gpu_worker(clean_redis):
    worker = start_worker("default")
    try:
        result = _check_workers(timeout=3)
        missing = _gpu_worker_missing()
    finally:
        stop(worker)
    assert missing.startswith("no Celery worker consumes the gpu queue: start one with celery -A mhp worker -Q gpu")
    assert result.returncode != 0
    assert "default: answered by" in result.stdout
    assert "no worker answered on queue(s): gpu" in result.stderr


def test_training_tasks_route_to_the_gpu_queue():
    router = app.amqp.router
    assert router.route({}, "training.tasks.train_mps")["queue"].name == "gpu"
    assert router.route({}, "annotation.tasks.import_prompts")["queue"].name == "default"
