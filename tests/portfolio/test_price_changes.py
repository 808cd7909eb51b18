"""The 24h change per asset and for the total, from the stored price history (hand-made PricePoints of
each source), and the age shown next to each price's source."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

import pytest
from django.urls import reverse
from django.utils import timezone

from portfolio.holdings import holdings_rows, total_change_24h
from portfolio.models import Asset, FxRate, PricePoint
from tests.portfolio.test_pages import make_wallet

pytestmark = pytest.mark.django_db


def price(asset, value, *, ago, source="coingecko", currency="USD"):
    PricePoint.objects.create(asset=asset, price=D(value), source=source, currency=currency,
                              at=timezone.now() - ago)


@pytest.fixture
def world(owner):
    from tests.portfolio.test_pages import hold

    wallet, wc = make_wallet(owner)
    chain = wc.chain
    eth, _ = Asset.objects.update_or_create(chain=chain, address="", defaults={"kind": Asset.NATIVE, "symbol": "ETH", "name": "Ether", "decimals": 18})
    link = Asset.objects.create(chain=chain, kind=Asset.FUNGIBLE, address="0x" + "44" * 20, symbol="LINK", decimals=18)
    new = Asset.objects.create(chain=chain, kind=Asset.FUNGIBLE, address="0x" + "55" * 20, symbol="NEW", decimals=0)
    hold(wc, eth, 2 * 10**18)
    hold(wc, link, 10 * 10**18)
    hold(wc, new, 7)
    # ETH: coingecko 25 h ago 2000, then 2100 now; LINK: an oracle read 30 h ago 20, a manual point now 15;
    # NEW: priced only since an hour ago (no price 24 h ago).
    price(eth, "2000", ago=timedelta(hours=25))
    price(eth, "2050", ago=timedelta(hours=12))
    price(eth, "2100", ago=timedelta(minutes=3))
    price(link, "20", ago=timedelta(hours=30), source="oracle:chainlink:0x" + "66" * 20)
    price(link, "15", ago=timedelta(seconds=20), source="manual")
    price(new, "1", ago=timedelta(hours=1))
    return {"wallet": wallet, "eth": eth, "link": link, "new": new}


def test_each_asset_changes_against_its_last_price_24_hours_ago(owner, world):
    rows = {r.asset.symbol: r for r in holdings_rows(owner, [world["wallet"].pk], "USD")}
    assert rows["ETH"].change_24h == D("0.05")  # 2000 -> 2100
    assert rows["LINK"].change_24h == D("-0.25")  # oracle 20 -> manual 15
    assert rows["NEW"].change_24h is None  # no price 24 h ago: "—", not 0


def test_the_total_change_covers_the_assets_with_a_price_then(owner, world):
    rows = holdings_rows(owner, [world["wallet"].pk], "USD")
    total = total_change_24h(rows, "USD", D(1), timezone.now())
    # Then: 2 x 2000 + 10 x 20 = 4200; now: 2 x 2100 + 10 x 15 = 4350 (NEW left out of both sides).
    assert (total.value, total.assets, total.missing) == (D(150), 2, 1)
    assert round(total.pct, 10) == D("0.0357142857")  # 150 / 4200


def test_a_price_history_in_euros_uses_the_rate_of_each_moment(owner, world):
    FxRate.objects.create(currency="EUR", rate=D("0.5"), source="manual", at=timezone.now() - timedelta(days=2))
    FxRate.objects.create(currency="EUR", rate=D("1"), source="manual", at=timezone.now() - timedelta(hours=1))
    rows = {r.asset.symbol: r for r in holdings_rows(owner, [world["wallet"].pk], "EUR")}
    # ETH was 2000 USD = 1000 EUR then and is 2100 EUR now.
    assert rows["ETH"].change_24h == D("1.1")


def test_without_any_history_the_total_is_a_dash(owner, world):
    PricePoint.objects.filter(at__lt=timezone.now() - timedelta(hours=2)).delete()
    rows = holdings_rows(owner, [world["wallet"].pk], "USD")
    assert all(r.change_24h is None for r in rows)
    assert total_change_24h(rows, "USD", D(1), timezone.now()).value is None


def test_the_holdings_page_shows_changes_and_the_age_of_each_price(owner_client, world):
    page = owner_client.get(reverse("holdings")).content.decode()
    assert "+5.00%" in page and "-25.00%" in page
    assert "coingecko, <time" in page and "3 min ago" in page
    assert "manual, <time" in page and "just now" in page
    assert 'data-testid="holdings-change-24h"' in page and "+$150.00" in page


def test_the_api_gives_each_change_and_the_total(owner_client, world):
    body = owner_client.get("/api/v1/holdings").json()
    changes = {item["symbol"]: item["change_24h"] for item in body["items"]}
    assert changes == {"ETH": "0.05", "LINK": "-0.25", "NEW": None}
    assert body["change_24h_value"] == "150"
