"""A user in a real browser against the three devnets and a real Celery worker: adds one wallet of each
family through the Wallets form, presses Refresh, watches the progress fragment finish, then reads the
synced holdings (the scenario's amounts), the chart, the CSV export and the NFT gallery, and deletes a wallet.

The live server, the worker and this test share one database (a file on SQLite, the test database on
PostgreSQL: see tests/fixtures/celery.py), so the test is transactional."""

from __future__ import annotations

import csv
import io
import re

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from portfolio.models import Chain, Holding, SyncRun, Wallet
from portfolio.sync.progress import sync_status
from portfolio.valuation import exact_text, to_units
from tests.fixtures.celery import dump, seed_chain
from tests.fixtures.users import PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.devnet, pytest.mark.django_db(transaction=True), pytest.mark.timeout(240)]

DESKTOP = {"width": 1360, "height": 900}
SYNC_TIMEOUT_MS = 60_000


def _scenario_wallet(scenario: dict, label_prefix: str) -> dict:
    return next(w for w in scenario["wallets"] if w["label"].startswith(label_prefix))


@pytest.fixture
def devnet_chains(evm_devnet, bitcoin_devnet, solana_devnet, transactional_db):
    """The three devnet chains enabled with the devnet URLs as their endpoints; every other chain disabled,
    so nothing tries the internet."""
    chains = {d.scenario["family"]: seed_chain(d.scenario) for d in (evm_devnet, bitcoin_devnet, solana_devnet)}
    Chain.objects.exclude(pk__in=[c.pk for c in chains.values()]).update(enabled=False)
    return chains


@pytest.fixture
def picks(evm_devnet, bitcoin_devnet, solana_devnet):
    """One scenario wallet per family and the native amount each holds (whole units, exact)."""
    chosen = {
        "evm": (evm_devnet.scenario, _scenario_wallet(evm_devnet.scenario, "Alice")),
        "bitcoin": (bitcoin_devnet.scenario, next(w for w in bitcoin_devnet.scenario["wallets"] if w["address"].startswith("vpub"))),
        "solana": (solana_devnet.scenario, _scenario_wallet(solana_devnet.scenario, "Alice")),
    }
    return {
        family: {
            "address": w["address"],
            "label": f"{family} {w['label']}"[:80],
            "symbol": s["chain"]["native_symbol"],
            "native": exact_text(to_units(int(w["balances"]["native"]), s["chain"]["native_decimals"])),
            "wallet": w,
            "scenario": s,
        }
        for family, (s, w) in chosen.items()
    }


def sign_in(page, live_server, username: str) -> None:
    page.goto(live_server.url + reverse("login"))
    page.fill("input[name=login]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(live_server.url + reverse("dashboard"))


def add_wallet_through_the_form(page, family: str, address: str, label: str) -> None:
    form = page.locator("#wallet-form")
    form.locator("select[name=family]").select_option(family)
    form.locator("input[name=address]").fill(address)
    form.locator("input[name=label]").fill(label)
    form.get_by_role("button", name="Add wallet").click()
    expect(page.locator("table.wallet-rows")).to_contain_text(label)


def test_a_user_adds_wallets_refreshes_and_sees_the_chains_holdings(
    page, live_server, owner, devnet_chains, picks, celery_worker, screenshot
):
    page.set_viewport_size(DESKTOP)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    sign_in(page, live_server, owner.username)
    expect(page.get_by_test_id("onboarding")).to_be_visible()

    # One wallet of each family through the Wallets page form.
    page.goto(live_server.url + reverse("wallets"))
    for family, pick in picks.items():
        add_wallet_through_the_form(page, family, pick["address"], pick["label"])
    expect(page.locator("table.wallet-rows tbody tr")).to_have_count(3)
    assert Wallet.objects.filter(owner=owner).count() == 3

    # Refresh on the dashboard: the button turns busy at once, the progress line polls until every chain is
    # done, and then the new figures replace the "reading your wallets" card without a click or a reload.
    page.get_by_role("link", name="Dashboard").first.click()
    expect(page.get_by_test_id("first-sync")).to_be_visible()
    page.evaluate("window.__sameDocument = true")
    page.get_by_test_id("refresh-form").get_by_role("button").click()
    status = page.get_by_test_id("sync-status")
    expect(status).to_be_visible()
    expect(page.locator(".refresh-btn .refresh-busy")).to_be_visible()
    expect(page.get_by_test_id("nothing-queued")).to_be_hidden()  # the first-sync card's hint is stale now
    expect(page.get_by_test_id("net-worth")).to_have_count(0)
    screenshot("sync-progress")
    try:
        expect(status).to_have_attribute("data-status", "ok", timeout=SYNC_TIMEOUT_MS)
    except AssertionError as exc:
        screenshot("sync-progress-timeout")
        runs = [sync_status(run) for run in SyncRun.objects.filter(owner=owner)]
        raise AssertionError(f"{exc}\nruns: {dump(runs)}\nworker log:\n{celery_worker.log()[-6000:]}") from None
    expect(page.get_by_test_id("net-worth")).to_contain_text("$")  # swapped in by htmx: nobody clicked
    expect(page.get_by_test_id("first-sync")).to_have_count(0)
    expect(page.get_by_test_id("networth-chart")).to_be_visible()
    expect(page.get_by_test_id("allocation")).to_contain_text("ETH")
    page.wait_for_function("() => [...document.querySelectorAll('canvas[data-chart]')].every(c => window.Chart.getChart(c))")
    assert page.evaluate("window.__sameDocument") is True
    expect(page.locator(".refresh-btn .refresh-idle")).to_be_visible()
    expect(page.get_by_test_id("sync-summary")).to_contain_text("3 of 3")
    # Per-chain status on demand: folded, endpoints by host, never a URL.
    details = status.locator("details.sync-details")
    expect(details).not_to_have_attribute("open", re.compile(".*"))
    details.locator("summary").click()
    items = status.locator("tr.sync-item")
    expect(items).to_have_count(3)
    assert set(items.evaluate_all("rows => rows.map(r => r.dataset.state)")) == {"done"}
    for chain in devnet_chains.values():
        expect(status).to_contain_text(chain.name)
    expect(status).to_contain_text("via local node :")
    expect(status).not_to_contain_text("http")
    screenshot("sync-finished")
    screenshot("dashboard-synced")
    page.evaluate("window.__sameDocument = true")
    page.locator("#performance").get_by_role("link", name="7D").click()
    page.wait_for_url("**range=7d")
    expect(page.locator('#performance [aria-current="true"]')).to_have_text("7D")
    assert page.evaluate("window.__sameDocument") is True

    # Holdings: the scenario's native amounts on each chain, exact.
    page.get_by_role("link", name="Holdings").first.click()
    table = page.get_by_test_id("holdings-table")
    for pick in picks.values():
        cell = table.locator(f'td.num[title="{pick["native"]} {pick["symbol"]}"]')
        expect(cell).to_have_count(1)
    evm = picks["evm"]
    dusd = next(a for a in evm["scenario"]["assets"] if a["symbol"] == "DUSD")
    dusd_amount = exact_text(to_units(int(evm["wallet"]["balances"][dusd["address"]]), dusd["decimals"]))
    expect(table.locator(f'td.num[title="{dusd_amount} DUSD"]')).to_have_count(1)
    screenshot("holdings-synced")

    # Filter by chain without a reload: only the Bitcoin row is left.
    page.evaluate("window.__sameDocument = true")
    page.select_option("#holdings-chain", devnet_chains["bitcoin"].slug)
    expect(page.get_by_test_id("holding-row")).to_have_count(1)
    expect(page.get_by_test_id("holding-row")).to_contain_text("BTC")
    assert page.evaluate("window.__sameDocument") is True
    assert f"chain={devnet_chains['bitcoin'].slug}" in page.url

    # CSV of what is shown.
    with page.expect_download() as download:
        page.get_by_test_id("csv-export").click()
    rows = list(csv.DictReader(io.StringIO(download.value.path().read_text())))
    assert [(r["asset"], r["chain"], r["amount"]) for r in rows] == [("BTC", devnet_chains["bitcoin"].slug, picks["bitcoin"]["native"])]

    # NFTs of the EVM and Solana scenario wallets.
    page.get_by_role("link", name="NFTs").first.click()
    gallery = page.get_by_test_id("nft-gallery")
    for family in ("evm", "solana"):
        for nft in picks[family]["wallet"].get("nfts", []):
            if nft.get("name"):
                expect(gallery).to_contain_text(nft["name"])
    expected_cards = sum(len(picks[f]["wallet"].get("nfts", [])) for f in ("evm", "solana"))
    expect(gallery.get_by_test_id("nft-card")).to_have_count(expected_cards)
    # Offline, the EVM scenario's https/ipfs images cannot load: a placeholder, never a broken-image icon.
    page.wait_for_function(
        "() => [...document.querySelectorAll('.nft-media img')].every(i => i.complete && i.naturalWidth > 0)"
    )
    expect(gallery.locator(".nft-media img")).not_to_have_count(0)  # the Solana data: PNG still shows
    screenshot("nfts-synced")

    # Delete the Solana wallet: its holdings go with it.
    solana_wallet = Wallet.objects.get(owner=owner, family="solana")
    page.goto(live_server.url + reverse("wallets"))
    page.locator("table.wallet-rows tr", has_text=picks["solana"]["label"]).get_by_role("link", name="Delete").click()
    page.get_by_role("button", name="Delete wallet").click()
    expect(page.locator("table.wallet-rows tbody tr")).to_have_count(2)
    assert not Wallet.objects.filter(pk=solana_wallet.pk).exists()
    assert not Holding.objects.filter(wallet_chain__wallet_id=solana_wallet.pk).exists()
    page.get_by_role("link", name="Holdings").first.click()
    expect(page.get_by_test_id("holding-row")).not_to_have_count(0)
    expect(page.get_by_test_id("holdings-table").locator(f'td.num[title$=" {picks["solana"]["symbol"]}"]')).to_have_count(0)
    assert dialogs == []
