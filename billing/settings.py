"""Settings, read from the environment with safe defaults for a local run.

Environment:
- DATABASE_URL: default a SQLite file in the project folder (zero-setup trial); PostgreSQL in
  tests, CI and production (postgres://user@host:5432/name).
- CELERY_BROKER_URL: unset -> tasks run eagerly in-process; set (redis://...) -> real workers.
- SECRET_KEY, DEBUG, ALLOWED_HOSTS, STORAGE_DIR (generated files: PDFs, exports).
- API_RATE_LIMITS: "events=500,usage=200,default=50" requests per second per organization.
- CACHE_REDIS_URL: a shared cache (rate limits, API keys); API_KEY_CACHE_SECONDS (60 with it).
- LOG_FORMAT: json (default when DEBUG is off) or text (default when on); LOG_LEVEL (INFO).
- PUBLIC_URL: the address payment providers call back (webhooks), default http://127.0.0.1:8000.
- STRIPE_API_BASE: Stripe's API address (default https://api.stripe.com; tests use a local fake).
- PAYMENT_SECRETS_KEY: Fernet key encrypting payment provider secrets at rest; unset -> derived
  from SECRET_KEY (rotating SECRET_KEY then makes stored secrets unreadable).
- WEBHOOK_ATTEMPTS, WEBHOOK_TIMEOUT_SECONDS, WEBHOOKS_ALLOW_PRIVATE_URLS, WEBHOOK_RSA_PRIVATE_KEY,
  API_URL (JWT issuer), WEBHOOK_LOG_RETENTION_DAYS, WEBHOOK_ENDPOINT_CONCURRENCY,
  WEBHOOK_REQUESTS_PER_SLOT, WEBHOOK_SENDER_IDLE_SECONDS: outbound webhooks.
- BILLING_RUN_CHUNK_SIZE (100), BILLING_RUN_QUEUE (celery): the billing run's fan-out;
  INVOICE_PDF_ON_FINALIZE (1): render documents' PDFs when they are finalized.
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
    # the admin theme: before django.contrib.admin so its templates win (billing/admin_site.py)
    "unfold",
    "unfold.contrib.filters",
    "unfold.contrib.forms",
    "unfold.contrib.inlines",
    "unfold.contrib.import_export",  # the theme's export page (django-import-export)
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
    "import_export",
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
    "billing.admin_site.DisplayLocaleMiddleware",  # admin: money in the organization's locale
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
# The ingestion statements run on every POST /events are prepared once per connection
# (billing.db.prepared_cursor); 0 behind a connection pooler in transaction mode.
DB_PREPARED_STATEMENTS = env_bool("DB_PREPARED_STATEMENTS", True)
# The event store (docs/event-store.md): "" picks by database (SQL on PostgreSQL, portable
# otherwise); "clickhouse" stores events in CLICKHOUSE_URL (http(s)://... or chdb://path),
# which needs the `.[clickhouse]` extra.
EVENT_STORE = os.environ.get("EVENT_STORE", "")
CLICKHOUSE_URL = os.environ.get("CLICKHOUSE_URL", "")
# The PostgreSQL store reads its pre-aggregated rows (docs/event-store.md "Pre-aggregation");
# 0 reads every event of the window instead (the rows are kept current either way).
EVENT_STORE_ROLLUPS = os.environ.get("EVENT_STORE_ROLLUPS", "1") not in ("0", "false", "")

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
    "billing.roles.RoleBackend",  # a staff member's role in the row's organization
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en"
# One date format in the admin: 2026-03-31 and 2026-03-31 14:05 (billing/formats/en/formats.py).
FORMAT_MODULE_PATH = ["billing.formats"]
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
    "DEFAULT_RENDERER_CLASSES": ["billing.api.renderers.LagoJSONRenderer"],
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
        # Django's Redis backend, reusing its client (billing.cache)
        "BACKEND": "billing.cache.SharedClientRedisCache",
        "LOCATION": os.environ["CACHE_REDIS_URL"],
    }
# API keys (with their organization) are kept this many seconds in the cache after a lookup
# (billing.api.authentication): saves the lookup on every call. Revoking, rotating or changing
# a key or its organization drops the entry, so the cache must be shared by every process (Redis):
# with the in-process cache another worker would keep a revoked key up to the TTL. 0: off, the
# default without CACHE_REDIS_URL.
API_KEY_CACHE_SECONDS = int(
    os.environ.get("API_KEY_CACHE_SECONDS", "60" if os.environ.get("CACHE_REDIS_URL") else "0")
)

# --- Celery -----------------------------------------------------------------------------------
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# The hourly billing run sends the due customers to the workers in chunks of this many
# customers (one task each, one catalog read per chunk), on this queue (docs/billing-run.md).
BILLING_RUN_CHUNK_SIZE = int(os.environ.get("BILLING_RUN_CHUNK_SIZE", "100"))
BILLING_RUN_QUEUE = os.environ.get("BILLING_RUN_QUEUE", "celery")
# Render the PDF of each finalized invoice and credit note (a worker task after commit).
INVOICE_PDF_ON_FINALIZE = env_bool("INVOICE_PDF_ON_FINALIZE", True)
CELERY_TIMEZONE = "UTC"

# --- Outbound webhooks ------------------------------------------------------------------------
# Attempts of one delivery (the first one included) and the time each may take; Lago's defaults.
# usage refresh loop: passes started at once by the every-minute task when many subscriptions
# are flagged (one per batch of 200), on as many Celery workers
USAGE_REFRESH_MAX_PASSES = int(os.environ.get("USAGE_REFRESH_MAX_PASSES", "4"))
# seconds after events before a refresh pass queued by their ingestion runs (one per window), so
# that an event's effects do not wait for the minute's beat; 0: the beat alone
USAGE_REFRESH_KICK_SECONDS = int(os.environ.get("USAGE_REFRESH_KICK_SECONDS", "10"))
WEBHOOK_ATTEMPTS = int(os.environ.get("WEBHOOK_ATTEMPTS", "3"))
WEBHOOK_TIMEOUT_SECONDS = float(os.environ.get("WEBHOOK_TIMEOUT_SECONDS", "30"))
# Receivers on loopback, private or link-local addresses are refused unless this is on (local
# setups and tests): an endpoint must not make the server call its own network.
WEBHOOKS_ALLOW_PRIVATE_URLS = env_bool("WEBHOOKS_ALLOW_PRIVATE_URLS", False)
# The RSA key signing JWT webhooks (PEM, or PEM in base64 as Lago's LAGO_RSA_PRIVATE_KEY); when
# unset, one is generated once and kept in the database.
WEBHOOK_RSA_PRIVATE_KEY = os.environ.get("WEBHOOK_RSA_PRIVATE_KEY", "")
# The JWT `iss` claim: this API's public base URL, as receivers know it.
API_URL = os.environ.get("API_URL", "http://127.0.0.1:8000")
WEBHOOK_LOG_RETENTION_DAYS = int(os.environ.get("WEBHOOK_LOG_RETENTION_DAYS", "90"))
# Sending slots of one endpoint: a slow receiver holds at most this many workers.
WEBHOOK_ENDPOINT_CONCURRENCY = int(os.environ.get("WEBHOOK_ENDPOINT_CONCURRENCY", "2"))
# Requests in flight at once in each of those slots (threads of the worker holding the slot):
# an endpoint gets at most WEBHOOK_ENDPOINT_CONCURRENCY x WEBHOOK_REQUESTS_PER_SLOT at once.
WEBHOOK_REQUESTS_PER_SLOT = int(os.environ.get("WEBHOOK_REQUESTS_PER_SLOT", "4"))
# Seconds the sender of an endpoint's first slot waits, holding its worker process, for the
# next deliveries before it ends (0: it ends as soon as nothing is due; a task is then queued
# for each drained batch).
WEBHOOK_SENDER_IDLE_SECONDS = float(os.environ.get("WEBHOOK_SENDER_IDLE_SECONDS", "1"))

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
LOGIN_REDIRECT_URL = "admin:index"  # the theme's login form posts no `next` when none was asked

# The admin's theme: title, sidebar (built per request from the staff member's role) and search.
UNFOLD = {
    "SITE_TITLE": "billing.admin_site.site_title",
    "SITE_HEADER": "billing.admin_site.site_title",
    "SITE_SUBHEADER": "billing.admin_site.site_subheader",
    "SITE_SYMBOL": "account_balance",
    "SHOW_HISTORY": True,
    "SHOW_VIEW_ON_SITE": False,
    "STYLES": ["billing.admin_site.stylesheet"],
    "DASHBOARD_CALLBACK": "billing.admin_site.dashboard",
    "COLORS": {
        "primary": {
            "50": "oklch(97% .014 254.604)",
            "100": "oklch(93.2% .032 255.585)",
            "200": "oklch(88.2% .059 254.128)",
            "300": "oklch(80.9% .105 251.813)",
            "400": "oklch(70.7% .165 254.624)",
            "500": "oklch(62.3% .214 259.815)",
            "600": "oklch(54.6% .245 262.881)",
            "700": "oklch(48.8% .243 264.376)",
            "800": "oklch(42.4% .199 265.638)",
            "900": "oklch(37.9% .146 265.522)",
            "950": "oklch(28.2% .091 267.935)",
        },
    },
    "SIDEBAR": {
        "show_search": False,
        "command_search": True,
        "show_all_applications": "billing.admin_site.show_all_applications",
        "navigation": "billing.admin_site.sidebar",
    },
    "COMMAND": {
        "search_models": "billing.admin_site.searched_models",
        "show_history": False,
    },
}

# SQLite (the zero-setup trial) cannot enforce NULLS NOT DISTINCT unique constraints; PostgreSQL,
# where correctness is tested, does.
SILENCED_SYSTEM_CHECKS = ["models.W047"]

# list exports (billing/admin_export.py) read rows in chunks of this size while they write them
IMPORT_EXPORT_CHUNK_SIZE = 2000

# --- Payment providers ------------------------------------------------------------------------
PUBLIC_URL = os.environ.get("PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")
STRIPE_API_BASE = os.environ.get("STRIPE_API_BASE", "https://api.stripe.com").rstrip("/")
PAYMENT_SECRETS_KEY = os.environ.get("PAYMENT_SECRETS_KEY", "")

# E-mails (payment requests, dunning reminders): printed on the console in development, SMTP
# (EMAIL_HOST, EMAIL_PORT, EMAIL_HOST_USER, EMAIL_HOST_PASSWORD, EMAIL_USE_TLS) in production;
# the tests use Django's in-memory outbox
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "billing@localhost")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
