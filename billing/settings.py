"""Settings, read from the environment with safe defaults for a local run.

Environment:
- DATABASE_URL: default a SQLite file in the project folder (zero-setup trial); PostgreSQL in
  tests, CI and production (postgres://user@host:5432/name).
- CELERY_BROKER_URL: unset -> tasks run eagerly in-process; set (redis://...) -> real workers.
- SECRET_KEY, DEBUG, ALLOWED_HOSTS, STORAGE_DIR (generated files: PDFs, exports).
- API_RATE_LIMITS: "events=500,usage=200,default=50" requests per second per organization.
- LOG_FORMAT: json (default when DEBUG is off) or text (default when on); LOG_LEVEL (INFO).
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", True)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise RuntimeError("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "insecure-local-development-key-change-me"
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files, served by us: /api/docs/ works offline
    "django_celery_beat",
    "guardian",
    "billing",
    "plans",
    "customers",
    "metering",
    "wallets",
    "invoicing",
    "integrations",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "billing.api.middleware.RequestIdMiddleware",
    "billing.api.middleware.ApiErrorsAsJsonMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

if not DEBUG:  # production serves static files itself (after `collectstatic`)
    MIDDLEWARE.insert(1, "whitenoise.middleware.WhiteNoiseMiddleware")

ROOT_URLCONF = "billing.urls"
WSGI_APPLICATION = "billing.wsgi.application"
ASGI_APPLICATION = "billing.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")),
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
STORAGE_DIR = Path(os.environ.get("STORAGE_DIR", BASE_DIR / "var" / "storage"))
MEDIA_ROOT = STORAGE_DIR
MEDIA_URL = "media/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if not DEBUG
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# --- REST API (Lago wire format) -------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["billing.api.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["billing.api.permissions.HasApiKeyPermission"],
    "DEFAULT_THROTTLE_CLASSES": ["billing.api.throttling.OrganizationRateThrottle"],
    "DEFAULT_PAGINATION_CLASS": "billing.api.pagination.LagoPagination",
    "DEFAULT_FILTER_BACKENDS": ["billing.api.filters.LagoFilterBackend"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["billing.api.parsers.LagoJSONParser"],
    "DEFAULT_METADATA_CLASS": "billing.api.metadata.LagoMetadata",
    "EXCEPTION_HANDLER": "billing.api.errors.lago_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "billing.api.schema.LagoAutoSchema",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Billing back office API (Lago v1 compatible)",
    "DESCRIPTION": "Usage-based and subscription billing. Wire-compatible with Lago's REST API v1.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "APPEND_COMPONENTS": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
    "SECURITY": [{"bearerAuth": []}],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # error statuses with Lago's envelope on every operation (billing/api/schema.py)
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "billing.api.schema.lago_postprocess",
    ],
}


def _parse_rate_limits(raw: str) -> dict[str, int]:
    limits = {"events": 500, "usage": 200, "default": 50}  # spec §1.4, requests per second
    for part in raw.split(","):
        if "=" in part:
            key, value = part.split("=", 1)
            limits[key.strip()] = int(value)
    return limits


API_RATE_LIMITS = _parse_rate_limits(os.environ.get("API_RATE_LIMITS", ""))
IDEMPOTENCY_KEY_TTL_HOURS = 24
API_REQUEST_LOG = env_bool("API_REQUEST_LOG", True)

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "billing",
    }
}
if os.environ.get("CACHE_REDIS_URL"):
    CACHES["default"] = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": os.environ["CACHE_REDIS_URL"],
    }

# --- Celery -----------------------------------------------------------------------------------
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"

# One JSON object per line in production, plain text in development; both carry the request id
# and Celery task id of the line (billing/logs.py).
LOG_FORMAT = os.environ.get("LOG_FORMAT") or ("text" if DEBUG else "json")
if LOG_FORMAT not in {"json", "text"}:
    raise RuntimeError(f"LOG_FORMAT must be json or text, not {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "billing.logs.ContextFilter"}},
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s %(log_context)s%(message)s"},
        "json": {"()": "billing.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["context"],
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.request": {"level": "ERROR"},
    },
}

LOGIN_URL = "admin:login"

# SQLite (the zero-setup trial) cannot enforce NULLS NOT DISTINCT unique constraints; PostgreSQL,
# where correctness is tested, does.
SILENCED_SYSTEM_CHECKS = ["models.W047"]
