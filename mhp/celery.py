"""The Celery app. Its configuration is the CELERY_* block of mhp.settings."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mhp.settings")

app = Celery("mhp")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.autodiscover_tasks(["mhp"])
