"""The wallet page in a real browser: an extended key (a long one, with its used addresses) and an EVM
wallet with value, positions and NFTs, at phone and desktop widths, with no sideways scroll; the copy
button copies; the lists of wallets and portfolios at phone width. Screenshots in var/screenshots/."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from portfolio.models import Asset, Chain, Holding, NftItem, Portfolio, Position, PositionLeg, PricePoint, WalletChain
from portfolio.services.wallets import do_add_wallet
from tests.e2e.test_pages_e2e import DESKTOP, PHONE, sign_in
from tests.fixtures.users import PASSWORD
from tests.portfolio.test_pages import hold
from tests.portfolio.test_wallets import EIP55, ZPUB

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

OVERFLOW = "document.documentElement.scrollWidth - document.documentElement.clientWidth"
WIDEST = """() => [...document.querySelectorAll('body *')]
    .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
    .map(e => e.tagName + '.' + e.className).slice(0, 5)"""


@pytest.fixture
def world(transactional_db):
    from portfolio.models import RpcEndpoint
    from portfolio.seed import seed_chains

    if not Chain.objects.exists():  # a transactional test's flush removes the migration's seed
        seed_chains(Chain, RpcEndpoint, Asset)
    user = get_user_model().objects.create_user("alice", "alice@example.com", PASSWORD)
    now = timezone.now()
    key = do_add_wallet(user, "bitcoin", ZPUB, label="Cold storage")
    wc = key.wallet_chains.select_related("chain").first()
    WalletChain.objects.filter(pk=wc.pk).update(status=WalletChain.OK, last_ok_at=now - timedelta(minutes=2), height=871_234)
    btc = Asset.objects.get(chain=wc.chain, address="")
    PricePoint.objects.create(asset=btc, price=D(60_000), source="coingecko", at=now - timedelta(hours=25))
    PricePoint.objects.create(asset=btc, price=D(63_000), source="coingecko", at=now - timedelta(minutes=4))
    used = {
        "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu": {"path": "0/0", "confirmed": 20_000_000, "unconfirmed": 0, "utxo_count": 1},
        "bc1qnjg0jd8228aq7egyzacy8cys3knf9xvrerkf9g": {"path": "0/1", "confirmed": 5_000_000, "unconfirmed": 0, "utxo_count": 1},
        "bc1qp59yckz4ae5c4efgw2s5wfyvrz0ala7rgvuz8z": {"path": "1/0", "confirmed": 1_234_567, "unconfirmed": 10_000, "utxo_count": 2},
    }
    Holding.objects.create(wallet_chain=wc, asset=btc, amount=26_234_567, unconfirmed=10_000, details={"addresses": used})

    evm = do_add_wallet(user, "evm", EIP55, label="Hot wallet")
    evm.primary_name = "alice.eth"
    evm.save()
    eth_chain = Chain.objects.get(slug="ethereum")
    ewc = WalletChain.objects.get(wallet=evm, chain=eth_chain)
    WalletChain.objects.filter(wallet=evm).update(status=WalletChain.OK, last_ok_at=now - timedelta(minutes=7), height=21_000_000)
    eth = Asset.objects.get(chain=eth_chain, address="")
    usdc = Asset.objects.create(chain=eth_chain, kind="fungible", standard="erc20", address="0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48",
                                symbol="USDC", name="USD Coin", decimals=6)
    hold(ewc, eth, 3_250_000_000_000_000_123)
    hold(ewc, usdc, 1_250_500_000)
    PricePoint.objects.create(asset=eth, price=D(3100), source="oracle:chainlink:0x5f4eC3Df9cbd43714FE2740f5E3616155c5b8419", at=now - timedelta(hours=24, minutes=30))
    PricePoint.objects.create(asset=eth, price=D(3000), source="oracle:chainlink:0x5f4eC3Df9cbd43714FE2740f5E3616155c5b8419", at=now - timedelta(minutes=3))
    PricePoint.objects.create(asset=usdc, price=D(1), source="manual", at=now - timedelta(seconds=20))
    position = Position.objects.create(wallet_chain=ewc, protocol="aave-v3", kind="lending", ref="0xpool", label="Aave v3 Ethereum", health_factor=D("1.87"))
    PositionLeg.objects.create(position=position, asset=usdc, amount=500_000_000, role="supplied")
    PositionLeg.objects.create(position=position, asset=eth, amount=5 * 10**16, role="borrowed")
    punks = Asset.objects.create(chain=eth_chain, kind=Asset.NFT_COLLECTION, standard="erc721", address="0x" + "77" * 20, symbol="PNK", name="Punks")
    for i in range(3):
        NftItem.objects.create(wallet_chain=ewc, collection=punks, token_id=str(i), name=f"Punk #{i}")
    Portfolio.objects.create(owner=user, name="Long term").wallets.set([key])
    Portfolio.objects.create(owner=user, name="Everything").wallets.set([key, evm])
    return {"user": user, "key": key, "evm": evm}


AXE = Path(__file__).resolve().parents[2] / "devnet" / "node_modules" / "axe-core" / "axe.min.js"


def serious_violations(page, within: str = "main") -> list[str]:
    """axe-core's serious and critical findings in the page's main content (the npm package, injected;
    the site's frame, navigation and footer, is checked by the tests of every page)."""
    page.evaluate(AXE.read_text())  # evaluated by the driver: the page's CSP (no inline script) stays on
    result = page.evaluate("within => axe.run({include: [[within]]}, {resultTypes: ['violations']})", within)
    return [f"{v['id']}: {[n['html'][:100] for n in v['nodes']]}" for v in result["violations"]
            if v["impact"] in ("serious", "critical")]


def no_sideways_scroll(page, name):
    overflow = page.evaluate(OVERFLOW)
    assert overflow <= 0, f"{name} scrolls sideways by {overflow}px: {page.evaluate(WIDEST)}"


def test_the_wallet_pages_fit_a_phone(page, live_server, world, screenshot):
    page.set_viewport_size(PHONE)
    sign_in(page, live_server)
    page.goto(live_server.url + reverse("wallet_detail", args=[world["key"].pk]))
    expect(page.get_by_test_id("wallet-address")).to_have_text(ZPUB)
    expect(page.get_by_test_id("derived-address")).to_have_count(3)
    no_sideways_scroll(page, "extended-key wallet")
    box = page.get_by_test_id("wallet-address").bounding_box()
    assert box["x"] + box["width"] <= PHONE["width"]  # the key wraps inside the screen
    screenshot("wallet-key-phone")
    page.goto(live_server.url + reverse("wallet_detail", args=[world["evm"].pk]))
    expect(page.get_by_test_id("wallet-value")).to_contain_text("$")
    no_sideways_scroll(page, "EVM wallet")
    screenshot("wallet-evm-phone")
    for name in ("wallets", "portfolios"):
        page.goto(live_server.url + reverse(name))
        no_sideways_scroll(page, name)
        screenshot(f"{name}-values-phone")


def test_the_wallet_page_on_a_desktop_copies_the_key(page, live_server, world, screenshot):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page.set_viewport_size(DESKTOP)
    sign_in(page, live_server)
    page.goto(live_server.url + reverse("wallet_detail", args=[world["evm"].pk]))
    expect(page.get_by_test_id("wallet-position")).to_contain_text("1.87")
    expect(page.get_by_test_id("wallet-ens")).to_contain_text("alice.eth")
    screenshot("wallet-evm-desktop")
    page.emulate_media(color_scheme="dark")
    screenshot("wallet-evm-desktop-dark")
    page.emulate_media(color_scheme="light")
    page.goto(live_server.url + reverse("wallet_detail", args=[world["key"].pk]))
    copy = page.locator("button[data-copy]")
    expect(copy).to_have_text("Copy key")
    copy.click()
    expect(copy).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == ZPUB
    screenshot("wallet-key-desktop")
    for name in ("wallets", "portfolios"):
        page.goto(live_server.url + reverse(name))
        screenshot(f"{name}-values-desktop")


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_wallet_pages_pass_axe(page, live_server, world, scheme):
    if not AXE.exists():
        pytest.skip(f"no axe-core at {AXE} (npm package in devnet/)")
    page.emulate_media(color_scheme=scheme)
    page.set_viewport_size(DESKTOP)
    sign_in(page, live_server)
    for wallet in ("evm", "key"):
        page.goto(live_server.url + reverse("wallet_detail", args=[world[wallet].pk]))
        assert serious_violations(page) == [], wallet
    for name in ("wallets", "portfolios"):
        page.goto(live_server.url + reverse(name))
        assert serious_violations(page, "main table") == [], name  # the page's own heading: the site's palette
