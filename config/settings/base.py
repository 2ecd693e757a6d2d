"""Precis settings, read from the environment with django-environ.

Two runtime modes share this file (see DESIGN.md, "Runtime modes"):
- embedded (no REDIS_URL): SQLite under var/, tasks in-process after commit,
  in-memory channel layer, local-memory cache;
- stack (DATABASE_URL + REDIS_URL): PostgreSQL, Redis as broker, channel layer
  and cache, Celery workers and beat.
Every variable is optional in the embedded mode; README.md lists them all.
"""

import os
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from config.logging import configure_structlog, logging_config

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()

DEBUG = env.bool("DEBUG", default=False)

# SECRET_KEY has no default outside DEBUG: a forgotten key must stop start-up,
# not silently sign tokens with a public value.
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is required when DEBUG is off (set SECRET_KEY, or DEBUG=true for local use)."
        )
    SECRET_KEY = "insecure-dev-key-only-for-debug-mode-" + "x" * 20

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])
# Only those origins, with credentials: a front end there calls OAuth authorize with
# `credentials: "include"` so the browser keeps the state's nonce cookie (the API itself
# authenticates with JWTs, never cookies).
CORS_ALLOW_CREDENTIALS = True
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# --- Applications -----------------------------------------------------------
INSTALLED_APPS = [
    "daphne",
    "config.apps.PrecisAdminConfig",  # django.contrib.admin with Precis' site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "drf_standardized_errors",
    "corsheaders",
    "csp",
    "channels",
    "django_celery_results",
    "config.apps.PrecisConfig",
    "organizations",
    "accounts",
    "documents",
    "summaries",
    "templates_app",
    "jobs",
    "integrations",
    "realtime",
]

MIDDLEWARE = [
    "config.middleware.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "config.middleware.APIDependencyErrorMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

# --- Data stores --------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
EMBEDDED = not REDIS_URL

DATABASES = {"default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'precis.sqlite3'}")}
DATABASES["default"]["ATOMIC_REQUESTS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"].setdefault("OPTIONS", {})
    # A bounded connect timeout: a down database answers 503 quickly instead of hanging.
    DATABASES["default"]["OPTIONS"].setdefault("connect_timeout", 5)
    # Under ASGI every request runs its sync code in a fresh thread, and Django's
    # persistent connections are per thread: CONN_MAX_AGE would open a connection per
    # request and leave the old ones to the garbage collector. A process-wide psycopg
    # pool (Django 5.1+) reuses a few connections instead; DB_POOL_MAX_SIZE per process.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"]["pool"] = {
        "min_size": env.int("DB_POOL_MIN_SIZE", default=2),
        "max_size": env.int("DB_POOL_MAX_SIZE", default=10),
        "timeout": env.float("DB_POOL_TIMEOUT_S", default=10.0),
    }
else:
    VAR_DIR.mkdir(exist_ok=True)
    DATABASES["default"].setdefault("OPTIONS", {})
    # SQLite in the embedded mode: requests and in-process jobs write concurrently. WAL lets
    # readers and the writer proceed together; IMMEDIATE transactions take the write lock up
    # front (no deadlock upgrading a read lock); writers wait for the lock instead of failing.
    DATABASES["default"]["OPTIONS"].setdefault("timeout", 20)
    DATABASES["default"]["OPTIONS"].setdefault("transaction_mode", "IMMEDIATE")
    DATABASES["default"]["OPTIONS"].setdefault("init_command", "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

if EMBEDDED:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels.layers.InMemoryChannelLayer",
            "CONFIG": {"capacity": env.int("CHANNEL_CAPACITY", default=1000), "expiry": 60},
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "precis",
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            # channels-redis with a blocking connection pool and a receive() whose cancellation
            # cannot be swallowed (realtime/layers.py explains both).
            "BACKEND": "realtime.layers.PrecisRedisChannelLayer",
            # capacity/expiry: see CHANNEL_CAPACITY below (set deliberately, documented in README)
            "CONFIG": {
                # redis-py 8 defaults to a 5 s socket timeout, the same as channels-redis' blocking
                # BZPOPMIN: the read would time out first and kill the consumer holding the receive
                # lock (its socket closed with 1011) every few seconds when idle. Keep it above.
                "hosts": [
                    {
                        "address": REDIS_URL,
                        "socket_timeout": 15,
                        "socket_connect_timeout": 5,
                        "max_connections": env.int("CHANNEL_REDIS_MAX_CONNECTIONS", default=100),
                    }
                ],
                "capacity": env.int("CHANNEL_CAPACITY", default=1000),
                "expiry": env.int("CHANNEL_EXPIRY_S", default=60),
                "group_expiry": 86400,
                "prefix": "precis-ws",
            },
        }
    }

# --- Auth -----------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["accounts.backends.EmailBackend"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_MINUTES", default=15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("JWT_REFRESH_DAYS", default=7)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,
    # Tokens carry a hash of the password hash: changing the password revokes them.
    "CHECK_REVOKE_TOKEN": True,
    "ALGORITHM": "HS256",
    "SIGNING_KEY": SECRET_KEY,
    "AUTH_HEADER_TYPES": ("Bearer",),
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "user_id",
}

# Failed logins of one account from one client: this many are free, then each attempt
# waits 1, 2, 4 … s after the previous failure, at most LOGIN_BACKOFF_MAX_S (never a lock).
LOGIN_FREE_FAILURES = env.int("LOGIN_FREE_FAILURES", default=5)
LOGIN_BACKOFF_MAX_S = env.int("LOGIN_BACKOFF_MAX_S", default=900)

# Invitations expire after this many days.
INVITATION_TTL_DAYS = env.int("INVITATION_TTL_DAYS", default=7)
# Flash messages live in the session, not in a cookie: the admin shows a new invitation's
# token once in one, and a cookie is readable without the secret key (only signed).
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

# --- Email --------------------------------------------------------------------------
# EMAIL_URL: django-environ's smtp://user:password@host:587, smtp+tls://…, smtp+ssl://…,
# consolemail://. Unset: every mail is printed to the console and written to var/mail/
# (the embedded mode's default; a deployment sets EMAIL_URL).
if env.str("EMAIL_URL", default=""):
    globals().update(env.email_url("EMAIL_URL"))
else:
    EMAIL_BACKEND = "accounts.mail.ConsoleAndFileBackend"
    EMAIL_FILE_PATH = str(VAR_DIR / "mail")
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT_S", default=10)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Precis <noreply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Password reset links and email verification links are valid this long.
PASSWORD_RESET_TIMEOUT = env.int("PASSWORD_RESET_TTL_MINUTES", default=60) * 60
EMAIL_VERIFY_TTL_HOURS = env.int("EMAIL_VERIFY_TTL_HOURS", default=72)

# --- REST API -----------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "organizations.api_keys.ApiKeyAuthentication",  # `Bearer pk_…`; any other bearer token is a JWT
        "accounts.authentication.TenantJWTAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["config.parsers.StrictJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PAGINATION_CLASS": "config.pagination.CursorPagination",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_standardized_errors.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "drf_standardized_errors.handler.exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        "login_ip": env.str("LOGIN_THROTTLE_RATE", default="10/min"),
        "login_account": env.str("LOGIN_THROTTLE_RATE", default="10/min"),
        "register_ip": env.str("REGISTER_THROTTLE_RATE", default="5/min"),
        # Password reset requests and verification mails: per client address and per
        # target address (nobody mail-bombs an inbox through Precis).
        "mail_ip": env.str("MAIL_IP_THROTTLE_RATE", default="20/hour"),
        "mail_account": env.str("MAIL_ACCOUNT_THROTTLE_RATE", default="5/hour"),
    },
    # How many reverse proxies put their address in X-Forwarded-For; 0 trusts only
    # REMOTE_ADDR, so clients cannot dodge per-IP throttles with a forged header.
    "NUM_PROXIES": env.int("NUM_PROXIES", default=0),
    "PAGE_SIZE": 20,
    "UNAUTHENTICATED_USER": None,
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
if DEBUG:
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"].append("rest_framework.renderers.BrowsableAPIRenderer")

DRF_STANDARDIZED_ERRORS = {
    # The API never answers with an HTML page or a traceback, DEBUG or not.
    "ENABLE_IN_DEBUG_FOR_UNHANDLED_EXCEPTIONS": True,
    # Our subclass maps domain errors and outages (503) onto the same shape.
    "EXCEPTION_HANDLER_CLASS": "config.exceptions.PrecisExceptionHandler",
    # Statuses documented on every endpoint of the schema; 409/413 are added per view.
    "ALLOWED_ERROR_STATUS_CODES": ["400", "401", "403", "404", "405", "415", "429", "500", "503"],
    # One generic error schema for every status: Precis' error codes are stable strings
    # listed in the README, more than the library's built-in enums know about.
    "ERROR_SCHEMAS": {
        status: "config.schema.ErrorResponseSerializer"
        for status in ["400", "401", "403", "404", "405", "415", "429", "500"]
    }
    | {"503": "config.schema.ServiceUnavailableErrorResponseSerializer"},
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Precis API",
    "DESCRIPTION": "Multi-tenant document summarization. Errors follow one shape: "
    '{"type": ..., "errors": [{"code", "detail", "attr"}]}.',
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "SummaryFormatEnum": "summaries.formats.FORMAT_CHOICES",
        "ValidationErrorEnum": "drf_standardized_errors.openapi_serializers.ValidationErrorEnum.choices",
        "ClientErrorEnum": "drf_standardized_errors.openapi_serializers.ClientErrorEnum.choices",
        "ServerErrorEnum": "drf_standardized_errors.openapi_serializers.ServerErrorEnum.choices",
        "ErrorCode401Enum": "drf_standardized_errors.openapi_serializers.ErrorCode401Enum.choices",
        "ErrorCode403Enum": "drf_standardized_errors.openapi_serializers.ErrorCode403Enum.choices",
        "ErrorCode404Enum": "drf_standardized_errors.openapi_serializers.ErrorCode404Enum.choices",
        "ErrorCode405Enum": "drf_standardized_errors.openapi_serializers.ErrorCode405Enum.choices",
        "ErrorCode406Enum": "drf_standardized_errors.openapi_serializers.ErrorCode406Enum.choices",
        "ErrorCode415Enum": "drf_standardized_errors.openapi_serializers.ErrorCode415Enum.choices",
        "ErrorCode429Enum": "drf_standardized_errors.openapi_serializers.ErrorCode429Enum.choices",
        "ErrorCode500Enum": "drf_standardized_errors.openapi_serializers.ErrorCode500Enum.choices",
        "DocumentStatusEnum": "documents.models.Document.Status",
    },
    "POSTPROCESSING_HOOKS": ["drf_standardized_errors.openapi_hooks.postprocess_schema_enums"],
    # Schema and Swagger UI are public; assets are served locally (no CDN).
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
}

# Largest JSON request body accepted, in bytes (413 above it).
MAX_JSON_BODY_BYTES = env.int("MAX_JSON_BODY_BYTES", default=25 * 1024 * 1024)
MAX_UPLOAD_BYTES = env.int("MAX_UPLOAD_BYTES", default=20 * 1024 * 1024)
MAX_DOCUMENT_CHARS = env.int("MAX_DOCUMENT_CHARS", default=2_000_000)
# Extraction limits (documents/extraction.py): PDF pages, DOCX inflation.
MAX_PDF_PAGES = env.int("MAX_PDF_PAGES", default=2000)
MAX_DOCX_UNCOMPRESSED_BYTES = env.int("MAX_DOCX_UNCOMPRESSED_BYTES", default=100 * 1024 * 1024)
MAX_DOCX_ENTRIES = env.int("MAX_DOCX_ENTRIES", default=5000)
# The sandbox every file is read in (documents/sandbox.py): CPU seconds, address space
# and wall clock of the child process; files read at once per `io` worker process.
EXTRACTION_CPU_S = env.int("EXTRACTION_CPU_S", default=60)
EXTRACTION_MEMORY_MB = env.int("EXTRACTION_MEMORY_MB", default=1024)
EXTRACTION_TIMEOUT_S = env.float("EXTRACTION_TIMEOUT_S", default=90.0)
INGEST_CONCURRENCY = env.int("INGEST_CONCURRENCY", default=max(4, 2 * (os.cpu_count() or 1)))
# Tesseract languages for scanned pages and images (`+`-separated, e.g. "eng+deu").
OCR_LANGUAGES = env.str("OCR_LANGUAGES", default="eng")
# OCR takes about a second a page: each scanned page adds OCR_PAGE_TIMEOUT_S to the file's
# wall clock and CPU budget; a file with more scanned pages than OCR_MAX_PAGES is refused.
OCR_PAGE_TIMEOUT_S = env.float("OCR_PAGE_TIMEOUT_S", default=15.0)
OCR_MAX_PAGES = env.int("OCR_MAX_PAGES", default=500)
# Full-text search ranks at most this many matches (bounds the cost of common terms).
SEARCH_RANK_CANDIDATES = env.int("SEARCH_RANK_CANDIDATES", default=500)
# Idempotency-Key records are kept this long (hours).
IDEMPOTENCY_TTL_HOURS = env.int("IDEMPOTENCY_TTL_HOURS", default=24)

# --- Celery -------------------------------------------------------------------
# The worker/queue details are in config/celery.py; these are the connections.
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = "django-db"
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_TASK_DEFAULT_QUEUE = "default"
# Every queue the project uses: `celery -A config worker` without -Q consumes them all.
# `llm` and `ingest` hold jobs that wait (on an LLM server, on a sandboxed extraction):
# the Procfile's `io` worker runs them on threads; the others run CPU-bound work in
# processes (Procfile `worker`).
CELERY_TASK_QUEUES = {"default": {}, "llm": {}, "ingest": {}, "summaries": {}, "integrations": {}}
CELERY_TASK_ACKS_LATE = True  # a task is acknowledged after it ran: a dead worker's task is redelivered
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1  # long tasks: one at a time per process
CELERY_TASK_IGNORE_RESULT = True  # the Job row is the source of truth; results only where asked
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_TIMEOUT = 3
CELERY_BROKER_CONNECTION_MAX_RETRIES = None  # a worker waits out a broker outage of any length

# Time limits, ordered: one LLM call < soft limit < hard limit < Redis visibility timeout,
# so a slow call times out before the task, the task before the worker kills it, and the
# broker redelivers only tasks whose worker really died.
LLM_TIMEOUT_S = env.float("LLM_TIMEOUT_S", default=60.0)
JOB_SOFT_TIME_LIMIT_S = env.int("JOB_SOFT_TIME_LIMIT_S", default=900)
JOB_HARD_TIME_LIMIT_S = env.int("JOB_HARD_TIME_LIMIT_S", default=960)
BROKER_VISIBILITY_TIMEOUT_S = env.int("BROKER_VISIBILITY_TIMEOUT_S", default=3600)
if not (LLM_TIMEOUT_S < JOB_SOFT_TIME_LIMIT_S < JOB_HARD_TIME_LIMIT_S < BROKER_VISIBILITY_TIMEOUT_S):
    raise ImproperlyConfigured(
        "Timeouts must be ordered LLM_TIMEOUT_S < JOB_SOFT_TIME_LIMIT_S < JOB_HARD_TIME_LIMIT_S "
        "< BROKER_VISIBILITY_TIMEOUT_S."
    )
CELERY_TASK_SOFT_TIME_LIMIT = JOB_SOFT_TIME_LIMIT_S
CELERY_TASK_TIME_LIMIT = JOB_HARD_TIME_LIMIT_S
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": BROKER_VISIBILITY_TIMEOUT_S,
    # The defaults wait forever on a dead broker.
    "socket_timeout": 5,
    "socket_connect_timeout": 3,
    "retry_on_timeout": True,
}
# Publishing a task (enqueue at request time) gives up fast: the API answers 503.
CELERY_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}
# Scheduling rounds that wait for nothing else: delayed retries, held-back batch progress.
SCHEDULER_TICK_S = env.float("SCHEDULER_TICK_S", default=1.0)
# Event webhooks (integrations.event_webhooks): how often beat sweeps for due attempts, and
# how long one attempt may take.
WEBHOOK_SWEEP_S = env.float("WEBHOOK_SWEEP_S", default=30.0)
WEBHOOK_TIMEOUT_S = env.float("WEBHOOK_TIMEOUT_S", default=10.0)
WEBHOOK_DELIVERY_RETENTION_DAYS = env.int("WEBHOOK_DELIVERY_RETENTION_DAYS", default=30)
CELERY_BEAT_SCHEDULE = {
    "tick": {"task": "jobs.tick", "schedule": SCHEDULER_TICK_S, "options": {"queue": "default", "expires": 10}},
    "reap-stale-jobs": {"task": "jobs.reap_stale_jobs", "schedule": 30.0, "options": {"queue": "default"}},
    "purge-events": {"task": "realtime.purge_events", "schedule": 3600.0, "options": {"queue": "default"}},
    "purge-audit": {"task": "organizations.purge_audit", "schedule": 86400.0, "options": {"queue": "default"}},
    "purge-webhook-deliveries": {
        "task": "integrations.purge_webhook_deliveries",
        "schedule": 86400.0,
        "options": {"queue": "default"},
    },
    "deliver-due-webhooks": {
        "task": "integrations.deliver_due_webhooks",
        "schedule": WEBHOOK_SWEEP_S,
        "options": {"queue": "default", "expires": WEBHOOK_SWEEP_S},
    },
    "purge-idempotency": {
        "task": "organizations.purge_idempotency",
        "schedule": 3600.0,
        "options": {"queue": "default"},
    },
    "purge-registration-claims": {
        "task": "organizations.purge_registration_claims",
        "schedule": 3600.0,
        "options": {"queue": "default"},
    },
    "purge-oauth-states": {
        "task": "integrations.purge_oauth_states",
        "schedule": 3600.0,
        "options": {"queue": "integrations"},
    },
    "refresh-integration-tokens": {
        "task": "integrations.refresh_tokens",
        "schedule": 300.0,
        "options": {"queue": "integrations"},
    },
}

# Job leases: a running attempt renews its lease every JOB_HEARTBEAT_S; the reaper takes
# back jobs whose lease expired, retrying them up to JOB_MAX_ATTEMPTS times in all.
JOB_LEASE_S = env.int("JOB_LEASE_S", default=60)
JOB_HEARTBEAT_S = env.float("JOB_HEARTBEAT_S", default=10.0)
JOB_MAX_ATTEMPTS = env.int("JOB_MAX_ATTEMPTS", default=3)
JOB_REDISPATCH_AFTER_S = env.int("JOB_REDISPATCH_AFTER_S", default=120)
# Threads running CPU-bound jobs in the embedded mode (LLM jobs get LLM_CONCURRENCY).
EMBEDDED_WORKERS = env.int("EMBEDDED_WORKERS", default=2)
# Fair share (jobs.scheduler): at most this many jobs of one organization hold a worker's
# slot at once, over all queues (0: no cap; the scheduler shares free slots fairly anyway).
ORG_MAX_CONCURRENT_JOBS = env.int("ORG_MAX_CONCURRENT_JOBS", default=0)
# POST /documents/summarize/ takes at most this many documents (400 `batch_too_large`).
MAX_BATCH_DOCUMENTS = env.int("MAX_BATCH_DOCUMENTS", default=1000)
# batch.progress events go out at most this often per batch.
BATCH_PROGRESS_INTERVAL_S = env.float("BATCH_PROGRESS_INTERVAL_S", default=0.5)

# --- LLM ----------------------------------------------------------------------------
LLM_PROVIDER = env.str("LLM_PROVIDER", default="local")
LLM_BASE_URL = env.str("LLM_BASE_URL", default="https://api.openai.com/v1")
LLM_API_KEY = env.str("LLM_API_KEY", default="")
LLM_MODEL = env.str("LLM_MODEL", default="gpt-4o-mini")
# Failed LLM calls retried per job, all its calls and attempts together (summaries.calls).
LLM_MAX_RETRIES = env.int("LLM_MAX_RETRIES", default=3)
LLM_CONTEXT_TOKENS = env.int("LLM_CONTEXT_TOKENS", default=8192)
LLM_MAX_OUTPUT_TOKENS = env.int("LLM_MAX_OUTPUT_TOKENS", default=1024)
# LLM calls in flight per worker process (the `llm` worker's threads, the embedded pool),
# and map steps of one long document in flight at once.
LLM_CONCURRENCY = env.int("LLM_CONCURRENCY", default=32)
LLM_MAP_CONCURRENCY = env.int("LLM_MAP_CONCURRENCY", default=4)
# The shared limiter (summaries/providers/ratelimit.py), per provider and model: requests
# and tokens per minute (0: not configured; the server's rate-limit headers and its 429s
# still set the pace), and requests per minute of one organization (0: no own limit).
LLM_RATE_LIMIT_RPM = env.int("LLM_RATE_LIMIT_RPM", default=0)
LLM_RATE_LIMIT_TPM = env.int("LLM_RATE_LIMIT_TPM", default=0)
LLM_ORG_RATE_LIMIT_RPM = env.int("LLM_ORG_RATE_LIMIT_RPM", default=0)
# Longest wait for a turn inside a task; beyond it the job gives its slot back and waits.
LLM_RATE_LIMIT_MAX_WAIT_S = env.float("LLM_RATE_LIMIT_MAX_WAIT_S", default=60.0)
# What calls cost (summaries.usage), per provider and model: prompt and completion prices per
# million tokens, e.g. {"openai": {"gpt-4o-mini": [0.15, 0.60], "*": [2.5, 10]}}; `*` is any
# other model of the provider. Unlisted models cost 0, and so does the built-in `local`.
# How long the audit log keeps its entries (organizations.audit; purged daily by beat).
AUDIT_RETENTION_DAYS = env.int("AUDIT_RETENTION_DAYS", default=365)
LLM_PRICES = env.json("LLM_PRICES", default={"openai": {"gpt-4o-mini": [0.15, 0.60], "gpt-4o": [2.5, 10.0]}})

# --- HTTP security --------------------------------------------------------------
# TLS is terminated by a proxy in front: SECURE_SSL_REDIRECT turns on HTTPS-only
# behaviour (redirect, HSTS, secure cookies); SECURE_PROXY_SSL_HEADER_ENABLED trusts
# the proxy's X-Forwarded-Proto. `manage.py check --deploy` is clean with both on.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
if env.bool("SECURE_PROXY_SSL_HEADER_ENABLED", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_REDIRECT_EXEMPT = [r"^health/"]  # probes speak plain HTTP inside the network
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000 if SECURE_SSL_REDIRECT else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=SECURE_SSL_REDIRECT)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
# Preloading HSTS is a commitment for the whole domain that a deployment opts into
# (SECURE_HSTS_PRELOAD=true); not doing so is a choice, not an oversight.
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
SESSION_COOKIE_SECURE = SECURE_SSL_REDIRECT
CSRF_COOKIE_SECURE = SECURE_SSL_REDIRECT
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp) on every response: the admin and the Swagger UI
# load only this origin's scripts and styles (Swagger's init script is served as a file).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],  # the admin's widgets set inline styles
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'self'"],
        "object-src": ["'none'"],
    }
}
# The Django admin's URL prefix (move it off the default path if you like).
ADMIN_URL = env.str("ADMIN_URL", default="admin/").strip("/") + "/"

# --- I18N, static -------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
MEDIA_ROOT = env.path("MEDIA_ROOT", default=VAR_DIR / "media")
# In DEBUG (make run) whitenoise serves straight from the apps, no collectstatic needed.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

# Structured logs (config/logging.py): JSON in the stack, console lines in the embedded mode.
LOG_FORMAT = env.str("LOG_FORMAT", default="console" if EMBEDDED else "json")
LOGGING = logging_config(fmt=LOG_FORMAT, level=env.str("LOG_LEVEL", default="INFO"))
configure_structlog()

# --- Realtime ---------------------------------------------------------------------------
# Published events are kept this long for replay after a reconnect (?since=); beat purges.
REALTIME_EVENT_RETENTION_HOURS = env.float("REALTIME_EVENT_RETENTION_HOURS", default=24)
# Per-socket buffer in the channel layer and how long an undelivered message lives there.
# A socket that falls further behind loses messages *there*, sees the gap in the org's
# event sequence and catches up from the store (or is told to resync): never silently.
CHANNEL_CAPACITY = env.int("CHANNEL_CAPACITY", default=1000)
CHANNEL_EXPIRY_S = env.int("CHANNEL_EXPIRY_S", default=60)
# /metrics: scrapers send Authorization: Bearer METRICS_TOKEN; unset: nobody, except
# unproxied loopback clients while DEBUG is on (`make run`).
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# Sockets re-check their user (active, same org) this often, and close at token expiry.
REALTIME_RECHECK_S = env.float("REALTIME_RECHECK_S", default=60)

# --- Integrations ------------------------------------------------------------------------
# Fernet keys (comma-separated, newest first). Tokens and secrets are stored encrypted with
# the first; older ones still decrypt until `manage.py rotate_encryption_keys` re-encrypts.
# Required in the stack; the embedded mode derives a development key from SECRET_KEY.
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[])
# Hosts outbound fetches (URL import, webhooks) may reach even if private/loopback.
OUTBOUND_ALLOWED_HOSTS = env.list("OUTBOUND_ALLOWED_HOSTS", default=[])
OUTBOUND_MAX_BYTES = env.int("OUTBOUND_MAX_BYTES", default=MAX_UPLOAD_BYTES)
OUTBOUND_TIMEOUT_S = env.float("OUTBOUND_TIMEOUT_S", default=20.0)
OUTBOUND_MAX_REDIRECTS = env.int("OUTBOUND_MAX_REDIRECTS", default=5)
# CA certificates for outbound TLS (empty: the system's); for on-prem hosts with a private CA.
OUTBOUND_CA_BUNDLE = env.str("OUTBOUND_CA_BUNDLE", default="")
# Where the OAuth callback sends the browser back; unset: the callback answers JSON.
FRONTEND_URL = env.str("FRONTEND_URL", default="")
OAUTH_STATE_TTL_S = env.int("OAUTH_STATE_TTL_S", default=600)
# The public base URL of this deployment (for OAuth redirect URIs); unset: taken from the request.
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="")


def _provider_settings(prefix: str, authorize: str, token: str, api: str, revoke: str = "") -> dict[str, str]:
    return {
        "client_id": env.str(f"{prefix}_CLIENT_ID", default=""),
        "client_secret": env.str(f"{prefix}_CLIENT_SECRET", default=""),
        "authorize_url": env.str(f"{prefix}_AUTHORIZE_URL", default=authorize),
        "token_url": env.str(f"{prefix}_TOKEN_URL", default=token),
        "api_base_url": env.str(f"{prefix}_API_BASE_URL", default=api),
        "revoke_url": env.str(f"{prefix}_REVOKE_URL", default=revoke),
    }


INTEGRATION_PROVIDERS = {
    "google_drive": _provider_settings(
        "GOOGLE_DRIVE",
        "https://accounts.google.com/o/oauth2/v2/auth",
        "https://oauth2.googleapis.com/token",
        "https://www.googleapis.com",
        "https://oauth2.googleapis.com/revoke",
    ),
    "notion": _provider_settings(
        "NOTION",
        "https://api.notion.com/v1/oauth/authorize",
        "https://api.notion.com/v1/oauth/token",
        "https://api.notion.com",
    ),
    "slack": _provider_settings(
        "SLACK",
        "https://slack.com/oauth/v2/authorize",
        "https://slack.com/api/oauth.v2.access",
        "https://slack.com/api",
        "https://slack.com/api/auth.revoke",
    ),
}
