"""In a real browser: secrets typed into the holdings search box or a form field, or put in a URL, never reach
the browser's history, the page, or any log line of the server (the access log is checked in
tests/portfolio/test_secret_corpus.py: the live test server does not write one)."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote_plus, unquote_plus

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from playwright.sync_api import expect

from portfolio.models import Asset, Chain, RpcEndpoint
from tests.fixtures.users import PASSWORD
from tests.portfolio.test_pages import hold, make_wallet
from tests.portfolio.test_secret_corpus import fragments

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CORPUS = json.loads((Path(__file__).parents[1] / "data" / "secret_corpus.json").read_text(encoding="utf-8"))
TYPED = ["hex in a sentence", "BIP-39 12", "BIP-39 Japanese", "WIF with full stop", "Solana keypair base58", "BIP-39 no separators"]


@pytest.fixture
def user_with_holdings(transactional_db):
    from portfolio.seed import seed_chains

    if not Chain.objects.exists():  # a transactional test's flush removes the migration's seed
        seed_chains(Chain, RpcEndpoint, Asset)
    user = get_user_model().objects.create_user("alice", "alice@example.com", PASSWORD)
    wallet, wc = make_wallet(user, label="Hot wallet")
    native, _ = Asset.objects.update_or_create(
        chain=wc.chain, address="", defaults={"kind": Asset.NATIVE, "symbol": "ETH", "name": "Ether", "decimals": 18}
    )
    hold(wc, native, 10**18, price="2000")
    return user


def history(page) -> list[str]:
    session = page.context.new_cdp_session(page)
    entries = session.send("Page.getNavigationHistory")["entries"]
    return [unquote_plus(e["url"]).lower() for e in entries] + [e["url"].lower() for e in entries]


def test_secrets_typed_or_linked_stay_out_of_history_pages_and_logs(page, live_server, user_with_holdings, capture_every_log_line):
    page.goto(live_server.url + reverse("login"))
    page.fill("input[name=login]", "alice")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.goto(live_server.url + reverse("holdings"))
    search = page.locator("#holdings-q")
    bodies = []
    for name in TYPED:
        with page.expect_response(lambda r: "/holdings/" in r.url and r.request.method == "GET") as answer:
            search.fill(CORPUS[name])
        bodies.append(answer.value.text())
        expect(search).to_have_value("")  # blanked: the text leaves the page
        expect(page.locator("#refused-note")).to_be_visible()
        expect(page.locator("#holdings-table")).to_contain_text("ETH")
    # A link or a typed URL holding a secret: redirected, only the clean URL stays.
    for name in ("hex", "BIP-39 Chinese simplified"):
        page.goto(live_server.url + reverse("holdings") + "?q=" + quote_plus(CORPUS[name]))
        assert "q=" not in page.url
        bodies.append(page.content())
        expect(page.locator(".message-error").first).to_contain_text("watch-only")
    # And a form field: the label of a new wallet.
    page.goto(live_server.url + reverse("wallets"))
    page.fill("#wallet-form input[name=address]", "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed")
    page.fill("#wallet-form input[name=label]", CORPUS["BIP-39 French"])
    page.locator("#wallet-form button[type=submit]").click()
    expect(page.locator("#wallet-form input[name=label]")).to_have_value("")
    bodies.append(page.content())

    visited = "\n".join(history(page))
    text = "\n".join(bodies).lower()
    logs = capture_every_log_line().lower()
    assert "wallet added" not in logs
    for name in TYPED + ["hex", "BIP-39 Chinese simplified", "BIP-39 French"]:
        for piece in fragments(CORPUS[name]):
            assert piece not in visited, (name, "history")
            assert piece not in text, (name, "page")
            assert piece not in logs, (name, "log")


@pytest.fixture
def capture_every_log_line():
    from tests.portfolio.test_secret_corpus import every_log_line

    gen = every_log_line.__wrapped__()
    read = next(gen)
    yield read
    next(gen, None)
