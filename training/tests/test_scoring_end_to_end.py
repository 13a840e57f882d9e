"""Scoring through the deployed path: gunicorn -> Redis -> a Celery worker on the gpu queue -> result."""

import base64
import json
import time
import urllib.request

import pytest
from django.core.management import call_command

from annotation import roles
from annotation.tests.factories import make_generator, make_image, make_prompt, make_user
from mhp.tests.services import start_web, start_worker, stop
from training.mps import DIMENSIONS, score_images

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _request(url: str, *, body: dict | None = None) -> dict:
    credentials = base64.b64encode(b"scorer:pw-123456").decode()
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Basic {credentials}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def _wait_for_result(status_url: str, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = _request(status_url)
        if job["state"] in ("SUCCESS", "FAILURE"):
            return job
        time.sleep(0.3)
    pytest.fail("the scoring job did not finish")


def test_web_queues_scoring_and_a_gpu_worker_answers(clean_redis, mps_official_path, tmp_path, settings, monkeypatch):
    # gunicorn runs the production settings: the password must use a hasher they know.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    checkpoint = tmp_path / "mps"
    monkeypatch.setenv("MODEL_ROOTS", str(tmp_path))  # the web and worker processes read it at start-up
    settings.MODEL_ROOTS = [tmp_path]
    call_command("import_mps_checkpoint", str(mps_official_path), str(checkpoint), trained_dimension=list(DIMENSIONS))
    prompt, generator = make_prompt("a bowl of ramen, studio light"), make_generator()
    images = [make_image(prompt, generator) for _ in range(3)]
    make_user(roles.ADMIN, username="scorer")
    worker = start_worker("gpu")
    try:
        web, base_url = start_web()
        try:
            body = {"image_ids": [image.pk for image in images], "dimensions": ["overall", "alignment"]}
            queued = _request(f"{base_url}/api/score/", body={**body, "checkpoint": str(checkpoint)})
            job = _wait_for_result(queued["status_url"])
        finally:
            stop(web)
    finally:
        stop(worker)
    assert job["state"] == "SUCCESS", job
    direct = score_images(checkpoint, prompt.text, [image.file.path for image in images], ["overall", "alignment"])
    for dimension in ("overall", "alignment"):
        assert job["result"]["scores"][dimension] == pytest.approx(direct["scores"][dimension], abs=1e-5)
    assert len(job["result"]["preferences"]["overall"]) == 3
