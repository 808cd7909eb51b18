"""Shared fixtures: one devnet per chain for the whole session, and explicit users."""

pytest_plugins = [
    "tests.fixtures.evm",
    "tests.fixtures.bitcoin",
    "tests.fixtures.solana",
    "tests.fixtures.users",
    "tests.fixtures.celery",
    "tests.fixtures.proxy",
]
