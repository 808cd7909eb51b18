"""Oracle prices end to end: the EVM adapter reads the devnet's aggregator feeds in its Multicall batch,
store_quotes stores them, and the "oracle" source serves exactly the scenario's prices."""

from decimal import Decimal as D

import pytest

from chains.base import FetchRequest
from chains.registry import adapter_for
from portfolio.models import Asset, Chain
from portfolio.services.prices import latest_prices, store_quotes

pytestmark = pytest.mark.devnet


def test_devnet_oracle_prices_are_stored_and_served(db, evm_devnet, evm_chain_config, evm_endpoints, evm_known_assets):
    chain = Chain.objects.get(slug="anvil")
    native, _ = Asset.objects.get_or_create(chain=chain, address="", defaults={"kind": "native", "symbol": "ETH", "decimals": 18})
    tokens = {}
    for a in evm_devnet.scenario["assets"]:
        if a["kind"] == "fungible" and a["listed"]:
            tokens[a["address"]] = Asset.objects.create(chain=chain, kind="fungible", standard="erc20", address=a["address"],
                                                        symbol=a["symbol"], decimals=a["decimals"], oracle_address=a["oracle"] or "")
    wallet = evm_devnet.wallet("Alice")
    adapter = adapter_for(evm_chain_config, evm_endpoints)
    from chains.base import WalletRef

    result = adapter.fetch(FetchRequest(wallets=(WalletRef(wallet["address"]),), known_assets=evm_known_assets,
                                        include_nfts=False, include_positions=False))
    assert result.prices, "the adapter returned no oracle quotes"
    assert store_quotes(chain, result.prices) == len(result.prices)
    prices = latest_prices([native.id, *[t.id for t in tokens.values()]])
    expected = evm_devnet.scenario["prices"]
    assert prices[native.id].usd == D(expected["native"]) and prices[native.id].source_name == "oracle"
    for address, asset in tokens.items():
        if address in expected:
            assert prices[asset.id].usd == D(expected[address]), asset.symbol
        else:
            assert asset.id not in prices  # no feed, no price: unpriced, not pegged
