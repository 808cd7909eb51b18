"""The per-asset totals each scope keeps ("All wallets", each portfolio) are always what its holdings sum
to: after syncs that change, add and drop rows, membership changes either way, a wallet's removal, a
holding saved through the ORM, and with an account reached through two wallets (counted once)."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.db import transaction

from portfolio.holdings import _scope_holdings, _totals, asset_totals, scope_holdings
from portfolio.models import AssetTotal, Holding, Portfolio, Wallet
from portfolio.overlaps import covered_pairs
from portfolio.services.wallets import do_add_wallet, do_delete_wallet, do_update_portfolio
from tests.portfolio.test_overlaps import BTC, TPUB, VPUB, btc, hold, regtest  # noqa: F401  (fixtures)
from tests.portfolio.test_sync_writes import TokenBalance, _count, _reload, _result, _sync, _token, _wallet_chains

pytestmark = pytest.mark.django_db


def scopes(owner) -> list[tuple[int | None, list[int]]]:
    out = [(None, sorted(Wallet.objects.filter(owner=owner).values_list("pk", flat=True)))]
    return out + [(p.pk, sorted(p.wallets.values_list("pk", flat=True))) for p in Portfolio.objects.filter(owner=owner)]


def assert_totals_are_the_holdings(owner) -> None:
    """Each scope's kept totals (less accounts reached twice) equal the sums of its holdings."""
    for portfolio_id, ids in scopes(owner):
        covered = covered_pairs(ids)
        expected = asset_totals(_scope_holdings(owner, ids, False, covered)) if ids else {}
        assert _totals(owner, ids, portfolio_id is None, portfolio_id, covered) == expected, portfolio_id


def test_totals_follow_syncs_membership_changes_and_wallet_removal(owner):
    wcs = _wallet_chains(owner, 3)
    w0, w1, w2 = (wc.wallet for wc in wcs)
    portfolio = Portfolio.objects.create(owner=owner, name="two")
    portfolio.wallets.set([w0, w1])
    _sync(wcs, _result(wcs, 3, 10))
    assert_totals_are_the_holdings(owner)
    assert AssetTotal.objects.filter(owner=owner, portfolio=None).count() == 4  # ETH and three tokens

    def amount(w, t):
        return {(0, 0): 123, (2, 1): 0}.get((w, t), 10**18 * (t + 1) + w)  # one changed, one now zero

    balances = [b for b in _result(wcs, 3, 11, amount=amount).balances if not (b.owner == w1.address and b.asset == _token(2))]
    balances.append(TokenBalance(owner=w2.address, asset=_token(9), amount=2**256 - 1))  # new, uint256 max
    second = _result(wcs, 0, 11)
    wcs = _reload(wcs)
    _sync(wcs, type(second)(balances=tuple(balances), height=11, endpoint="test"))
    assert_totals_are_the_holdings(owner)
    token9 = scope_holdings(owner, [w2.pk], "USD", with_positions=False).rows
    assert [r.amount_raw for r in token9 if r.asset.address == _token(9).address] == [2**256 - 1]

    portfolio.wallets.add(w2)
    assert_totals_are_the_holdings(owner)
    portfolio.wallets.remove(w0, w0)
    assert_totals_are_the_holdings(owner)
    do_update_portfolio(portfolio, wallets=[w0, w2])
    assert_totals_are_the_holdings(owner)
    w1.portfolios.add(portfolio)  # the reverse side
    assert_totals_are_the_holdings(owner)
    portfolio.wallets.clear()
    assert_totals_are_the_holdings(owner)
    assert not AssetTotal.objects.filter(portfolio=portfolio, holders__gt=0).exists()
    portfolio.wallets.set([w1, w2])
    do_delete_wallet(w1)
    assert_totals_are_the_holdings(owner)
    Holding.objects.filter(wallet_chain__wallet=w2, asset__address=_token(0).address).get().save()  # through the ORM
    assert_totals_are_the_holdings(owner)


def test_a_sync_that_changes_nothing_writes_no_total_and_one_that_changes_a_holding_writes_them_once(owner):
    wcs = _wallet_chains(owner, 4)
    _sync(wcs, _result(wcs, 5, 10))
    wcs = _reload(wcs)
    unchanged = _count(lambda: _sync(wcs, _result(wcs, 5, 11)))
    assert unchanged.on("portfolio_assettotal") == 0
    wcs = _reload(wcs)
    changed = _count(lambda: _sync(wcs, _result(wcs, 5, 12, amount=lambda w, t: 7 if (w, t) == (1, 1) else 10**18 * (t + 1) + w)))
    assert changed.on("portfolio_assettotal") == 1, changed.writes  # one UPDATE of the changed asset's row
    assert_totals_are_the_holdings(owner)


def test_an_account_reached_through_two_wallets_counts_once_in_the_totals(owner, btc):  # noqa: F811
    vpub = do_add_wallet(owner, "bitcoin", VPUB)
    tpub = do_add_wallet(owner, "bitcoin", TPUB, script_type="p2wpkh", label="same account as vpub")
    for w in (vpub, tpub):
        hold(w, btc, 2 * BTC)
    both = Portfolio.objects.create(owner=owner, name="both")
    both.wallets.set([vpub, tpub])
    only_tpub = Portfolio.objects.create(owner=owner, name="tpub")
    only_tpub.wallets.add(tpub)
    assert_totals_are_the_holdings(owner)
    rows = scope_holdings(owner, [vpub.pk, tpub.pk], "USD", portfolio_id=both.pk).rows
    assert [(r.amount_raw, r.holders) for r in rows] == [(2 * BTC, 1)]  # kept: 4 BTC in 2 holdings, less the covered one
    assert [r.amount_raw for r in scope_holdings(owner, [tpub.pk], "USD", portfolio_id=only_tpub.pk).rows] == [2 * BTC]
    with transaction.atomic():
        do_delete_wallet(vpub)
    assert_totals_are_the_holdings(owner)
    assert [r.amount_raw for r in scope_holdings(owner, [tpub.pk], "USD").rows] == [2 * BTC]


def test_rebuild_totals_repairs_holdings_written_around_the_sync(owner):
    wcs = _wallet_chains(owner, 2)
    _sync(wcs, _result(wcs, 2, 10))
    Holding.objects.filter(wallet_chain=wcs[0]).update(amount=5)  # around the sync: the totals are now wrong
    with pytest.raises(AssertionError):
        assert_totals_are_the_holdings(owner)
    call_command("rebuild_totals", owner.username, stdout=io.StringIO())
    assert_totals_are_the_holdings(owner)


def test_a_total_of_uint256_balances_in_many_wallets_is_exact(owner):
    wcs = _wallet_chains(owner, 12)
    _sync(wcs, _result(wcs, 1, 10, amount=lambda w, t: 2**256 - 1))  # past 78 digits once summed
    rows = scope_holdings(owner, [wc.wallet_id for wc in wcs], "USD", with_positions=False).rows
    assert [r.amount_raw for r in rows if r.asset.address == _token(0).address] == [12 * (2**256 - 1)]
    assert_totals_are_the_holdings(owner)
