"""Whether a Celery worker would take a task now: asked before a job row is created, so that the web never
leaves a job queued with nobody to run it."""

from importlib.util import find_spec

from django.conf import settings

from mhp.celery import app

START_GPU_WORKER = "celery -A mhp worker -Q gpu --concurrency 1 (with requirements-ml.txt installed)"


def queue_worker_missing(queue: str, *, needs_torch: bool = False, timeout: float = 1.0) -> str | None:
    """Why a task sent to `queue` would not run now, saying what to start; None when a worker would take it.

    A broadcast asks the workers which queues they consume: a worker busy training still answers it (a
    ping task would wait behind the training)."""
    if settings.CELERY_TASK_ALWAYS_EAGER:
        if needs_torch and find_spec("torch") is None:
            return (
                "tasks run inside the web process here (REDIS_URL is not set) and it has no torch: "
                f"set REDIS_URL and start a GPU worker: {START_GPU_WORKER}"
            )
        return None
    answers = app.control.inspect(timeout=timeout).active_queues() or {}
    if any(entry["name"] == queue for queues in answers.values() for entry in queues):
        return None
    start = START_GPU_WORKER if queue == "gpu" else f"celery -A mhp worker -Q {queue}"
    return f"no Celery worker consumes the {queue} queue: start one with {start}"
