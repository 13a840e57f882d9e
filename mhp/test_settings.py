"""Settings for the test suite: real PostgreSQL by default, Celery in-process unless a test starts a worker."""

import os
import tempfile

os.environ.setdefault("SECRET_KEY", "test-only-insecure-key")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/mhp_studio")

from mhp.settings import *  # noqa: E402, F403

# Tests about workers start real ones against MHP_TEST_REDIS_URL; everything else runs tasks in-process.
TEST_REDIS_URL = os.environ.get("MHP_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
CELERY_BROKER_URL = "memory://"
CELERY_RESULT_BACKEND = "cache+memory://"
CELERY_TASK_ALWAYS_EAGER = True

MEDIA_ROOT = tempfile.mkdtemp(prefix="mhp-test-media-")
ARTIFACTS_ROOT = tempfile.mkdtemp(prefix="mhp-test-artifacts-")
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # A file, as the demo runs: an in-memory database shares one cache between threads, where locking
    # works differently and the concurrency tests would prove nothing.
    DATABASES["default"]["TEST"] = {"NAME": os.path.join(tempfile.mkdtemp(prefix="mhp-test-db-"), "test.sqlite3")}  # noqa: F405
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405
STATIC_ROOT = tempfile.mkdtemp(prefix="mhp-test-static-")
# Hermetic whatever the developer's environment: no shared cache, sessions in the test database.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
SESSION_ENGINE = "django.contrib.sessions.backends.db"
