"""One account reached through several wallets counts once in every scope total, and is marked on the
wallets that reach it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone as tz
from decimal import Decimal as D

import pytest
from django.urls import reverse

from chains.bitcoin.address import encode_address
from portfolio import queries
from portfolio.models import Asset, Chain, Holding, Portfolio, ScopeValue, WalletChain
from portfolio.overlaps import also_in, covered_pairs, overlap_note
from portfolio.services.prices import set_manual_price
from portfolio.services.snapshots import do_snapshot, scope_key
from portfolio.services.wallets import do_add_wallet
from tests.portfolio.test_wallets import G, XPUB, reversion

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=tz.utc)
BTC = 10**8
TPUB = reversion(XPUB, "043587cf")
VPUB = reversion(XPUB, "045f1cf6")
ALONE = encode_address(G, "p2wpkh", "regtest")


@pytest.fixture
def regtest(db):
    chain = Chain.objects.get(slug="bitcoin-regtest")
    chain.enabled = True
    chain.save()
    return chain


@pytest.fixture
def btc(regtest):
    asset = Asset.objects.get(chain=regtest, address="")
    set_manual_price(asset, D("50000"), at=T0 - timedelta(minutes=5))
    return asset


def hold(wallet, asset, amount):
    wc = WalletChain.objects.get(wallet=wallet, chain=asset.chain)
    Holding.objects.update_or_create(wallet_chain=wc, asset=asset, defaults={"amount": amount})
    return wc


def scope_value(owner, wallets):
    return ScopeValue.objects.filter(owner=owner, scope_key=scope_key(w.pk for w in wallets)).latest("at").value


def test_the_same_key_in_two_encodings_counts_once(owner, btc):
    vpub = do_add_wallet(owner, "bitcoin", VPUB)  # p2wpkh by its prefix
    tpub = do_add_wallet(owner, "bitcoin", TPUB, script_type="p2wpkh", label="same account as tpub")
    for w in (vpub, tpub):
        hold(w, btc, 2 * BTC)
    do_snapshot(at=T0)
    # 2 BTC at 50,000 once, not twice; each wallet alone still shows its 100,000.
    assert scope_value(owner, [vpub, tpub]) == D(100_000)
    assert queries.dashboard_summary(owner, [vpub.pk, tpub.pk], "USD", "all").net_worth == D(100_000)
    assert list(covered_pairs([vpub.pk, tpub.pk])) == [(tpub.pk, btc.chain_id)]
    only_tpub = Portfolio.objects.create(owner=owner, name="tpub alone")
    only_tpub.wallets.add(tpub)
    do_snapshot(at=T0 + timedelta(minutes=5))
    assert scope_value(owner, [tpub]) == D(100_000)  # alone in a portfolio, it counts


def test_a_different_script_type_of_the_same_key_is_another_account(owner, btc):
    p2wpkh = do_add_wallet(owner, "bitcoin", VPUB)
    p2pkh = do_add_wallet(owner, "bitcoin", TPUB)  # tpub's own script type: p2pkh addresses
    hold(p2wpkh, btc, BTC)
    hold(p2pkh, btc, 3 * BTC)
    do_snapshot(at=T0)
    assert covered_pairs([p2wpkh.pk, p2pkh.pk]) == {}
    assert scope_value(owner, [p2wpkh, p2pkh]) == D(200_000)


def test_an_address_an_xpub_of_the_scope_derives_counts_once(owner, btc):
    account = do_add_wallet(owner, "bitcoin", VPUB)
    alone = do_add_wallet(owner, "bitcoin", ALONE, label="one address of it")
    wc = hold(account, btc, 5 * BTC)
    # What the Bitcoin adapter's scan leaves in the cursor: the addresses it derived.
    wc.cursors = {"v": 1, "receive": {"used_max": 0, "addresses": [ALONE]}, "change": {"used_max": -1, "addresses": []}}
    wc.save()
    hold(alone, btc, 1 * BTC)  # part of the 5 BTC the account holds
    do_snapshot(at=T0)
    assert scope_value(owner, [account, alone]) == D(250_000)
    assert also_in(owner.pk, alone.pk) == {btc.chain_id: [account.pk]}
    assert also_in(owner.pk, account.pk) == {btc.chain_id: [alone.pk]}
    assert "same account" in overlap_note(alone)


def test_the_wallet_page_marks_an_account_also_in_another_wallet(owner, owner_client, btc):
    vpub = do_add_wallet(owner, "bitcoin", VPUB, label="account")
    tpub = do_add_wallet(owner, "bitcoin", TPUB, script_type="p2wpkh", label="again")
    page = owner_client.get(reverse("wallet_detail", args=[tpub.pk])).content.decode()
    assert 'data-testid="also-in"' in page and reverse("wallet_detail", args=[vpub.pk]) in page


def test_a_portfolio_with_a_duplicate_has_the_totals_of_one_without_it(owner, btc):
    vpub = do_add_wallet(owner, "bitcoin", VPUB)
    hold(vpub, btc, 3 * BTC)
    do_snapshot(at=T0)
    without = queries.dashboard_summary(owner, [vpub.pk], "USD", "all")
    tpub = do_add_wallet(owner, "bitcoin", TPUB, script_type="p2wpkh")
    hold(tpub, btc, 3 * BTC)
    do_snapshot(at=T0 + timedelta(hours=1))
    both = queries.dashboard_summary(owner, [vpub.pk, tpub.pk], "USD", "all")
    assert both.net_worth == without.net_worth == D(150_000)
    # The duplicate's first point is not a deposit, nor growth: nothing changed.
    assert (both.change, both.net_flows) == (D(0), D(0))
    assert [s.value for s in both.allocation["asset"]] == [D(150_000)]


def test_adding_an_overlapping_wallet_says_so_at_once(owner, owner_client, btc):
    do_add_wallet(owner, "bitcoin", VPUB)
    response = owner_client.post(reverse("wallets"), {"family": "bitcoin", "address": TPUB, "script_type": "p2wpkh",
                                                     "gap_limit": "20", "label": "again"}, follow=True)
    assert "reaches the same account as" in response.content.decode()
