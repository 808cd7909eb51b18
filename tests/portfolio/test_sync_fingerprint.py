"""A sync whose fetch holds what is stored (the same fingerprint) neither reads nor writes the rows of
that wallet; anything else (a changed amount, asset, NFT or position, a balance that could not be read,
rows written around the sync) is diffed in full and stored. Results are built at the adapter boundary
(FetchResult); the store path is the service's own (test_sync_writes._sync)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import transaction

from chains.base import FetchResult, NftHolding, Position, PositionLeg, Problem, TokenBalance
from portfolio import totals
from portfolio.models import Holding, NftItem, Position as PositionRow, SyncRun, SyncRunItem, WalletChain
from portfolio.sync import plan, store
from portfolio.sync import run as sync_run
from tests.portfolio.test_sync_writes import COLLECTION, NATIVE_REF, _count, _reload, _result, _sync, _token, _wallet_chains

pytestmark = pytest.mark.django_db

ROW_TABLES = ("portfolio_holding", "portfolio_nftitem", "portfolio_position", "portfolio_positionleg")


def _nft(wc, token_id: str = "1", name: str = "One") -> NftHolding:
    return NftHolding(owner=wc.wallet.address, collection=COLLECTION, token_id=token_id, name=name)


def _loan(wc, supplied: int = 5, health: str = "1.5") -> Position:
    return Position(owner=wc.wallet.address, protocol="lend", kind="lending", ref="a", health_factor=Decimal(health),
                    legs=(PositionLeg(asset=_token(0), amount=supplied, role="supplied"),
                          PositionLeg(asset=_token(1), amount=2, role="borrowed")))


def _full(wcs, height: int, **changes) -> FetchResult:
    """Two tokens and ether for every wallet, an NFT and a loan for the first one."""
    kwargs = {"nfts": [_nft(wcs[0])], "positions": [_loan(wcs[0])], **changes}
    return _result(wcs, 2, height, **kwargs)


def _stored(wcs) -> dict:
    """Everything stored for ``wcs`` that a reader sees, by key."""
    ids = [wc.id for wc in wcs]
    holdings = {(h.wallet_chain_id, h.asset.address): (h.amount, h.unconfirmed, h.details)
                for h in Holding.objects.filter(wallet_chain_id__in=ids).select_related("asset")}
    nfts = {(n.wallet_chain_id, n.token_id): n.name for n in NftItem.objects.filter(wallet_chain_id__in=ids)}
    positions = {(p.wallet_chain_id, p.ref): (p.health_factor, sorted((leg.asset.address, leg.amount, leg.role) for leg in p.legs.all()))
                 for p in PositionRow.objects.filter(wallet_chain_id__in=ids)}
    return {"holdings": holdings, "nfts": nfts, "positions": positions}


def _only_in_a_fresh_database(wcs, result) -> dict:
    """What a first sync of ``result`` stores, to compare a sync after others with."""
    with transaction.atomic():
        sid = transaction.savepoint()
        WalletChain.objects.filter(id__in=[wc.id for wc in wcs]).update(stored_fingerprint="")
        for model in (Holding, NftItem, PositionRow):
            model.objects.filter(wallet_chain_id__in=[wc.id for wc in wcs]).delete()
        _sync(_reload(wcs), result)
        expected = _stored(wcs)
        transaction.savepoint_rollback(sid)
    return expected


def test_an_unchanged_fetch_reads_and_writes_no_holding_nft_or_position(owner):
    wcs = _wallet_chains(owner, 3)
    first = _sync(wcs, _full(wcs, 100))
    before = _stored(wcs)
    ids = set(Holding.objects.values_list("id", flat=True))
    wcs = _reload(wcs)
    prepared = None

    def again():
        nonlocal prepared
        prepared = _sync(wcs, _full(wcs, 101))

    counter = _count(again)
    touching = [sql for sql in counter.seen if any(table in sql for table in ROW_TABLES)]
    assert touching == []
    assert prepared.unchanged == {wc.id for wc in wcs}
    # the WalletChains' books, in one statement
    assert [sql.split()[1].strip('"') for sql in counter.writes] == ["portfolio_walletchain"]
    assert _stored(wcs) == before and set(Holding.objects.values_list("id", flat=True)) == ids
    assert {h.read_height for h in Holding.objects.select_related("wallet_chain")} == {101}  # read at the new block
    # The run item's counts are those a full diff makes.
    assert {pk: b.counts for pk, b in prepared.built.items()} == {pk: b.counts for pk, b in first.built.items()}


def test_a_synced_run_item_counts_the_same_whether_its_rows_were_diffed_or_not(owner, monkeypatch):
    wcs = _wallet_chains(owner, 2)
    monkeypatch.setattr(sync_run, "_fetcher", lambda wallet_chains: lambda: _full(wallet_chains, 7))
    counts = []
    for _ in range(2):
        run = SyncRun.objects.create(trigger=SyncRun.SCHEDULE, status=SyncRun.QUEUED)
        plan.create_items(run, [wc.id for wc in wcs])
        sync_run.do_sync_wallet_chains([wc.id for wc in wcs], run.id)
        counts.append(sorted(SyncRunItem.objects.filter(run=run).values_list("wallet_chain_id", "status", "counts")))
    assert counts[0] == counts[1]
    assert counts[0][0][2]["balances"] == 3 and counts[0][0][2]["nfts"] == 1 and counts[0][0][2]["positions"] == 1
    assert "" not in set(WalletChain.objects.values_list("stored_fingerprint", flat=True))


CHANGES = {
    "an amount": lambda wcs: {"amount": lambda w, t: 10**18 * (t + 1) + w + (t == 1 and w == 1)},
    "an unconfirmed amount": lambda wcs: {"balances": [TokenBalance(owner=wcs[2].wallet.address, asset=NATIVE_REF, amount=7 * 10**17,
                                                                     unconfirmed=-3)]},
    "the details of a balance": lambda wcs: {"balances": [TokenBalance(owner=wcs[2].wallet.address, asset=NATIVE_REF, amount=7 * 10**17,
                                                                        details={"tx_count": 4})]},
    "a new asset": lambda wcs: {"balances": [TokenBalance(owner=wcs[1].wallet.address, asset=_token(5), amount=9)]},
    "an NFT's name": lambda wcs: {"nfts": [_nft(wcs[0], name="One, renamed")]},
    "a new NFT": lambda wcs: {"nfts": [_nft(wcs[0]), _nft(wcs[1], "2")]},
    "a vanished NFT": lambda wcs: {"nfts": []},
    "a position's leg": lambda wcs: {"positions": [_loan(wcs[0], supplied=6)]},
    "a position's health factor": lambda wcs: {"positions": [_loan(wcs[0], health="1.25")]},
}


def _changed(wcs, height: int, what: str) -> FetchResult:
    change = CHANGES[what](wcs)
    extra = change.pop("balances", [])
    result = _full(wcs, height, **change)
    # an extra balance replaces the wallet's own balance of that asset, if any
    keys = {(b.owner, b.asset.address) for b in extra}
    balances = tuple(b for b in result.balances if (b.owner, b.asset.address) not in keys) + tuple(extra)
    return FetchResult(balances=balances, height=height, endpoint="test", nfts=result.nfts, positions=result.positions)


@pytest.mark.parametrize("what", sorted(CHANGES))
def test_a_change_after_an_unchanged_sync_is_stored(owner, what):
    wcs = _wallet_chains(owner, 3)
    _sync(wcs, _full(wcs, 100))
    assert _sync(_reload(wcs), _full(wcs, 101)).unchanged == {wc.id for wc in wcs}
    changed = _changed(wcs, 102, what)
    prepared = _sync(_reload(wcs), changed)
    assert prepared.unchanged != {wc.id for wc in wcs}  # the changed wallet's rows were diffed
    assert _stored(wcs) == _only_in_a_fresh_database(wcs, changed)
    # and the change, once stored, is the new steady state
    assert _sync(_reload(wcs), _changed(wcs, 103, what)).unchanged == {wc.id for wc in wcs}


def test_only_the_wallets_that_changed_are_diffed(owner):
    wcs = _wallet_chains(owner, 3)
    _sync(wcs, _full(wcs, 100))
    prepared = _sync(_reload(wcs), _changed(wcs, 101, "a new asset"))  # wallet 1 only
    assert prepared.unchanged == {wcs[0].id, wcs[2].id}
    assert prepared.written["holding"] == (1, 0, 0)


def test_a_wallet_synced_alone_after_its_group_is_unchanged(owner):
    wcs = _wallet_chains(owner, 3)
    _sync(wcs, _full(wcs, 100))
    (alone,) = _reload(wcs[:1])
    result = _full(wcs, 101)
    own = FetchResult(balances=tuple(b for b in result.balances if b.owner == alone.wallet.address), height=101, endpoint="test",
                      nfts=result.nfts, positions=result.positions)
    assert _sync([alone], own).unchanged == {alone.id}


def test_a_balance_that_could_not_be_read_is_carried_over_and_read_again_in_full(owner):
    wcs = _wallet_chains(owner, 2)
    _sync(wcs, _full(wcs, 100))
    broken = _token(1).address
    failing = _full(wcs, 101)
    failing = FetchResult(balances=tuple(b for b in failing.balances if b.asset.address != broken), height=101, endpoint="test",
                          nfts=failing.nfts, positions=failing.positions, problems=(Problem("balance_call_failed", "reverted", broken),))
    for height in (101, 102):  # the same failure twice: diffed in full both times, never skipped
        prepared = _sync(_reload(wcs), failing)
        assert prepared.unchanged == set()
        assert set(WalletChain.objects.values_list("stored_fingerprint", flat=True)) == {""}
    assert Holding.objects.get(wallet_chain=wcs[0], asset__address=broken).details == {"stale": True}
    prepared = _sync(_reload(wcs), _full(wcs, 103))  # read again: the stale flag goes
    assert prepared.unchanged == set()
    assert Holding.objects.get(wallet_chain=wcs[0], asset__address=broken).details == {}
    assert _stored(wcs) == _only_in_a_fresh_database(wcs, _full(wcs, 103))


def test_a_protocol_not_all_read_keeps_its_positions_and_is_diffed_in_full(owner):
    wcs = _wallet_chains(owner, 1)
    _sync(wcs, _full(wcs, 100))
    partial = FetchResult(balances=_full(wcs, 101).balances, height=101, endpoint="test", nfts=(_nft(wcs[0]),),
                          problems=(Problem("protocol_failed", "reverted", protocol="lend"),), incomplete_protocols=("lend",))
    assert _sync(_reload(wcs), partial).unchanged == set()
    assert PositionRow.objects.filter(wallet_chain=wcs[0], protocol="lend").exists()
    assert WalletChain.objects.get(id=wcs[0].id).stored_fingerprint == ""


def _amount(wc, asset_address: str) -> int:
    return Holding.objects.get(wallet_chain=wc, asset__address=asset_address).amount


def test_rows_written_around_the_sync_are_repaired_by_the_next_one(owner):
    wcs = _wallet_chains(owner, 2)
    _sync(wcs, _full(wcs, 100))
    expected = _stored(wcs)
    token = _token(0).address

    # saved through the ORM (the admin, a fixture): the WalletChain forgets its fingerprint at once
    holding = Holding.objects.get(wallet_chain=wcs[0], asset__address=token)
    holding.amount = 5
    holding.save()
    assert WalletChain.objects.get(id=wcs[0].id).stored_fingerprint == ""
    assert _sync(_reload(wcs), _full(wcs, 101)).unchanged == {wcs[1].id}
    assert _stored(wcs) == expected

    # written around the ORM, then the owner's totals rebuilt (rebuild_totals: the step such writes take)
    Holding.objects.filter(wallet_chain=wcs[1]).update(amount=6)
    Holding.objects.filter(wallet_chain=wcs[0], asset__address=token).delete()
    totals.rebuild(owner.pk)
    assert _sync(_reload(wcs), _full(wcs, 102)).unchanged == set()
    assert _stored(wcs) == expected


@pytest.mark.parametrize("kind", ["nft", "position", "leg"])
def test_an_nft_or_position_saved_through_the_orm_is_diffed_again(owner, kind):
    wcs = _wallet_chains(owner, 1)
    _sync(wcs, _full(wcs, 100))
    expected = _stored(wcs)
    if kind == "nft":
        row = NftItem.objects.get()
        row.name = "edited"
    elif kind == "position":
        row = PositionRow.objects.get()
        row.health_factor = Decimal("9")
    else:
        row = PositionRow.objects.get().legs.get(role="supplied")
        row.amount = 1
    row.save()
    assert _sync(_reload(wcs), _full(wcs, 101)).unchanged == set()
    assert _stored(wcs) == expected


def test_a_store_between_an_unchanged_diff_and_its_transaction_makes_it_diff_again(owner):
    wcs = _wallet_chains(owner, 2)
    _sync(wcs, _full(wcs, 100))
    wcs = _reload(wcs)
    late = store.prepare(wcs, _full(wcs, 101), sync_run.timezone.now())
    assert late.unchanged == {wc.id for wc in wcs}
    _sync(_reload(wcs), _changed(wcs, 102, "a new asset"))  # meanwhile another worker stored a change
    with transaction.atomic():
        store.replace(late)
        sync_run._mark_ok(late, {})
    assert _stored(wcs) == _only_in_a_fresh_database(wcs, _full(wcs, 101))
    assert _sync(_reload(wcs), _full(wcs, 103)).unchanged == {wc.id for wc in wcs}


def test_a_fetch_without_any_balance_of_one_wallet_empties_its_holdings_and_is_fingerprinted(owner):
    """A fetch may hold nothing at all for a wallet of its group (an adapter that lists no zero
    balance): that wallet's stored rows go, and the next equal fetch is recognised as unchanged."""
    wcs = _wallet_chains(owner, 2)
    _sync(wcs, _result(wcs, 2, 100))
    only_first = _result(wcs[:1], 2, 101)
    prepared = _sync(_reload(wcs), only_first)
    assert prepared.built[wcs[1].id].counts["balances"] == 0
    assert not Holding.objects.filter(wallet_chain=wcs[1]).exists() and Holding.objects.filter(wallet_chain=wcs[0]).count() == 3
    assert "" not in set(WalletChain.objects.filter(id__in=[wc.id for wc in wcs]).values_list("stored_fingerprint", flat=True))
    assert store.prepare(_reload(wcs), only_first, sync_run.timezone.now()).unchanged == {wc.id for wc in wcs}
