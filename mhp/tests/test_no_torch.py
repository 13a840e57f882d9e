"""The web process stays free of torch: annotators' servers stay small and start fast."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import importlib, pkgutil, sys
import django
django.setup()
from django.urls import get_resolver
import mhp.urls, mhp.wsgi
get_resolver().url_patterns
for app in ("annotation", "datasets", "training"):
    package = importlib.import_module(app)
    for module in pkgutil.iter_modules(package.__path__):
        if module.name in ("views", "api", "urls", "admin", "selectors", "services", "models"):
            importlib.import_module(f"{app}.{module.name}")
from mhp.celery import app
app.loader.import_default_modules()
heavy = sorted(name for name in ("torch", "open_clip", "torchvision") if name in sys.modules)
print("heavy:", ",".join(heavy) or "none")
"""


def test_web_urls_views_admin_and_task_registry_do_not_import_torch():
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env={"DJANGO_SETTINGS_MODULE": "mhp.settings", "DEBUG": "1", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "heavy: none"
