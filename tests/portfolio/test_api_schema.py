"""Property test of the REST API against its own OpenAPI schema (schemathesis): whatever path, query and
body values a client sends, to every operation (writes included), with a session or a personal token, the
answer is a declared status with a body matching the schema, and never a server error."""

from __future__ import annotations

from contextlib import contextmanager
from decimal import Decimal

import pytest

schemathesis = pytest.importorskip("schemathesis")

from django.core.wsgi import get_wsgi_application  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis.specs.openapi.checks import positive_data_acceptance  # noqa: E402

from portfolio.fields import UINT256_MAX  # noqa: E402
from portfolio.models import Asset, Chain, Holding, Portfolio, PricePoint, Wallet, WalletChain  # noqa: E402

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner_data(owner, outsider):
    """Something in every table a GET reads, for the owner and for an outsider (whose ids must 404)."""
    from portfolio.services.snapshots import do_snapshot
    from portfolio.sync.run import do_request_sync

    chain = Chain.objects.create(slug="testnet-evm", name="Test EVM", family="evm", chain_id=777_002, network="devnet",
                                 native_symbol="ETH", native_decimals=18, enabled=True)
    native = Asset.objects.create(chain=chain, kind=Asset.NATIVE, address="", symbol="ETH", decimals=18, listed=True)
    huge = Asset.objects.create(chain=chain, kind=Asset.FUNGIBLE, address="0x" + "cd" * 20, symbol="HUGE", decimals=18)
    PricePoint.objects.create(asset=native, price=Decimal("2000.123456789012345678"), source="manual")
    for user, address in ((owner, "0x" + "aa" * 20), (outsider, "0x" + "bb" * 20)):
        wallet = Wallet.objects.create(owner=user, family="evm", address=address, label=user.username)
        wc = WalletChain.objects.create(wallet=wallet, chain=chain, height=7)
        Holding.objects.create(wallet_chain=wc, asset=native, amount=10**18 + 1)
        Holding.objects.create(wallet_chain=wc, asset=huge, amount=UINT256_MAX)
        portfolio = Portfolio.objects.create(owner=user, name="Main")
        portfolio.wallets.add(wallet)
        do_request_sync(user, portfolio=portfolio)
    do_snapshot()


@contextmanager
def keeping_the_test_connection():
    """Django's WSGI app called in-process must not close the test's database connection at each request
    (its transaction holds the test data); Django's test client does the same around its requests."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def run_property_test(owner_client, strategy, max_examples: int) -> None:
    @settings(max_examples=max_examples, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                     HealthCheck.filter_too_much])
    @given(case=strategy)
    def check(case):
        # Every check but "schema-valid data is accepted": an address, a cursor or a wallet id is checked
        # against the chain, this API's own cursors and the database, which JSON Schema cannot express,
        # so a schema-valid request may rightly be a 404, 409 or 422 (all declared and shaped as declared).
        case.call_and_validate(excluded_checks=[positive_data_acceptance])

    with keeping_the_test_connection():
        check()


def api_schema(owner_client):
    schema = schemathesis.openapi.from_dict(owner_client.get("/api/v1/openapi.json").json())
    schema.app = get_wsgi_application()  # calls go through Django in-process, inside this test's transaction
    return schema


@pytest.fixture
def no_limits(settings):
    # Hundreds of calls in seconds: the limits have their own tests.
    settings.API_RATE_PER_MINUTE_TOKEN = settings.API_RATE_PER_MINUTE_USER = 0


def test_every_get_operation_answers_as_its_schema_says(owner_client, owner_data, no_limits):
    session = owner_client.cookies["sessionid"].value
    strategy = api_schema(owner_client).include(method="GET").as_strategy(cookies={"sessionid": session})
    run_property_test(owner_client, strategy, 150)


def test_every_operation_including_writes_answers_as_its_schema_says_with_a_token(owner_client, owner, owner_data,
                                                                                    no_limits):
    from portfolio.models import ApiToken
    from portfolio.services.tokens import do_create_api_token

    _, token = do_create_api_token(owner, "schemathesis", ApiToken.WRITE)
    strategy = api_schema(owner_client).as_strategy(headers={"Authorization": f"Bearer {token}"})
    run_property_test(owner_client, strategy, 250)
