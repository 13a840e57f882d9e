"""docker-compose.yml is a valid Compose file with the services a deployment needs."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def _compose_command() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def test_docker_compose_config_accepts_the_file():
    command = _compose_command()
    if command is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed (.ci/run installs it)")
    result = subprocess.run([*command, "-f", "docker-compose.yml", "config"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)
    assert set(resolved["services"]) == {"db", "redis", "web", "nginx", "worker", "beat", "gpu-worker"}


def _queue_of(command: list[str]) -> str:
    return command[command.index("-Q") + 1]


def test_compose_services_are_wired_as_documented():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert _queue_of(services["worker"]["command"]) == "default"
    assert _queue_of(services["gpu-worker"]["command"]) == "gpu"
    devices = services["gpu-worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]
    assert "gunicorn" in json.dumps(services["web"]["command"])
    assert services["beat"]["command"][:4] == ["celery", "-A", "mhp", "beat"]
    assert {"db-data", "media"} <= set(compose["volumes"])
    # Only nginx is published; it reads media read-only and serves it only where Django sends it.
    assert "ports" not in services["web"] and services["nginx"]["ports"] == ["80:80", "443:443"]
    assert "media:/data/media:ro" in services["nginx"]["volumes"]
    template = services["nginx"]["volumes"][0].split(":")[0]
    assert (ROOT / template).is_file()
    environment = compose["x-app-environment"]
    assert environment["MEDIA_ACCEL_REDIRECT"] == "/_protected_media/"
    assert "location /_protected_media/ {\n        internal;" in (ROOT / template).read_text()
    assert (environment["HTTPS"], environment["BEHIND_PROXY"]) == ("1", "1")


def test_every_periodic_task_is_a_registered_task():
    from django.conf import settings

    from mhp.celery import app

    app.loader.import_default_modules()
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert scheduled and scheduled <= set(app.tasks)
