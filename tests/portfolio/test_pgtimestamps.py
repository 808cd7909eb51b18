"""Timestamps read from PostgreSQL through ``pgtimestamps``' loader are exactly what Django's own loader
returns: the same instant, ``timezone.utc`` as tzinfo, and the same error for what Django cannot hold."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from django.db import DataError, connection
from django.db.backends.postgresql import psycopg_any

from portfolio.models import WalletChain
from tests.portfolio.test_sync_writes import _wallet_chains

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("the loader is psycopg's (SQLite returns texts Django parses itself)")


TEXTS = ["2026-11-29 12:34:56.123456+00", "2026-11-29 12:34:56+00", "2026-11-29 12:34:56.5+00", "0001-01-01 00:00:00+00",
         "9999-12-31 23:59:59.999999+00", "2026-03-29 01:30:00+01", "1970-01-01 00:00:00-05:30", "2026-11-29 12:34:56.000001+00"]


def _read(cursor, texts: list[str]) -> list[datetime]:
    cursor.execute("SELECT t::timestamptz FROM unnest(%s::text[]) WITH ORDINALITY AS u (t, n) ORDER BY n", [texts])
    return [row[0] for row in cursor.fetchall()]


def test_timestamps_read_are_exactly_those_of_djangos_loader():
    connection.ensure_connection()
    loader = connection.connection.adapters.get_loader(psycopg_any.adapters.types["timestamptz"].oid, 0)
    assert loader.__name__ == "UtcTimestampLoader" and loader.timezone is timezone.utc
    with connection.cursor() as cursor:
        fast = _read(cursor, TEXTS)
    with connection.cursor() as cursor:
        # Django's own loader, on this cursor only
        cursor.cursor.adapters.register_loader("timestamptz", type("DjangoUtc", (psycopg_any.BaseTzLoader,), {"timezone": timezone.utc}))
        django = _read(cursor, TEXTS)
    assert fast == django
    assert [d.isoformat() for d in fast] == [d.isoformat() for d in django]
    assert all(d.tzinfo is timezone.utc for d in fast + django)
    assert fast[0] == datetime(2026, 11, 29, 12, 34, 56, 123456, tzinfo=timezone.utc)
    assert fast[6] == datetime(1970, 1, 1, 5, 30, tzinfo=timezone.utc)


@pytest.mark.parametrize("text", ["infinity", "0044-03-15 12:00:00+00 BC"])
def test_what_django_cannot_hold_fails_as_with_djangos_loader(text):
    with connection.cursor() as cursor, pytest.raises(DataError):
        _read(cursor, [text])


def test_model_timestamps_round_trip(owner):
    (wc,) = _wallet_chains(owner, 1)
    at = datetime(2026, 11, 29, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-8)))
    WalletChain.objects.filter(id=wc.id).update(last_ok_at=at, first_ok_at=at - timedelta(days=400))
    stored = WalletChain.objects.values_list("last_ok_at", "first_ok_at").get(id=wc.id)
    assert stored == (at, at - timedelta(days=400))
    assert stored[0].tzinfo is timezone.utc and stored[0].hour == 7
