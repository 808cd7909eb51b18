"""Prices: oracle quotes from a sync, the CoinGecko-compatible API (local fake), manual prices, source order, FX."""

from datetime import timedelta
from decimal import Decimal as D

import pytest
from django.utils import timezone

from chains.base import AssetRef, PriceQuote
from portfolio.models import Asset, Chain, FxRate, Holding, PricePoint, Wallet, WalletChain
from portfolio.pricing.coingecko import CoinGeckoClient, TtlCache
from portfolio.services.prices import (
    do_import_price_history,
    do_refresh_fx,
    do_refresh_prices,
    latest_fx_rates,
    latest_prices,
    set_manual_price,
    store_quotes,
)
from tests.fakes.coingecko import FakeCoinGecko

USDC = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"


class NoWait:
    def acquire(self, key, rate_per_s):
        pass


def client_for(fake, **kw):
    return CoinGeckoClient(fake.url, limiter=NoWait(), cache=TtlCache(ttl_s=0), **kw)


@pytest.fixture
def ethereum(db):
    return Chain.objects.get(slug="ethereum")


@pytest.fixture
def eth(ethereum):
    return Asset.objects.get(chain=ethereum, address="")


@pytest.fixture
def usdc(ethereum):
    return Asset.objects.create(chain=ethereum, kind="fungible", standard="erc20", address=USDC, symbol="USDC", decimals=6)


@pytest.fixture
def holdings(owner, ethereum, eth, usdc):
    wallet = Wallet.objects.create(owner=owner, family="evm", address="0x" + "11" * 20)
    wc = WalletChain.objects.create(wallet=wallet, chain=ethereum)
    Holding.objects.create(wallet_chain=wc, asset=eth, amount=2 * 10**18)
    Holding.objects.create(wallet_chain=wc, asset=usdc, amount=5_000_000)
    return wc


def test_it_stores_oracle_quotes_read_during_a_sync(ethereum, eth):
    quote = PriceQuote(asset=AssetRef("native", None, "ETH", "Ether", 18), price=D("2500.00000001"), currency="USD",
                       source="chainlink:0xFeed", at_height=7)
    assert store_quotes(ethereum, [quote]) == 1
    price = latest_prices([eth.id])[eth.id]
    assert (price.usd, price.source, price.source_name, price.stale) == (D("2500.00000001"), "oracle:chainlink:0xFeed", "oracle", False)


def test_it_fetches_prices_of_held_assets_by_coin_id_and_by_contract(holdings, eth, usdc):
    with FakeCoinGecko(prices={"ethereum": "2500.123456789012345678"}, token_prices={"ethereum": {USDC: "0.9998"}}, api_key="k") as cg:
        report = do_refresh_prices(client=client_for(cg, api_key="sekret"))
        paths = [r[0] for r in cg.requests]
        assert cg.requests[0][2]["x-cg-demo-api-key"] == "sekret"
    assert report.stored == 2 and not report.errors
    assert sorted(paths) == ["/api/v3/simple/price", "/api/v3/simple/token_price/ethereum"]
    prices = latest_prices([eth.id, usdc.id])
    # Exact to 18 places: the JSON number never went through float.
    assert prices[eth.id].usd == D("2500.123456789012345678")
    # No stablecoin peg is assumed: USDC is priced like anything else.
    assert prices[usdc.id].usd == D("0.9998") and prices[usdc.id].source == "coingecko"


def test_it_does_not_ask_again_for_assets_with_a_fresh_price(holdings):
    with FakeCoinGecko(prices={"ethereum": "2500"}, token_prices={"ethereum": {USDC: "1"}}) as cg:
        client = client_for(cg)
        do_refresh_prices(client=client)
        first = len(cg.requests)
        report = do_refresh_prices(client=client)
        assert len(cg.requests) == first
    assert report.skipped_fresh == 2 and report.stored == 0


def test_a_fresh_oracle_price_saves_the_http_request_and_a_stale_one_does_not(holdings, ethereum, eth):
    quote = PriceQuote(asset=eth.to_ref(), price=D("2400"), currency="USD", source="chainlink:0xFeed")
    store_quotes(ethereum, [quote], at=timezone.now() - timedelta(days=2))
    with FakeCoinGecko(prices={"ethereum": "2500"}, token_prices={"ethereum": {USDC: "1"}}) as cg:
        do_refresh_prices(client=client_for(cg))
    # The oracle price is two days old (stale): CoinGecko's is used.
    assert latest_prices([eth.id])[eth.id].source_name == "coingecko"
    store_quotes(ethereum, [quote])
    with FakeCoinGecko(prices={"ethereum": "2500"}) as cg:
        report = do_refresh_prices([eth.id], client=client_for(cg))
        assert cg.requests == []
    assert report.skipped_fresh == 1
    assert latest_prices([eth.id])[eth.id].usd == D("2400")


def test_it_stops_at_a_429_and_says_so(holdings):
    with FakeCoinGecko(prices={"ethereum": "2500"}) as cg:
        cg.rate_limited = True
        report = do_refresh_prices(client=client_for(cg))
    assert report.rate_limited and report.retry_after == 30.0 and report.stored == 0
    assert PricePoint.objects.count() == 0


def test_it_is_off_without_an_api_url(holdings, settings):
    settings.COINGECKO_API_URL = ""
    assert do_refresh_prices().asked == 0


def test_it_reads_the_api_url_and_key_from_settings(holdings, settings, monkeypatch):
    monkeypatch.setenv("MY_CG_KEY", "k-123")
    with FakeCoinGecko(prices={"ethereum": "2500"}, token_prices={"ethereum": {USDC: "1"}}) as cg:
        settings.COINGECKO_API_URL, settings.COINGECKO_API_KEY_ENV, settings.COINGECKO_RATE_PER_S = cg.url, "MY_CG_KEY", 1000
        report = do_refresh_prices()
        assert {r[2].get("x-cg-demo-api-key") for r in cg.requests} == {"k-123"}
    assert report.stored == 2


def test_the_admin_set_order_decides_which_source_wins(ethereum, eth):
    store_quotes(ethereum, [PriceQuote(asset=eth.to_ref(), price=D("2400"), currency="USD", source="chainlink:0xFeed")])
    set_manual_price(eth, D("2600"))
    assert latest_prices([eth.id])[eth.id].usd == D("2400")  # default: oracle, coingecko, manual
    eth.price_sources = ["manual", "oracle"]
    eth.save()
    assert latest_prices([eth.id])[eth.id].usd == D("2600")


def test_an_asset_without_any_price_is_unpriced_not_zero(usdc):
    assert latest_prices([usdc.id]) == {}


def test_a_manual_price_in_euros_is_converted_at_the_current_rate(eth):
    FxRate.objects.create(currency="EUR", rate=D("0.8"), source="manual")
    set_manual_price(eth, D("2000"), currency="EUR")
    # 2000 EUR / 0.8 EUR per USD = 2500 USD
    assert latest_prices([eth.id])[eth.id].usd == D("2500")


def test_it_stores_fx_rates_from_exchange_rates(db):
    with FakeCoinGecko() as cg:
        assert do_refresh_fx(client=client_for(cg)) == 4
    rates = latest_fx_rates()
    # /exchange_rates quotes per BTC: EUR per USD = 54000 / 60000 = 0.9; JPY = 9,000,000 / 60,000 = 150.
    assert rates["EUR"] == D("0.9") and rates["JPY"] == D("150") and rates["GBP"] == D("0.8")


def test_it_imports_price_history(eth):
    with FakeCoinGecko(charts={"ethereum": [(1_700_000_000_000, "2000.5"), (1_700_003_600_000, "2001.25")]}) as cg:
        client = client_for(cg)
        assert do_import_price_history(eth, days=1, client=client) == 2
        assert do_import_price_history(eth, days=1, client=client) == 0
    assert sorted(PricePoint.objects.values_list("price", flat=True)) == [D("2000.5"), D("2001.25")]


def test_the_client_caches_answers_and_takes_a_rate_limit_token_per_request(db):
    class Recording:
        def __init__(self):
            self.calls = []

        def acquire(self, key, rate_per_s):
            self.calls.append((key, rate_per_s))

    limiter = Recording()
    with FakeCoinGecko(prices={"ethereum": "2500", "bitcoin": "60000"}) as cg:
        client = CoinGeckoClient(cg.url, limiter=limiter, cache=TtlCache(ttl_s=60), rate_per_s=0.5)
        assert client.simple_price(["ethereum", "bitcoin"]) == {"ethereum": D("2500"), "bitcoin": D("60000")}
        assert client.simple_price(["bitcoin", "ethereum"]) == {"ethereum": D("2500"), "bitcoin": D("60000")}
        assert len(cg.requests) == 1
    assert limiter.calls == [("coingecko", 0.5)]


def test_a_stored_price_s_kind_is_the_registered_source_its_prefix_belongs_to(eth):
    """PricePoint.kind (computed by the database, indexed for latest_prices) agrees with the registry:
    every stored prefix of every source, and a source no registered one claims."""
    from portfolio.pricing.registry import SOURCES, get_source, source_name_of

    stored = {f"{prefix}feed-1": name for name in SOURCES for prefix in get_source(name).stored_prefixes}
    stored["someone-else"] = ""
    for source in stored:
        PricePoint.objects.create(asset=eth, price=D(1), currency="USD", source=source)
    kinds = dict(PricePoint.objects.filter(source__in=stored).values_list("source", "kind"))
    assert kinds == stored == {s: source_name_of(s) or "" for s in stored}
