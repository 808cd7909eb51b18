"""Liveness and readiness: no sign-in needed, 503 when a dependency is down, and no internal detail."""

from __future__ import annotations

import json

import pytest
from django.db.backends.base.base import BaseDatabaseWrapper
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_healthz_answers_without_sign_in(client):
    response = client.get(reverse("healthz"))
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]


def test_readyz_is_ok_when_the_database_and_broker_answer(client):
    response = client.get(reverse("readyz"))
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}


@pytest.fixture
def unreachable_broker():
    from portfolio.celery import app

    # The raw values: reading ``conf.broker_write_url`` falls back to the broker URL, and writing that
    # back would pin every later publish to this moment's broker.
    keys = ("broker_url", "broker_write_url", "broker_transport", "broker_transport_options")
    saved = {k: app.conf.get(k) for k in keys}
    app.conf.broker_url = app.conf.broker_write_url = "redis://:hunter2-password@127.0.0.1:1/0"  # nothing listens on port 1
    app.conf.broker_transport = None  # the embedded broker's transport class would ignore the URL
    app.conf.broker_transport_options = {}
    yield
    for k, v in saved.items():
        app.conf[k] = v


def test_readyz_is_503_when_the_broker_is_unreachable_and_says_nothing_more(client, unreachable_broker):
    response = client.get(reverse("readyz"))
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "ok", "broker": "fail"}
    body = response.content.decode()
    for leak in ("hunter2", "127.0.0.1", "redis", "Error", "Traceback", "refused"):
        assert leak not in body


def test_readyz_is_503_when_the_database_fails(client, monkeypatch):
    def broken_cursor(*args, **kwargs):
        raise RuntimeError("could not connect to server at db.internal:5432 password=secret")

    # at the class: the probe runs in a thread of its own, with its own connection
    monkeypatch.setattr(BaseDatabaseWrapper, "cursor", broken_cursor)
    response = client.get(reverse("readyz"))
    assert response.status_code == 503
    assert json.loads(response.content)["database"] == "fail"
    assert b"db.internal" not in response.content and b"secret" not in response.content


@pytest.mark.parametrize("name", ["healthz", "readyz"])
def test_probes_are_get_only(client, name):
    assert client.post(reverse(name)).status_code == 405
