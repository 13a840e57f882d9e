"""scripts/demo.sh as a user runs it (in a copy of the project, with a stand-in .venv whose python records what
it is asked to run): the secret key survives a restart, and the address printed is the one served. The demo's
images are blind: nothing on them names the generator."""

import io
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image as PILImage

from annotation.demo import demo_load, placeholder_png
from annotation.models import Image

ROOT = Path(__file__).resolve().parents[2]
# Stand-in for .venv/bin/python: runs the key helper for real, reports runserver instead of serving.
FAKE_PYTHON = f"""#!/usr/bin/env bash
case "$1" in
  scripts/demo_secret.py) exec {sys.executable} "$@" ;;
  manage.py) [ "$2" = runserver ] && echo "runserver $3 key=$SECRET_KEY"; exit 0 ;;
esac
exit 1
"""


@pytest.fixture
def project(tmp_path):
    (tmp_path / "scripts").mkdir()
    for name in ("demo.sh", "venv.sh", "demo_secret.py"):
        shutil.copy(ROOT / "scripts" / name, tmp_path / "scripts" / name)
    shutil.copy(ROOT / "requirements-web.txt", tmp_path)
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    # ensure_venv's stamp for this requirements file, so nothing is installed.
    digest = subprocess.run(
        "cat requirements-web.txt | sha256sum | cut -c1-16", shell=True, cwd=tmp_path, capture_output=True, text=True
    ).stdout.strip()
    (tmp_path / ".venv" / f".installed-requirements-web-{digest}").touch()
    return tmp_path


def _demo(project: Path, **env) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DATABASE_URL", "MHP_ADDRESS")}
    result = subprocess.run(
        ["bash", "scripts/demo.sh"], cwd=project, env={**clean, **env}, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_demo_keeps_its_secret_key_next_to_the_database_across_restarts(project):
    database = f"sqlite:///{project}/data/db.sqlite3"
    first = _demo(project, DATABASE_URL=database)
    key_file = project / "data" / "secret_key"
    key = key_file.read_text().strip()
    assert len(key) >= 50 and f"runserver 127.0.0.1:8000 key={key}" in first
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert f"key={key}" in _demo(project, DATABASE_URL=database)  # a restart: the same key
    # Another database, another key; a key given by the environment wins and writes nothing.
    other = _demo(project, DATABASE_URL=f"sqlite:///{project}/other/db.sqlite3")
    other_key = (project / "other" / "secret_key").read_text().strip()
    assert f"key={other_key}" in other and other_key != key
    assert "key=given" in _demo(project, DATABASE_URL=f"sqlite:///{project}/third/db.sqlite3", SECRET_KEY="given")
    assert not (project / "third").exists()
    # No DATABASE_URL: the default database, db.sqlite3 in the project folder, and the key beside it.
    default = _demo(project)
    assert f"key={(project / 'secret_key').read_text().strip()}" in default


def test_the_demo_prints_the_address_it_serves(project):
    out = _demo(project, MHP_ADDRESS="0.0.0.0:8123")
    assert "MHP Studio: http://0.0.0.0:8123/" in out and "runserver 0.0.0.0:8123 " in out
    out = _demo(project, MHP_ADDRESS="8124")
    assert "MHP Studio: http://127.0.0.1:8124/" in out and "runserver 127.0.0.1:8124 " in out
    assert "8000" not in out


@pytest.mark.django_db
def test_the_demo_images_name_no_generator():
    demo_load()
    for image in Image.objects.select_related("generator").order_by("id")[:6]:
        with image.file.open("rb") as stored:
            pixels = PILImage.open(io.BytesIO(stored.read())).convert("RGB").tobytes()
        unlabelled = PILImage.open(io.BytesIO(placeholder_png(image.seed))).convert("RGB").tobytes()
        labelled = PILImage.open(io.BytesIO(placeholder_png(image.seed, label=image.generator.name))).convert("RGB")
        assert pixels == unlabelled != labelled.tobytes()
