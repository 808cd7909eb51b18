"""A user in a real browser: signs in, reads the dashboard, filters holdings (htmx, no reload), exports CSV,
opens the NFT gallery, deletes a wallet; hostile on-chain names stay text. Screenshots for desktop and phone.

Data is written to the database directly (the refresh/progress flow against devnets and a Celery worker
is covered by the sync helper's tests)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from playwright.sync_api import expect

from portfolio.models import Asset, NftItem, Wallet
from tests.fixtures.users import PASSWORD
from tests.portfolio.test_pages import XSS, hold, make_wallet

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1360, "height": 900}


@pytest.fixture
def world(transactional_db):
    from portfolio.models import Chain, RpcEndpoint
    from portfolio.seed import seed_chains

    if not Chain.objects.exists():  # a transactional test's flush removes the migration's seed
        seed_chains(Chain, RpcEndpoint, Asset)
    user = get_user_model().objects.create_user("alice", "alice@example.com", PASSWORD, is_staff=True)
    wallet, wc = make_wallet(user, label="Hot wallet")
    chain = wc.chain
    native, _ = Asset.objects.update_or_create(
        chain=chain, address="", defaults={"kind": Asset.NATIVE, "symbol": "ETH", "name": "Ether", "decimals": 18}
    )
    usdc = Asset.objects.create(chain=chain, kind=Asset.FUNGIBLE, address="0x" + "11" * 20, symbol="USDC", name="USD Coin", decimals=6)
    dai = Asset.objects.create(chain=chain, kind=Asset.FUNGIBLE, address="0x" + "12" * 20, symbol="DAI", name="Dai Stablecoin", decimals=18)
    evil = Asset.objects.create(chain=chain, kind=Asset.FUNGIBLE, address="0x" + "22" * 20, symbol="EVIL", name=XSS, decimals=0)
    spam = Asset.objects.create(chain=chain, kind=Asset.FUNGIBLE, address="0x" + "33" * 20, symbol="FREE", name="Visit scam.example", decimals=0, is_spam=True)
    hold(wc, native, 3_250_000_000_000_000_000, price="2000")
    hold(wc, usdc, 1_250_500_000, price="1")
    hold(wc, dai, 3 * 10**15, price="1")
    hold(wc, evil, 5)
    hold(wc, spam, 1000)
    wallet2, wc2 = make_wallet(user, label="Savings", chain_slug=_other_chain_slug(chain), address=_other_address(chain))
    native2 = Asset.objects.filter(chain=wc2.chain, address="").first()
    if native2:
        hold(wc2, native2, 12 * 10 ** native2.decimals, price="150")
    coll = Asset.objects.create(chain=chain, kind=Asset.NFT_COLLECTION, address="0x" + "44" * 20, symbol="APE", name="Apes", standard="erc721")
    NftItem.objects.create(wallet_chain=wc, collection=coll, token_id="1", name=XSS, image_url="data:image/svg+xml;base64,PHN2Zz4=")
    NftItem.objects.create(wallet_chain=wc, collection=coll, token_id="2", name="Ape #2")
    return {"user": user, "wallet": wallet, "wallet2": wallet2}


def _other_chain_slug(chain):
    from portfolio.models import Chain

    other = Chain.objects.exclude(family=chain.family).filter(family="solana").first() or Chain.objects.exclude(pk=chain.pk).first()
    return other.slug


def _other_address(chain):
    return "So1ana" + "1" * 38


def sign_in(page, live_server):
    page.goto(live_server.url + reverse("login"))
    page.fill("input[name=login]", "alice")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.get_by_test_id("performance")).to_be_visible()


def test_a_user_reads_filters_exports_and_deletes(page, live_server, world, screenshot, tmp_path):
    page.set_viewport_size(DESKTOP)
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    sign_in(page, live_server)
    expect(page.get_by_test_id("net-worth")).to_contain_text("$")
    screenshot("dashboard-desktop")

    # Range switch: htmx swaps the partial and pushes the URL.
    page.get_by_role("link", name="7D").click()
    page.wait_for_url("**range=7d")
    expect(page.locator('#performance [aria-current="true"]')).to_have_text("7D")

    page.get_by_role("link", name="Holdings").first.click()
    table = page.get_by_test_id("holdings-table")
    expect(table).to_contain_text("USDC")
    expect(table).to_contain_text(XSS)  # shown as text
    expect(table).not_to_contain_text("FREE")  # spam hidden by default
    screenshot("holdings-desktop")

    # Search without a reload: htmx swaps the table and pushes the filter into the URL.
    page.evaluate("window.__sameDocument = true")
    page.fill("#holdings-q", "usd")
    expect(page.get_by_test_id("holding-row")).to_have_count(1)
    assert page.evaluate("window.__sameDocument") is True
    assert "q=usd" in page.url

    # A row's wallets and blocks, through its plain link (the no-JavaScript path).
    page.goto(live_server.url + page.get_by_test_id("holding-expand").first.get_attribute("href"))
    expect(page.get_by_test_id("holding-wallets").first).to_contain_text("block 1,234,567")
    page.go_back()

    with page.expect_download() as download:
        page.get_by_test_id("csv-export").click()
    text = download.value.path().read_text()
    assert "USDC" in text and "1250.5" in text and "ETH" not in text.split("\n", 1)[1]

    page.get_by_role("link", name="NFTs").first.click()
    gallery = page.get_by_test_id("nft-gallery")
    expect(gallery).to_contain_text(XSS)
    expect(gallery.locator("img")).to_have_count(0)  # an SVG data: URL never renders
    screenshot("nfts-desktop")

    page.get_by_role("link", name="Positions").first.click()
    expect(page.get_by_test_id("positions-empty")).to_be_visible()
    page.goto(live_server.url + reverse("settings"))
    screenshot("settings-desktop")

    page.goto(live_server.url + reverse("wallet_delete", args=[world["wallet2"].pk]))
    page.locator("main form button[type=submit]").last.click()
    page.wait_for_load_state()
    assert not Wallet.objects.filter(pk=world["wallet2"].pk).exists()
    assert dialogs == []


def test_pages_fit_a_phone(page, live_server, world, screenshot):
    page.set_viewport_size(PHONE)
    sign_in(page, live_server)
    for name, url in [("dashboard", "dashboard"), ("holdings", "holdings"), ("nfts", "nfts"), ("settings", "settings")]:
        page.goto(live_server.url + reverse(url))
        # Nothing but tables (which scroll inside their box) may be wider than the screen.
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        widest = page.evaluate("""() => [...document.querySelectorAll('body *')]
            .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
            .map(e => e.tagName + '.' + e.className + '#' + (e.dataset.testid || '')).slice(0, 5)""")
        assert overflow <= 0, f"{name} scrolls sideways by {overflow}px: {widest}"
        screenshot(f"{name}-phone")


def test_empty_account_and_sign_in_pages(page, live_server, transactional_db, screenshot):
    page.set_viewport_size(DESKTOP)
    page.goto(live_server.url + reverse("login"))
    screenshot("login-desktop")
    get_user_model().objects.create_user("bob", "bob@example.com", PASSWORD)
    page.fill("input[name=login]", "bob")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.get_by_test_id("onboarding")).to_be_visible()
    screenshot("onboarding-desktop")
