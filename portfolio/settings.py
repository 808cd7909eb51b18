"""Settings, read from environment variables (README.md lists them all)."""

from __future__ import annotations

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
    "portfolio",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "portfolio.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
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
        "pool": {"min_size": envint("DB_POOL_MIN", 1, minimum=0), "max_size": envint("DB_POOL_MAX", 10, minimum=1)},
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
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"
EMAIL_BACKEND = envstr("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = envstr("DEFAULT_FROM_EMAIL", "chainfolio@localhost")

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = envbool("SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

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
CELERY_BROKER_URL = envstr("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("queue", "processed", "control"):
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
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": envint("CELERY_VISIBILITY_TIMEOUT", 900, minimum=60)}
    if envstr("CELERY_REDIS_KEY_PREFIX"):
        # Several deployments (or test runs) sharing one Redis keep their queues apart.
        CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"] = envstr("CELERY_REDIS_KEY_PREFIX")
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True  # a worker killed mid-task leaves the message for another worker
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = envbool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

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
SYNC_RETRY_MAX = envint("SYNC_RETRY_MAX", 5, minimum=0)  # retries of a transient failure
SYNC_RETRY_BASE_SECONDS = envint("SYNC_RETRY_BASE_SECONDS", 5, minimum=1)  # first back-off, doubled each time, jittered
SYNC_RETRY_CAP_SECONDS = envint("SYNC_RETRY_CAP_SECONDS", 300, minimum=1)
# A sync item queued or running this long without finishing is stalled: the reaper sends it again
# (SYNC_REAP_REQUEUES times at most), then closes it as failed, so every run ends.
SYNC_STALL_SECONDS = envint("SYNC_STALL_SECONDS", 600, minimum=30)
SYNC_REAP_REQUEUES = envint("SYNC_REAP_REQUEUES", 1, minimum=0)
SNAPSHOT_INTERVAL_MINUTES = envint("SNAPSHOT_INTERVAL_MINUTES", 60, minimum=1)
DEVNET_STATE_FILE = Path(envstr("DEVNET_STATE_FILE", str(VAR_DIR / "devnet.json")))

# --------------------------------------------------------------------------- logging
LOG_FORMAT = envchoice("LOG_FORMAT", "text", ("text", "json"))
LOG_LEVEL = envchoice("LOG_LEVEL", "info", ("debug", "info", "warning", "error")).upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "portfolio.logging.RedactSecretsFilter"}},
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {"()": "portfolio.logging.JsonFormatter"},
    },
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": LOG_FORMAT,
            "filters": ["redact"],
        }
    },
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --------------------------------------------------------------------------- REST API limits
# Requests per minute per personal token and per user (all of a user's tokens and browser session
# together); a full bucket allows that many at once. 0: no limit. Over it: 429 with Retry-After.
API_RATE_PER_MINUTE_TOKEN = envint("API_RATE_PER_MINUTE_TOKEN", 120, minimum=0)
API_RATE_PER_MINUTE_USER = envint("API_RATE_PER_MINUTE_USER", 300, minimum=0)
