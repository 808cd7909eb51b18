"""gunicorn settings for `make run` and production, from environment variables (README: "Production")."""

import gc
import os


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"{name} must be an integer, got {raw!r}") from None
    if value < 1:
        raise SystemExit(f"{name} must be at least 1, got {value}")
    return value


wsgi_app = "portfolio.wsgi:application"
bind = os.environ.get("WEB_BIND") or f"127.0.0.1:{os.environ.get('PORT') or os.environ.get('WEB_PORT') or '8000'}"
# Threads serve the many small, I/O-bound page and API requests; processes spread CPU over cores.
worker_class = "gthread"
workers = _int("WEB_WORKERS", 2)
threads = _int("WEB_THREADS", 4)
timeout = _int("WEB_TIMEOUT", 30)  # a request stuck longer than this gets its worker restarted
graceful_timeout = _int("WEB_GRACEFUL_TIMEOUT", 4)  # SIGTERM: finish requests in flight this long (honcho kills at 5 s)
keepalive = _int("WEB_KEEPALIVE", 5)
# Django is imported once in the master, before the workers fork (faster start and restart, shared memory).
preload_app = True
max_requests = _int("WEB_MAX_REQUESTS", 5000)  # recycle workers now and then (bounded memory over weeks)
max_requests_jitter = max_requests // 10
# Logs go through Django's logging (one format, secrets redacted); gunicorn's own error log to stdout.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# Metrics of every worker process go to one folder (portfolio/settings.py uses the same default), emptied
# when the server starts so counters of an earlier run do not linger.
_var = os.environ.get("VAR_DIR") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "var")
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", os.path.join(os.path.abspath(_var), "metrics"))


def on_starting(server):
    folder = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(folder, exist_ok=True)
    for name in os.listdir(folder):
        if name.endswith(".db") and not name.startswith("counter_") and not name.startswith("histogram_"):
            os.unlink(os.path.join(folder, name))  # live gauges of dead processes; counters stay cumulative


def when_ready(server):
    """The master has loaded Django and the app (preload_app): move that startup heap out of the cyclic
    collector's sight before the workers fork (as the Celery pool does, portfolio/celery_signals.py). A
    holdings page allocates tens of thousands of objects (2,000 priced rows); each collection they set
    off walked the whole startup heap again (~10% of the page's CPU). Cycles made later are still
    collected, and the frozen pages are not written to, so forked workers keep sharing them."""
    gc.collect()
    gc.freeze()


def child_exit(server, worker):
    """A gunicorn worker exited: drop its live-process metric files (prometheus_client multiprocess mode)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
