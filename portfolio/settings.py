"""Settings, read from environment variables (README.md lists them all)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from portfolio.env import envbool, envchoice, envdecimal, envint, envlist, envstr, secret_key

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(envstr("VAR_DIR", str(BASE_DIR / "var"))).resolve()
VAR_DIR.mkdir(parents=True, exist_ok=True)
TESTING = "pytest" in sys.modules or envbool("TESTING")

SECRET_KEY = secret_key(VAR_DIR)
# Prometheus: every process of this host (gunicorn workers, Celery pool processes) writes its metrics
# here, before prometheus_client is first imported; /metrics merges them (portfolio/metrics.py).
METRICS_DIR = Path(os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(VAR_DIR / "metrics")))
METRICS_DIR.mkdir(parents=True, exist_ok=True)
# /metrics: with a token, only `Authorization: Bearer <token>`; without one, only from loopback.
METRICS_TOKEN = envstr("METRICS_TOKEN", "")
# OpenTelemetry tracing (portfolio/tracing.py): off unless an OTLP/HTTP collector is named, e.g.
# http://127.0.0.1:4318 (the exporter also reads the other standard OTEL_EXPORTER_OTLP_* variables).
OTEL_EXPORTER_OTLP_ENDPOINT = envstr("OTEL_EXPORTER_OTLP_ENDPOINT", "") or envstr("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
OTEL_SERVICE_NAME = envstr("OTEL_SERVICE_NAME", "chainfolio")
DEBUG = envbool("DEBUG", False)
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", [])
SITE_NAME = envstr("SITE_NAME", "Chainfolio")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "ninja",
    "django_htmx",
    "template_partials",
    "django_celery_beat",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "portfolio",
]

MIDDLEWARE = [
    "portfolio.middleware.RequestMetricsMiddleware",
    "portfolio.tracing.TracingMiddleware",  # removed at start-up unless tracing is on
    "portfolio.middleware.HealthProbeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "portfolio.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "portfolio.middleware.StaffSecondFactorMiddleware",
    "portfolio.middleware.NoStoreMiddleware",
    "portfolio.middleware.SecretQueryMiddleware",
]

ROOT_URLCONF = "portfolio.urls"
WSGI_APPLICATION = "portfolio.wsgi.application"

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
                "portfolio.context_processors.site",
            ],
        },
    }
]

# --------------------------------------------------------------------------- database
DATABASE_URL = envstr("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}")
try:
    _db = dj_database_url.parse(DATABASE_URL, conn_max_age=0)
except Exception as exc:  # dj-database-url raises several types for bad URLs
    raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from None
if _db["ENGINE"] == "django.db.backends.postgresql":
    # Django's built-in psycopg 3 connection pool (persistent connections must stay off with it).
    _db["OPTIONS"] = {
        **_db.get("OPTIONS", {}),
        "pool": {"min_size": envint("DB_POOL_MIN", 1, minimum=0), "max_size": envint("DB_POOL_MAX", 10, minimum=1),
                 # waiting for a free pooled connection fails after this, instead of psycopg's 30 s
                 "timeout": envint("DB_POOL_TIMEOUT", 10, minimum=1)},
        # an unreachable server fails a connection attempt after this many seconds instead of hanging
        "connect_timeout": envint("DB_CONNECT_TIMEOUT", 5, minimum=1),
    }
elif _db["ENGINE"] == "django.db.backends.sqlite3":
    # WAL + IMMEDIATE transactions: the web server and Celery workers share the file without "database is locked".
    _db["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --------------------------------------------------------------------------- auth
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if TESTING:
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "account_login"
# One backend (allauth's, a ModelBackend that also takes an email): no password check bypasses its brakes.
AUTHENTICATION_BACKENDS = ["allauth.account.auth_backends.AuthenticationBackend"]
EMAIL_BACKEND = envstr("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = envstr("DEFAULT_FROM_EMAIL", "chainfolio@localhost")

# django-allauth (65.x): sign-up by email, sign-in by username or email. Sign-up never says whether an
# account exists (a known email gets an "account exists" mail, a new one a verification mail, and the page
# is the same), so sign-up asks no username (one would have to be refused when taken); one is generated.
ACCOUNT_ADAPTER = "portfolio.accounts.AccountAdapter"
ACCOUNT_FORMS = {
    "signup": "portfolio.accounts.SignupForm",
    "login": "portfolio.accounts.LoginForm",
    "reset_password": "portfolio.accounts.ResetPasswordForm",
    "add_email": "portfolio.accounts.AddEmailForm",
}
SIGNUP_OPEN = envbool("SIGNUP_OPEN", True)
ALLAUTH_TRUSTED_PROXY_COUNT = envint("TRUSTED_PROXY_COUNT", 0, minimum=0)  # proxies whose X-Forwarded-For counts
ACCOUNT_LOGIN_METHODS = {"username", "email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_PREVENT_ENUMERATION = True
ACCOUNT_EMAIL_UNKNOWN_ACCOUNTS = False  # no mail to an address nobody registered (a spam vector)
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_SIGNUP_REDIRECT_URL = "wallets"
ACCOUNT_SESSION_REMEMBER = None  # the sign-in form offers "remember me"
ACCOUNT_EMAIL_SUBJECT_PREFIX = f"[{envstr('SITE_NAME', 'Chainfolio')}] "
# Brakes on guessing, per IP and per account ("key" is the username/email typed). Counters live in the
# cache (CACHE_URL): shared by every web process only when that is Redis.
ACCOUNT_RATE_LIMITS = {
    "login": envstr("RATE_LIMIT_LOGIN", "30/m/ip"),
    "login_failed": envstr("RATE_LIMIT_LOGIN_FAILED", "10/m/ip,5/5m/key"),
    "signup": envstr("RATE_LIMIT_SIGNUP", "10/h/ip"),
    "signup_email": envstr("RATE_LIMIT_SIGNUP_EMAIL", "3/h/key"),
    "reset_password": envstr("RATE_LIMIT_PASSWORD_RESET", "5/h/ip,3/h/key"),
    "reset_password_from_key": "20/m/ip",
    "change_password": "5/m/user",
    "manage_email": "10/m/user",
    "reauthenticate": "10/m/user",
    "confirm_email": "1/3m/key",
}
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes", "webauthn"]
MFA_TOTP_ISSUER = envstr("SITE_NAME", "Chainfolio")
# Self-registered accounts cannot sign in before confirming their address, so only operator-made accounts
# (no address row) are unverified here: they must be able to add a second factor too.
MFA_ALLOW_UNVERIFIED_EMAIL = True
MFA_PASSKEY_LOGIN_ENABLED = False  # security keys are a second factor here, not a password replacement
MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN = DEBUG  # browsers allow WebAuthn on http://localhost only
# Staff (and so the admin) must have a second factor before they can use any page but its set-up.
MFA_REQUIRED_FOR_STAFF = envbool("MFA_REQUIRED_FOR_STAFF", False)

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = envbool("SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# Behind HTTPS in production (README, "Production settings"): redirect http:// and send HSTS.
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", False)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]  # probes of a load balancer that speaks plain http
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", False)
if envbool("SECURE_PROXY_SSL_HEADER", False):  # trust X-Forwarded-Proto from the reverse proxy
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Rate-limit counters (sign-in brakes, refresh limits): "locmem://" is per process; use "redis://…" when
# several web processes run.
CACHE_URL = envstr("CACHE_URL", "locmem://")
if CACHE_URL.startswith(("redis://", "rediss://")):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": envstr("CACHE_KEY_PREFIX", "chainfolio"),
        }
    }
elif CACHE_URL == "locmem://":
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
else:
    raise ImproperlyConfigured(f"CACHE_URL must be locmem:// or redis://…, got {CACHE_URL!r}")

LANGUAGE_CODE = "en-us"
TIME_ZONE = envstr("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --------------------------------------------------------------------------- static files
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if (DEBUG or TESTING)
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = True

# --------------------------------------------------------------------------- celery
CELERY_DIR = VAR_DIR / "celery"
# Redis (broker, shared rate limiter): a server that accepts but never answers fails a command after
# REDIS_SOCKET_TIMEOUT seconds instead of hanging a web request or a worker.
REDIS_SOCKET_OPTIONS = {
    "socket_connect_timeout": envint("REDIS_CONNECT_TIMEOUT", 3, minimum=1),
    "socket_timeout": envint("REDIS_SOCKET_TIMEOUT", 5, minimum=1),
}
CELERY_BROKER_URL = envstr("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    # kombu's file-system transport with atomic writes and in-flight claims (portfolio/broker.py: the
    # stock one crashes workers and loses messages under concurrent producers; bench/broker_transports.py).
    CELERY_BROKER_TRANSPORT = "portfolio.broker:Transport"
    for sub in ("queue", "processed", "control", "inflight", "corrupt"):
        (CELERY_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_DIR / "queue"),
        "data_folder_out": str(CELERY_DIR / "queue"),
        "processed_folder": str(CELERY_DIR / "processed"),
        "control_folder": str(CELERY_DIR / "control"),
        "store_processed": False,
        # How often a worker lists the queue folder: the wait between one task's ack and the next
        # one starting. A listing costs microseconds; 0.2 s cost a 1,000-wallet sync ~0.5 s (issue 6).
        "polling_interval": 0.05,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": envint("CELERY_VISIBILITY_TIMEOUT", 900, minimum=60), **REDIS_SOCKET_OPTIONS}
    if envstr("CELERY_REDIS_KEY_PREFIX"):
        # Several deployments (or test runs) sharing one Redis keep their queues apart.
        CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"] = envstr("CELERY_REDIS_KEY_PREFIX")
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True  # a worker killed mid-task leaves the message for another worker
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# Each pool process has its next message at hand when it finishes a task (with acks_late, a multiplier
# of 1 fetches it only after the ack: ~20 ms of broker round trips per task, 7-8% of a steady 1,000-wallet
# sync on 2 cores). A reserved message that is not started is handed back unacknowledged when the worker
# stops. Workers of long tasks only (Procfile.production's history worker) take 1: nothing waits behind them.
CELERY_WORKER_PREFETCH_MULTIPLIER = envint("CELERY_WORKER_PREFETCH_MULTIPLIER", 2, minimum=1)
# Celery's Django fix-up closes the database connections before and after every task and, with the
# PostgreSQL pool in a prefork child, the whole pool: each sync then opened a new session (a server
# process forked and authenticated, its catalog caches cold for every table the task touches; ~8 per
# 1,000-wallet sync). With this it does so only every DB_REUSE_MAX tasks; after each task
# ``celery_signals._return_connections`` hands the connection back to the pool instead, which checks
# it on the next checkout (a server restart costs no task).
CELERY_DB_REUSE_MAX = 200
CELERY_TASK_ALWAYS_EAGER = envbool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Bounded work: soft limit (SoftTimeLimitExceeded inside the task) and hard limit (its process is killed),
# in seconds, per queue; portfolio/celery_signals.py stamps them on each message by its queue.
CELERY_QUEUE_TIME_LIMITS = {
    queue: (
        envint(f"TASK_SOFT_TIME_LIMIT_{queue.upper()}", soft, minimum=1),
        envint(f"TASK_TIME_LIMIT_{queue.upper()}", soft + 60, minimum=2),
    )
    for queue, soft in (("default", 300), ("evm", 600), ("bitcoin", 600), ("solana", 300), ("history", 600))
}
for _q, (_soft, _hard) in CELERY_QUEUE_TIME_LIMITS.items():
    if _hard <= _soft:
        raise ImproperlyConfigured(f"TASK_TIME_LIMIT_{_q.upper()} must be larger than TASK_SOFT_TIME_LIMIT_{_q.upper()}")
# Graceful stop (SIGTERM / Ctrl-C): running tasks get this long to finish, then they are stopped and their
# messages handed back to the broker (late ack), so a stop loses nothing and ends in bounded time.
# `make run`'s honcho kills at 5 s; in production give the service manager's stop timeout a margin over it.
CELERY_WORKER_SOFT_SHUTDOWN_TIMEOUT = float(envint("WORKER_STOP_TIMEOUT_SECONDS", 3, minimum=0))
CELERY_WORKER_ENABLE_SOFT_SHUTDOWN_ON_IDLE = True

# --------------------------------------------------------------------------- app
QUOTE_CURRENCIES = ("USD", "EUR", "GBP", "CHF", "JPY")
DEFAULT_QUOTE_CURRENCY = envchoice("DEFAULT_QUOTE_CURRENCY", "usd", tuple(c.lower() for c in QUOTE_CURRENCIES)).upper()
IPFS_GATEWAY = envstr("IPFS_GATEWAY", "https://ipfs.io/ipfs/")
COINGECKO_API_URL = envstr("COINGECKO_API_URL", "")  # empty: the HTTP price source is off
COINGECKO_API_KEY_ENV = envstr("COINGECKO_API_KEY_ENV", "COINGECKO_API_KEY")
COINGECKO_RATE_PER_S = envdecimal("COINGECKO_RATE_PER_S", "0.5")
PRICE_FRESH_SECONDS = envint("PRICE_FRESH_SECONDS", 300, minimum=0)  # a newer price is not fetched again
PRICE_STALE_AFTER_SECONDS = envint("PRICE_STALE_AFTER_SECONDS", 24 * 3600, minimum=60)  # older: flagged stale
SYNC_FANOUT_SECONDS = envint("SYNC_FANOUT_SECONDS", 60, minimum=5)
SYNC_EVM_GROUP_SIZE = envint("SYNC_EVM_GROUP_SIZE", 250, minimum=1)  # EVM wallets of one chain per fetch task
BACKFILL_ENABLED = envbool("BACKFILL_ENABLED", True)  # rebuild a wallet-chain's past when it is first synced
BACKFILL_DEPTH_DAYS = envint("BACKFILL_DEPTH_DAYS", 365, minimum=1)  # how far back (EVM, Solana; Bitcoin: its first transaction)
SYNC_RETRY_MAX = envint("SYNC_RETRY_MAX", 5, minimum=0)  # retries of a transient failure
SYNC_RETRY_BASE_SECONDS = envint("SYNC_RETRY_BASE_SECONDS", 5, minimum=1)  # first back-off, doubled each time, jittered
SYNC_RETRY_CAP_SECONDS = envint("SYNC_RETRY_CAP_SECONDS", 300, minimum=1)
# A sync item queued or running this long without finishing is stalled: the reaper sends it again
# (SYNC_REAP_REQUEUES times at most), then closes it as failed, so every run ends.
SYNC_STALL_SECONDS = envint("SYNC_STALL_SECONDS", 600, minimum=30)
SYNC_REAP_REQUEUES = envint("SYNC_REAP_REQUEUES", 1, minimum=0)
# A scheduled sync (of WalletChains queued by the fan-out) whose fetch ends within this many
# milliseconds is not marked running first: its WalletChains are written once, with its outcome
# (0: always mark them running as the fetch starts).
SYNC_RUNNING_MARK_AFTER_MS = envint("SYNC_RUNNING_MARK_AFTER_MS", 1000, minimum=0)
# Finished sync runs (and their per-wallet items) are deleted this many days after they finished.
SYNC_RUN_RETENTION_DAYS = envint("SYNC_RUN_RETENTION_DAYS", 14, minimum=1)
SNAPSHOT_INTERVAL_MINUTES = envint("SNAPSHOT_INTERVAL_MINUTES", 60, minimum=1)
# Brakes on greed (README "Limits"): per user, staff may raise them per user in the admin (Profile).
MAX_WALLETS_PER_USER = envint("MAX_WALLETS_PER_USER", 200, minimum=1)
MAX_PORTFOLIOS_PER_USER = envint("MAX_PORTFOLIOS_PER_USER", 20, minimum=1)
REFRESH_MIN_INTERVAL_SECONDS = envint("REFRESH_MIN_INTERVAL_SECONDS", 60, minimum=0)  # per user and scope
DEVNET_STATE_FILE = Path(envstr("DEVNET_STATE_FILE", str(VAR_DIR / "devnet.json")))

# --------------------------------------------------------------------------- logging
LOG_FORMAT = envchoice("LOG_FORMAT", "text", ("text", "json"))
LOG_LEVEL = envchoice("LOG_LEVEL", "info", ("debug", "info", "warning", "error")).upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "portfolio.logging.RedactSecretsFilter"}, "context": {"()": "portfolio.context.ContextFilter"}},
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},  # ids: LOG_FORMAT=json
        "json": {"()": "portfolio.logging.JsonFormatter"},
    },
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": LOG_FORMAT,
            "filters": ["redact", "context"],
        }
    },
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        # Listing a logger drops Django's default handlers for it (console in DEBUG, the runserver access
        # log), which print unredacted: their records reach the root's redacting handler instead.
        "django": {"propagate": True},
        "django.db.backends": {"level": "WARNING"},
        "django.server": {"level": "INFO", "propagate": True},
    },
}

# --------------------------------------------------------------------------- REST API limits
# Requests per minute per personal token and per user (all of a user's tokens and browser session
# together); a full bucket allows that many at once. 0: no limit. Over it: 429 with Retry-After.
API_RATE_PER_MINUTE_TOKEN = envint("API_RATE_PER_MINUTE_TOKEN", 120, minimum=0)
API_RATE_PER_MINUTE_USER = envint("API_RATE_PER_MINUTE_USER", 300, minimum=0)
