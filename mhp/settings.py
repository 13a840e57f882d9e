"""MHP Studio settings, read from environment variables (see README, "Settings")."""

from datetime import timedelta
from pathlib import Path

from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from django.core.management.utils import get_random_secret_key
from kombu import Queue

from mhp.env import (
    env_bool,
    env_choice,
    env_database,
    env_float,
    env_int,
    env_list,
    env_path,
    env_paths,
    env_rate,
    env_str,
    env_url,
    s3_origins,
)

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = get_random_secret_key()

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
# Served over HTTPS (at a TLS proxy) and reached only through a proxy: see "Behind TLS" below.
HTTPS = env_bool("HTTPS", False)
BEHIND_PROXY = env_bool("BEHIND_PROXY", False)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    # Swagger UI's files served by whitenoise from the package: the API docs work offline.
    "drf_spectacular_sidecar",
    "axes",
    "csp",
    "annotation",
    "datasets",
    "training",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "mhp.inputs.RefuseNulMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into its 429 answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "mhp.urls"
WSGI_APPLICATION = "mhp.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "frontend_templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                # The nav bar: the pages this user may open, on every page.
                "mhp.navigation.nav",
            ],
        },
    },
]

DATABASES = {"default": env_database("DATABASE_URL", BASE_DIR / "db.sqlite3")}
# Seconds a web worker keeps its database connection: each new one costs a server process and warms its
# plans again. Health checks drop a connection the server closed instead of failing a request on it.
DATABASES["default"]["CONN_MAX_AGE"] = env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded default serves a small team: readers never wait for a writer (WAL), a writer waits
    # for another instead of failing at once (busy timeout), and every transaction takes the write lock
    # when it begins, so two that read first can no longer deadlock on the upgrade ("database is locked",
    # which no timeout cures).
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
        "timeout": env_float("SQLITE_BUSY_TIMEOUT_SECONDS", 20.0, minimum=0.0),
        "transaction_mode": "IMMEDIATE",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# django-axes first: it refuses a locked-out login before any password is checked. Then ModelBackend,
# plus the labeling permission read in the same query as the user (see the module).
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "annotation.auth_backend.LabelingModelBackend"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# The site's own files (favicon, stylesheet), next to the templates.
STATICFILES_DIRS = [BASE_DIR / "frontend_static"]
STATIC_ROOT = env_path("STATIC_ROOT", BASE_DIR / "staticfiles")
MEDIA_URL = env_str("MEDIA_URL", "/media/")
MEDIA_ROOT = env_path("MEDIA_ROOT", BASE_DIR / "media")
STORAGES = {
    "default": {"BACKEND": env_str("FILE_STORAGE_BACKEND", "django.core.files.storage.FileSystemStorage")},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
# Set where nginx serves media (docker-compose: /_protected_media/): Django authorises each image and
# answers X-Accel-Redirect to that internal location; unset, Django streams the file itself (mhp/media.py).
MEDIA_ACCEL_REDIRECT = env_str("MEDIA_ACCEL_REDIRECT", "")
if MEDIA_ACCEL_REDIRECT and not (MEDIA_ACCEL_REDIRECT.startswith("/") and MEDIA_ACCEL_REDIRECT.endswith("/")):
    raise ImproperlyConfigured(f"MEDIA_ACCEL_REDIRECT={MEDIA_ACCEL_REDIRECT!r} must start and end with '/'.")
# Storages that sign their URLs (S3) make them valid for this long.
MEDIA_URL_EXPIRE_SECONDS = env_int("MEDIA_URL_EXPIRE_SECONDS", 3600, minimum=60)
# Files in an S3 bucket instead of MEDIA_ROOT (django-storages[s3]; credentials from boto3's usual
# AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the instance role). Objects stay private: browsers get
# signed URLs that expire (mhp.media.media_url).
AWS_STORAGE_BUCKET_NAME = env_str("AWS_STORAGE_BUCKET_NAME", "")
AWS_S3_REGION_NAME = env_str("AWS_S3_REGION_NAME")
AWS_S3_ENDPOINT_URL = env_url("AWS_S3_ENDPOINT_URL", None, schemes=("https", "http"))
AWS_QUERYSTRING_AUTH = True
AWS_S3_SIGNATURE_VERSION = "s3v4"
AWS_QUERYSTRING_EXPIRE = MEDIA_URL_EXPIRE_SECONDS
AWS_DEFAULT_ACL = None
AWS_S3_FILE_OVERWRITE = False
if AWS_STORAGE_BUCKET_NAME:
    STORAGES["default"] = {"BACKEND": env_str("FILE_STORAGE_BACKEND", "storages.backends.s3.S3Storage")}
# In development whitenoise serves straight from the apps' static folders, no collectstatic needed.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG
# Generous for zip uploads of images; streamed to disk above this size.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 10 * 1024 * 1024, minimum=1024)

REST_FRAMEWORK = {
    "DEFAULT_PARSER_CLASSES": [
        "mhp.inputs.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],  # fmt: skip
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # `Authorization: Token <key>`, a key from the user's tokens page, for scripts. First, so a request
        # without credentials or with a revoked key answers 401 (`WWW-Authenticate: Token`), not 403.
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.BasicAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Behind nginx the client is the last address it adds to X-Forwarded-For.
    "NUM_PROXIES": 1 if BEHIND_PROXY else None,
    "DEFAULT_THROTTLE_CLASSES": ["mhp.security.AnonRateThrottle", "mhp.security.UserRateThrottle"],
    # Per account and per minute: far above a person (one judgement a second is two calls) and above the
    # labeling benchmark's fastest client (about 190 calls a second); password guessing is axes' job.
    "DEFAULT_THROTTLE_RATES": {
        "anon": env_rate("API_THROTTLE_ANON", "60/minute"),
        "user": env_rate("API_THROTTLE_USER", "12000/minute"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "MHP Studio API",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from the installed package, never from a CDN: pages work offline and under the CSP.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # `check --deploy` is about the deployment; the schema's quality is `manage.py spectacular --validate`'s.
    "ENABLE_DJANGO_DEPLOY_CHECK": False,
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "mhp.schema.token_auth_listed_last"],
}

# Celery: with no broker configured, tasks run eagerly in the calling process (the embedded default).
REDIS_URL = env_url("REDIS_URL", None, schemes=("redis", "rediss"))
CELERY_BROKER_URL = env_url("CELERY_BROKER_URL", REDIS_URL, schemes=("redis", "rediss", "amqp"))
CELERY_TASK_ALWAYS_EAGER = CELERY_BROKER_URL is None
CELERY_TASK_EAGER_PROPAGATES = True
# Lets the API read back a result by task id in the embedded (in-process) mode too.
CELERY_TASK_STORE_EAGER_RESULT = True
CELERY_RESULT_BACKEND = env_url("CELERY_RESULT_BACKEND", REDIS_URL, schemes=("redis", "rediss")) or ("cache+memory://")
if CELERY_BROKER_URL is None:
    CELERY_BROKER_URL = "memory://"
CELERY_TASK_QUEUES = (Queue("default"), Queue("gpu"))
CELERY_TASK_DEFAULT_QUEUE = "default"
# Everything in training/tasks.py needs torch and a GPU worker; the rest is CPU work.
CELERY_TASK_ROUTES = {"training.tasks.*": {"queue": "gpu"}}
# Long jobs: take one task at a time and acknowledge it after it ran, so a dead worker's job is
# handed out again instead of being lost.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_TASK_TRACK_STARTED = True
CELERY_RESULT_EXPIRES = 7 * 24 * 3600
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = TIME_ZONE
# A training run outlasts Redis's default one-hour redelivery of unacknowledged tasks; a week keeps a
# live run from being handed out twice (a dead worker's run is caught by its heartbeat, not by this).
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 7 * 24 * 3600}
CELERY_BEAT_SCHEDULE = {
    "reap-dead-training-runs": {"task": "training.reap_dead_runs", "schedule": 60.0},
    # A missed run is simply skipped (expires): the next one does the same work.
    "lease-table-upkeep": {"task": "annotation.lease_table_upkeep", "schedule": 5.0, "options": {"expires": 5.0}},
    # Annotator reliabilities: one aggregate query when no judgement changed, a warm-started fit otherwise.
    "reliabilities-refresh": {
        "task": "annotation.reliabilities_refresh",
        "schedule": 600.0,
        "options": {"expires": 600.0},
    },
}

# With Redis, the cache is shared by all web workers, so sessions can be read from it instead of the
# database on every request (the labeling API's hot path); without Redis each process has its own.
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "mhp.cache.SharedClientRedisCache", "LOCATION": REDIS_URL}}
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

# Labeling and review
PAIR_JUDGEMENTS_REQUIRED = env_int("PAIR_JUDGEMENTS_REQUIRED", 3, minimum=1)
# Adaptive redundancy (annotation/labeling/consensus.py): a pair asks for PAIR_JUDGEMENTS_MIN judgements,
# then one more at a time, up to PAIR_JUDGEMENTS_MAX, while on some dimension no label reaches a
# posterior of PAIR_SETTLED_POSTERIOR given its judges' reliabilities. "fixed" asks PAIR_JUDGEMENTS_REQUIRED.
# The default maximum 3 asks a 3rd judgement only on a disagreement: with 4 dimensions, a 4th and 5th were
# asked so often in benchmarks/bench_active.py that a pair cost 3.8 judgements on average (2.9 with 3).
PAIR_REDUNDANCY = env_choice("PAIR_REDUNDANCY", "adaptive", choices=("adaptive", "fixed"))
PAIR_JUDGEMENTS_MIN = env_int("PAIR_JUDGEMENTS_MIN", 2, minimum=1)
PAIR_JUDGEMENTS_MAX = env_int("PAIR_JUDGEMENTS_MAX", 3, minimum=PAIR_JUDGEMENTS_MIN)
PAIR_SETTLED_POSTERIOR = env_float("PAIR_SETTLED_POSTERIOR", 0.75, minimum=0.34, maximum=1.0)
# Spammer flags (Dawid-Skene fit): informativeness below this, over at least this many judgements. In
# benchmarks/bench_active.py (seeds 0-2, 40-90 judgements a judge) spammers measured 0.23-0.35 (sampling
# noise: their truth is 0) and honest judges (60-95% right) 0.53-0.64; under 40 judgements the two overlap.
SPAMMER_INFORMATIVENESS = env_float("SPAMMER_INFORMATIVENESS", 0.4, minimum=0.0, maximum=1.0)
SPAMMER_MIN_JUDGEMENTS = env_int("SPAMMER_MIN_JUDGEMENTS", 40, minimum=1)
# Guided queue order: the share of fresh pairs served at random rather than by the model's uncertainty.
QUEUE_RANDOM_SHARE = env_float("QUEUE_RANDOM_SHARE", 0.2, minimum=0.0, maximum=1.0)
# "manual": admins apply orders at /label/queue-order/. "guided": every pair scoring run that succeeds
# orders the queue by its uncertainties at once (with QUEUE_RANDOM_SHARE), closing the loop on its own.
QUEUE_ORDER = env_choice("QUEUE_ORDER", "manual", choices=("manual", "guided"))
# A training run that succeeds queues the pair scoring of its best model on the gpu queue: with QUEUE_ORDER
# "guided" too, retrain -> score -> order the queue needs nobody.
PAIR_SCORING_AFTER_TRAINING = env_bool("PAIR_SCORING_AFTER_TRAINING", False)
# A model "confidently contradicts" a human label when it gives the other image at least this probability.
MODEL_DISAGREEMENT_PROBABILITY = env_float("MODEL_DISAGREEMENT_PROBABILITY", 0.9, minimum=0.5, maximum=1.0)
PROMPT_REVIEWS_REQUIRED = env_int("PROMPT_REVIEWS_REQUIRED", 1, minimum=1)
LEASE_SECONDS = env_int("LEASE_SECONDS", 600, minimum=10)
GOLD_PAIR_RATE = env_float("GOLD_PAIR_RATE", 0.05, minimum=0.0, maximum=1.0)
IMAGE_MAX_PIXELS = env_int("IMAGE_MAX_PIXELS", 64_000_000, minimum=1)

# LLM augmentation (OpenAI-compatible chat completions)
OPENAI_API_KEY = env_str("OPENAI_API_KEY")
OPENAI_BASE_URL = env_url("OPENAI_BASE_URL", None, schemes=("http", "https"))
OPENAI_MODEL = env_str("OPENAI_MODEL", "gpt-4o")
OPENAI_TIMEOUT_SECONDS = env_float("OPENAI_TIMEOUT_SECONDS", 60.0, minimum=1.0)

# Where training runs, evaluation outputs and dataset exports are written (shared with GPU workers).
ARTIFACTS_ROOT = env_path("ARTIFACTS_ROOT", BASE_DIR / "var" / "artifacts")

# Besides ARTIFACTS_ROOT, the only folders whose checkpoints and weights scoring and evaluation jobs open
# (training/model_paths.py): a path a client sends is refused anywhere else.
MODEL_ROOTS = env_paths("MODEL_ROOTS", [])

# The MPS checkpoint the scoring API uses when a request names none (any format load_checkpoint reads).
MPS_CHECKPOINT = env_str("MPS_CHECKPOINT", "")

# Behind TLS (see README, "Deploy"): HTTPS=1 turns on the redirect, secure cookies and HSTS;
# BEHIND_PROXY=1 trusts the proxy's X-Forwarded-Proto and X-Real-IP (nginx in docker-compose sets both,
# overwriting whatever a client sent), so set it only when every request comes through that proxy.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if BEHIND_PROXY else None
SECURE_SSL_REDIRECT = HTTPS
# Container health probes ask over plain HTTP from inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = env_int("HSTS_SECONDS", 365 * 24 * 3600, minimum=0) if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("HSTS_PRELOAD", True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# Login throttling: AXES_FAILURE_LIMIT wrong passwords for one username from one address lock that
# pair out for AXES_COOLOFF_MINUTES (HTTP 429); a success resets the count.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "mhp.security.client_ip"
AXES_VERBOSE = False

# Content-Security-Policy: scripts and <style> elements only from this site or with the request's nonce
# (templates write nonce="{{ request.csp_nonce }}"); style attributes stay allowed (bar widths, colours).
# MEDIA_ORIGINS: where images come from when this site does not serve them (default: the S3 bucket's).
MEDIA_ORIGINS = env_list("MEDIA_ORIGINS", s3_origins(AWS_STORAGE_BUCKET_NAME, AWS_S3_REGION_NAME, AWS_S3_ENDPOINT_URL))
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        "style-src-attr": ["'unsafe-inline'"],
        "img-src": [SELF, "data:", *MEDIA_ORIGINS],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}
