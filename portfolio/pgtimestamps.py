"""Reading ``timestamptz`` columns at C speed on PostgreSQL when Django's time zone is UTC.

Django registers its own loader for ``timestamptz`` (``psycopg_any.BaseTzLoader``): a Python subclass of
psycopg's pure-Python loader, so every timestamp read parses its text in Python (about 7 us each; a sync
group reads 850 of them, a history page thousands). psycopg's C loader cannot stand in for it: Django
reads the loader's ``timezone`` attribute on every cursor, which the C class has not and cannot be
given. ``UtcTimestampLoader`` is Django's loader with a fast path: the text PostgreSQL writes in a UTC
session (``2026-11-29 12:34:56.123456+00``) is parsed by ``datetime.fromisoformat`` (C), which gives the
same instant with ``timezone.utc`` as its tzinfo, exactly what Django's loader returns. Anything else (an
offset other than zero, a BC date, ``infinity``) falls back to Django's loader unchanged, errors and all.
Installed only when the connection's time zone is UTC (``TIME_ZONE = "UTC"``, the default): other
zones keep Django's loader as it is."""

from __future__ import annotations

from datetime import datetime, timezone


def install() -> None:
    """Make Django's PostgreSQL connections read UTC timestamps with ``UtcTimestampLoader``."""
    try:
        from django.db.backends.postgresql import psycopg_any
    except ImportError:  # no psycopg: nothing to speed up
        return
    if not getattr(psycopg_any, "is_psycopg3", False) or getattr(psycopg_any.register_tzloader, "fast", False):
        return
    django_register = psycopg_any.register_tzloader
    base = psycopg_any.BaseTzLoader

    class UtcTimestampLoader(base):
        timezone = timezone.utc

        def load(self, data):
            try:
                value = datetime.fromisoformat(bytes(data).decode())
            except ValueError:
                return super().load(data)
            if value.tzinfo is not timezone.utc:  # "+00" is read as timezone.utc itself
                return super().load(data)
            return value

    def register_tzloader(tz, context):
        if tz is timezone.utc:
            context.adapters.register_loader("timestamptz", UtcTimestampLoader)
        else:
            django_register(tz, context)

    register_tzloader.fast = True
    psycopg_any.register_tzloader = register_tzloader
    # The adapters template is built once per (USE_TZ, time zone) and copied by each new connection:
    # built before this ran, it holds Django's loader.
    psycopg_any.get_adapters_template.cache_clear()
