"""Health endpoints under injected faults: a Redis that accepts but never answers, a database that hangs or
is down while the caller carries a session cookie. Each probe answers in bounded time, never a 500."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from django.db import OperationalError
from django.db.backends.base.base import BaseDatabaseWrapper
from django.urls import reverse

pytestmark = pytest.mark.django_db(transaction=True)
BOUND_S = 6.0


@pytest.fixture
def silent_redis():
    """A TCP server that accepts connections and never answers (a hung Redis)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    threading.Thread(target=accept, daemon=True).start()
    yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    stop.set()
    for s in held:
        s.close()
    listener.close()


@pytest.fixture
def broker_at():
    from portfolio.celery import app

    saved = {k: app.conf.get(k) for k in ("broker_url", "broker_write_url", "broker_transport", "broker_transport_options")}

    def point(url: str) -> None:
        from django.conf import settings

        app.conf.broker_url = app.conf.broker_write_url = url
        app.conf.broker_transport = None
        app.conf.broker_transport_options = dict(settings.REDIS_SOCKET_OPTIONS)

    yield point
    for k, v in saved.items():
        app.conf[k] = v


def _timed_get(client, name):
    started = time.monotonic()
    response = client.get(reverse(name))
    return response, time.monotonic() - started


def test_readyz_does_not_hang_when_redis_accepts_but_never_answers(client, silent_redis, broker_at):
    broker_at(silent_redis)
    response, took = _timed_get(client, "readyz")
    assert took < BOUND_S
    assert response.status_code == 503 and response.json()["broker"] == "fail"


@pytest.fixture
def database_down(monkeypatch):
    """Every new database use fails after hanging a while, as when the server is unreachable."""
    def hang_then_fail(self):
        time.sleep(20 if threading.current_thread() is not threading.main_thread() else 0)
        raise OperationalError("could not connect to server: Connection timed out")

    def down():
        monkeypatch.setattr(BaseDatabaseWrapper, "ensure_connection", hang_then_fail)
        from django.db import connections

        for conn in connections.all():
            conn.close()  # the test's own open connection must not hide the outage
    return down


@pytest.mark.parametrize("name,status", [("healthz", 200), ("readyz", 503)])
def test_probes_with_a_session_cookie_answer_in_bounded_time_during_a_database_outage(client, owner, database_down, name, status):
    client.force_login(owner)
    database_down()
    response, took = _timed_get(client, name)
    assert took < BOUND_S
    assert response.status_code == status
    if name == "readyz":
        assert response.json() == {"status": "unavailable", "database": "fail", "broker": "ok"}
