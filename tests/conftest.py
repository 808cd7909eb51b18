"""Shared fixtures: one devnet per chain for the whole session, and explicit users."""

pytest_plugins = [
    "tests.fixtures.evm",
    "tests.fixtures.bitcoin",
    "tests.fixtures.solana",
    "tests.fixtures.users",
    "tests.fixtures.celery",
    "tests.fixtures.proxy",
]


import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    """Sign-in brakes and refresh limits count in the cache: each test starts with none spent."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture(autouse=True)
def _no_backfills_unless_asked(settings):
    """A first sync starts a backfill (portfolio.history); tests that want one turn it back on."""
    settings.BACKFILL_ENABLED = False
