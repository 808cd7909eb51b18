"""Amounts and prices round-trip exactly through the database (SQLite and PostgreSQL)."""

from decimal import Decimal

import pytest

from portfolio.fields import UINT256_MAX
from portfolio.models import Asset, Chain, Holding, PricePoint, Wallet, WalletChain


@pytest.fixture
def wallet_chain(owner):
    chain = Chain.objects.get(slug="ethereum")
    wallet = Wallet.objects.create(owner=owner, family="evm", address="0x" + "ab" * 20)
    return WalletChain.objects.create(wallet=wallet, chain=chain)


@pytest.mark.parametrize("amount", [0, 1, 10**18 + 1, 2**128 + 7, UINT256_MAX])
def test_it_round_trips_uint256_amounts(wallet_chain, amount):
    asset = Asset.objects.create(chain=wallet_chain.chain, kind="fungible", address="0x" + "cd" * 20, symbol="T", decimals=18)
    Holding.objects.create(wallet_chain=wallet_chain, asset=asset, amount=amount)
    stored = Holding.objects.get(wallet_chain=wallet_chain, asset=asset)
    assert stored.amount == amount
    assert isinstance(stored.amount, int)


def test_it_filters_on_exact_amounts(wallet_chain):
    asset = Asset.objects.create(chain=wallet_chain.chain, kind="fungible", address="0x" + "ef" * 20, symbol="T", decimals=18)
    Holding.objects.create(wallet_chain=wallet_chain, asset=asset, amount=UINT256_MAX)
    assert Holding.objects.filter(amount=UINT256_MAX).count() == 1
    assert Holding.objects.filter(amount=UINT256_MAX - 1).count() == 0


def test_it_keeps_prices_exact_beyond_float_precision(wallet_chain):
    asset = Asset.objects.get(chain=wallet_chain.chain, address="")
    price = Decimal("123456789012345678901.123456789012345678")
    PricePoint.objects.create(asset=asset, price=price, source="manual")
    assert PricePoint.objects.get(asset=asset).price == price


def test_it_refuses_float_amounts(wallet_chain):
    from django.core.exceptions import ValidationError

    asset = Asset.objects.get(chain=wallet_chain.chain, address="")
    with pytest.raises(ValidationError):
        Holding.objects.create(wallet_chain=wallet_chain, asset=asset, amount=1.5)
