"""What a sync writes: only the rows that changed (by key), the statements bounded whatever the number
of wallets, stale amounts carried over with the block they were read at, and readers seeing the read
height and time of each row. Results are built at the adapter boundary (FetchResult), as the adapters
return them; the devnet round trip is in test_sync_service.py."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from chains.base import NATIVE, AssetRef, FetchResult, NftHolding, Position, PositionLeg, Problem, TokenBalance
from portfolio.holdings import holding_parts
from portfolio.lookups import any_of
from portfolio.models import Asset, Chain, Holding, NftItem, Position as PositionRow, PositionLeg as LegRow, Wallet, WalletChain
from portfolio.sync import run as sync_run
from portfolio.sync import store

pytestmark = pytest.mark.django_db

NATIVE_REF = AssetRef(kind=NATIVE, address=None, symbol="ETH", name="Ether", decimals=18)
COLLECTION = AssetRef(kind="nft_collection", address="0x" + "c0" * 20, symbol="ART", name="Art", decimals=0, standard="erc721")
WRITES = ("INSERT", "UPDATE", "DELETE", "COPY")


def _token(i: int) -> AssetRef:
    return AssetRef(kind="fungible", address=f"0x{i:040x}", symbol=f"T{i}", name=f"Token {i}", decimals=18, standard="erc20")


def _wallet_chains(owner, n: int) -> list[WalletChain]:
    chain = Chain.objects.filter(family="evm").order_by("id").first()
    wallets = Wallet.objects.bulk_create(
        [Wallet(owner=owner, family="evm", address=f"0x{i + 1:040x}", label=f"w{i}") for i in range(n)])
    WalletChain.objects.bulk_create([WalletChain(wallet=w, chain=chain) for w in wallets])
    return list(WalletChain.objects.select_related("wallet", "chain").filter(chain=chain).order_by("id"))


def _reload(wcs) -> list[WalletChain]:
    """The WalletChains as the next sync loads them (in the same order: amounts depend on it)."""
    return list(WalletChain.objects.select_related("wallet", "chain").filter(id__in=[wc.id for wc in wcs]).order_by("id"))


def _result(wcs, tokens: int, height: int, *, amount=lambda w, t: 10**18 * (t + 1) + w, nfts=(), positions=(), problems=()):
    balances = [TokenBalance(owner=wc.wallet.address, asset=NATIVE_REF, amount=7 * 10**17) for wc in wcs]
    balances += [TokenBalance(owner=wc.wallet.address, asset=_token(t), amount=amount(w, t)) for w, wc in enumerate(wcs) for t in range(tokens)]
    return FetchResult(balances=tuple(balances), height=height, endpoint="test", nfts=tuple(nfts), positions=tuple(positions),
                       problems=tuple(problems))


def _sync(wcs, result) -> store.Prepared:
    """The service's own store path (prepare, one transaction with replace and the WalletChain books)."""
    prepared = store.prepare(wcs, result, sync_run.timezone.now())
    with transaction.atomic():
        store.replace(prepared)
        sync_run._mark_ok(prepared, {})
    return prepared


class WriteCounter:
    """Counts write statements per table at the connection (executemany and COPY count once)."""

    def __init__(self):
        self.writes: list[str] = []
        self.seen: list[str] = []
        self.many: list[str] = []  # writes run as an executemany: a statement per row at the server

    @property
    def statements(self) -> int:
        return len(self.seen)

    def __call__(self, execute, sql, params, many, context):
        self.seen.append(sql)
        if sql.lstrip().upper().startswith(WRITES):
            self.writes.append(sql)
            if many:
                self.many.append(sql)
        return execute(sql, params, many, context)

    def on(self, table: str) -> int:
        return sum(table in sql for sql in self.writes)


def _count(fn) -> WriteCounter:
    counter = WriteCounter()
    with connection.execute_wrapper(counter):
        fn()
    return counter


def test_a_resync_that_finds_nothing_new_writes_no_row_whatever_the_number_of_wallets(owner):
    counters = {}
    for n in (5, 40):
        WalletChain.objects.all().delete()
        Wallet.objects.all().delete()
        wcs = _wallet_chains(owner, n)
        _sync(wcs, _result(wcs, 10, 100))
        assert Holding.objects.count() == n * 11
        ids = set(Holding.objects.values_list("id", flat=True))
        wcs = _reload(wcs)
        counters[n] = _count(lambda: _sync(wcs, _result(wcs, 10, 101)))
        assert counters[n].on("portfolio_holding") == 0, counters[n].writes
        assert set(Holding.objects.values_list("id", flat=True)) == ids
        assert {h.read_height for h in Holding.objects.select_related("wallet_chain")} == {101}
    # The same statements for 5 wallets and for 40: the WalletChain and item books only.
    assert counters[5].statements == counters[40].statements
    assert len(counters[40].writes) <= 2, counters[40].writes
    if connection.vendor == "postgresql":  # UPDATE ... FROM (VALUES ...): one statement at the server too
        assert counters[40].many == [], counters[40].many


def test_changed_new_and_vanished_rows_are_updated_inserted_and_deleted(owner):
    wcs = _wallet_chains(owner, 3)
    alice = wcs[0].wallet.address
    leg = lambda t, amount, role="supplied": PositionLeg(asset=_token(t), amount=amount, role=role)  # noqa: E731
    first = _result(wcs, 3, 10,
                    nfts=[NftHolding(owner=alice, collection=COLLECTION, token_id="1", name="One"),
                          NftHolding(owner=alice, collection=COLLECTION, token_id="2", name="Two")],
                    positions=[Position(owner=alice, protocol="lend", kind="lending", ref="a", legs=(leg(0, 5), leg(1, 2, "borrowed")),
                                        health_factor=Decimal("1.5")),
                               Position(owner=alice, protocol="stake", kind="staking", ref="b", legs=(leg(2, 9, "staked"),))])
    _sync(wcs, first)
    before = dict(Holding.objects.values_list("id", "amount"))
    untouched_leg = LegRow.objects.get(position__ref="b").id

    def amount(w, t):
        if (w, t) == (0, 0):
            return 123  # changed
        return 10**18 * (t + 1) + w

    balances = [b for b in _result(wcs, 3, 11, amount=amount).balances if not (b.owner == wcs[1].wallet.address and b.asset == _token(2))]
    balances.append(TokenBalance(owner=wcs[2].wallet.address, asset=_token(9), amount=2**256 - 1))  # new, uint256 max
    second = FetchResult(
        balances=tuple(balances), height=11, endpoint="test",
        nfts=(NftHolding(owner=alice, collection=COLLECTION, token_id="1", name="One, renamed"),),
        positions=(Position(owner=alice, protocol="lend", kind="lending", ref="a", legs=(leg(0, 6), leg(1, 2, "borrowed")),
                            health_factor=Decimal("1.5")),
                   Position(owner=alice, protocol="stake", kind="staking", ref="b", legs=(leg(2, 9, "staked"),)),
                   Position(owner=alice, protocol="stake", kind="staking", ref="c", legs=(leg(1, 4, "staked"),))),
    )
    wcs = _reload(wcs)
    prepared = _sync(wcs, second)

    assert prepared.written == {"holding": (1, 1, 1), "nftitem": (0, 1, 1), "position": (1, 0, 0)}
    stored = {(h.wallet_chain.wallet.address, h.asset.address): h for h in Holding.objects.select_related("wallet_chain__wallet", "asset")}
    assert stored[(alice, _token(0).address)].amount == 123
    assert stored[(wcs[2].wallet.address, _token(9).address)].amount == 2**256 - 1
    assert (wcs[1].wallet.address, _token(2).address) not in stored
    unchanged = {h.id for h in stored.values()} & set(before)
    assert len(unchanged) == len(before) - 1  # every other row kept its id: written in place, not re-inserted
    assert list(NftItem.objects.values_list("token_id", "name")) == [("1", "One, renamed")]
    legs = {(leg.position.ref, leg.asset.address, leg.amount, leg.role) for leg in LegRow.objects.select_related("position", "asset")}
    assert legs == {("a", _token(0).address, 6, "supplied"), ("a", _token(1).address, 2, "borrowed"),
                    ("b", _token(2).address, 9, "staked"), ("c", _token(1).address, 4, "staked")}
    assert LegRow.objects.get(position__ref="b").id == untouched_leg  # legs replaced only for changed positions
    assert PositionRow.objects.get(ref="a").health_factor == Decimal("1.5")


def test_an_unread_balance_is_carried_over_with_the_block_it_was_read_at(owner):
    wcs = _wallet_chains(owner, 2)
    alice = wcs[0]
    _sync(wcs, _result(wcs, 2, 100))
    read_at = WalletChain.objects.get(id=alice.id).last_ok_at
    broken = _token(1).address
    failing = dict(amount=lambda w, t: 10**18 * (t + 1) + w, problems=[Problem("balance_call_failed", "reverted", broken)])

    def without_broken(height):
        r = _result(wcs, 2, height, **failing)
        return FetchResult(balances=tuple(b for b in r.balances if b.asset.address != broken), height=height, endpoint="test",
                           problems=r.problems)

    for height in (101, 102):  # the second failing sync finds the carried row as it is: no write
        wcs = _reload(wcs)
        prepared = _sync(wcs, without_broken(height))
        assert prepared.built[alice.id].counts["stale"] == 1
        kept = Holding.objects.select_related("wallet_chain").get(wallet_chain=alice, asset__address=broken)
        assert kept.amount == 2 * 10**18 and kept.details == {"stale": True}
        assert (kept.read_height, kept.read_at) == (100, read_at)
        fresh = Holding.objects.select_related("wallet_chain").get(wallet_chain=alice, asset__address=_token(0).address)
        assert fresh.read_height == height
    assert prepared.written["holding"] == (0, 0, 0)

    # Readers: the page's per-wallet parts show each row's own read.
    ids = dict(Asset.objects.filter(address__in=[broken, _token(0).address]).values_list("address", "id"))
    parts = holding_parts(owner, [alice.wallet_id], list(ids.values()), "USD")
    assert [w.height for w in parts[ids[broken]]] == [100] and [w.height for w in parts[ids[_token(0).address]]] == [102]
    assert parts[ids[broken]][0].fetched_at == read_at

    wcs = _reload(wcs)
    _sync(wcs, _result(wcs, 2, 103))  # read again: no longer stale, read with the rest
    kept = Holding.objects.select_related("wallet_chain").get(wallet_chain=alice, asset__address=broken)
    assert kept.details == {} and (kept.height, kept.fetched_at) == (None, None) and kept.read_height == 103


def test_a_diff_made_before_another_sync_stored_is_made_again_inside_the_transaction(owner):
    wcs = _wallet_chains(owner, 2)
    _sync(wcs, _result(wcs, 2, 100))
    late = store.prepare(wcs, _result(wcs, 3, 101, amount=lambda w, t: 5), sync_run.timezone.now())
    other = _reload(wcs)
    _sync(other, _result(other, 4, 102))  # meanwhile another worker stored a different state
    with transaction.atomic():
        store.replace(late)
    amounts = sorted(Holding.objects.exclude(asset__kind=NATIVE).values_list("asset__address", "amount"))
    assert amounts == sorted((_token(t).address, 5) for t in range(3) for _ in wcs)


def _lst_position(wc, amount: int, lst: AssetRef) -> Position:
    return Position(owner=wc.wallet.address, protocol="liquid_staking", kind="staking", ref=lst.address,
                    legs=(PositionLeg(asset=NATIVE_REF, amount=amount, role="staked"),), accounts_for=(lst.address,))


def test_a_token_a_position_accounts_for_is_counted_inside_it_only(owner):
    (wc,) = _wallet_chains(owner, 1)
    lst = _token(7)
    result = _result([wc], 0, 10, positions=[_lst_position(wc, 2 * 10**18, lst)])
    result = FetchResult(balances=result.balances + (TokenBalance(owner=wc.wallet.address, asset=lst, amount=19 * 10**17),),
                         height=10, endpoint="test", positions=result.positions)
    _sync([wc], result)
    # The LST balance (what Solana's adapter returns alongside its position) is not a holding too.
    assert not Holding.objects.filter(wallet_chain=wc, asset__address=lst.address).exists()
    assert PositionRow.objects.get(wallet_chain=wc).details["accounts_for"] == [lst.address]


def test_a_protocol_that_could_not_all_be_read_keeps_its_previous_positions(owner):
    (wc,) = _wallet_chains(owner, 1)
    lst = _token(8)
    _sync([wc], _result([wc], 0, 10, positions=[_lst_position(wc, 2 * 10**18, lst)]))
    # Next sync: the protocol's contract reverted, so its position is missing and its token shows up as
    # a plain balance; the adapter says the protocol is incomplete.
    broken = FetchResult(balances=(TokenBalance(owner=wc.wallet.address, asset=NATIVE_REF, amount=7 * 10**17),
                                   TokenBalance(owner=wc.wallet.address, asset=lst, amount=19 * 10**17)),
                         height=11, endpoint="test", problems=(Problem("protocol_failed", "reverted", protocol="liquid_staking"),),
                         incomplete_protocols=("liquid_staking",))
    _sync(_reload([wc]), broken)
    kept = PositionRow.objects.get(wallet_chain=wc)
    assert kept.protocol == "liquid_staking" and [leg.amount for leg in kept.legs.all()] == [2 * 10**18]
    assert not Holding.objects.filter(wallet_chain=wc, asset__address=lst.address).exists()  # not twice


def test_an_asset_read_twice_for_a_wallet_is_stored_once_with_the_sum(owner):
    # An adapter may report one asset of a wallet in parts: the stored row is their sum, not the last part.
    wcs = _wallet_chains(owner, 2)
    alice, bob = wcs[0].wallet.address, wcs[1].wallet.address
    result = FetchResult(balances=(
        TokenBalance(owner=alice, asset=NATIVE_REF, amount=5, unconfirmed=1),
        TokenBalance(owner=alice, asset=NATIVE_REF, amount=7, unconfirmed=-2, details={"utxo_count": 2}),
        TokenBalance(owner=bob, asset=_token(1), amount=3),
    ), height=5, endpoint="test")
    prepared = _sync(wcs, result)

    stored = {(h.wallet_chain_id, h.asset.address): h for h in Holding.objects.select_related("asset")}
    native = stored[(wcs[0].id, "")]
    assert (native.amount, native.unconfirmed, native.details) == (12, -1, {"utxo_count": 2})
    assert stored[(wcs[1].id, _token(1).address)].amount == 3
    assert len(stored) == 2
    assert prepared.built[wcs[0].id].counts["balances"] == 1
    assert prepared.built[wcs[1].id].counts["balances"] == 1


class UpdateCounter:
    """Every UPDATE the connection runs, with whether it went as an executemany."""

    def __init__(self):
        self.calls: list[tuple[str, bool, int]] = []

    def __call__(self, execute, sql, params, many, context):
        if sql.lstrip().upper().startswith("UPDATE"):
            self.calls.append((sql, many, len(params)))
        return execute(sql, params, many, context)


def test_update_rows_writes_nulls_json_uint256_amounts_and_times_exactly_in_one_statement_of_one_array_per_column(owner, monkeypatch):
    wcs = _wallet_chains(owner, 3)
    _sync(wcs, _result(wcs, 99, 100))
    holdings = list(Holding.objects.order_by("id"))
    assert len(holdings) == 300
    at = sync_run.timezone.now().replace(microsecond=123456)
    details = [{}, {"utxo_count": 2, "tags": ["a", "it's \"quoted\"", None]}, {"nested": {"k": None, "ü": 1.5}}, {"s": "tab\tline\nend\\"}]
    for i, h in enumerate(holdings):
        h.amount = (2**256 - 1 - i) if i % 3 == 0 else 0 if i % 3 == 1 else i
        h.unconfirmed = -(10**77) + i if i % 2 else 0
        h.height = None if i % 2 else 10**15 + i
        h.fetched_at = None if i % 5 == 0 else at.replace(second=i % 60)
        h.details = details[i % 4]
    counter = UpdateCounter()
    with connection.execute_wrapper(counter):
        store.update_rows(Holding, ["amount", "unconfirmed", "height", "fetched_at", "details"], holdings)
    if connection.vendor == "postgresql":
        assert [(many, n) for _, many, n in counter.calls] == [(False, 7)]  # one statement: a JSON array per column (5 + the ids), the ids' array
    else:
        assert [many for _, many, _ in counter.calls] == [True]  # one executemany
    stored = {h.id: h for h in Holding.objects.all()}
    for h in holdings:
        got = stored[h.id]
        assert (got.amount, got.unconfirmed, got.height, got.fetched_at, got.details) == (
            h.amount, h.unconfirmed, h.height, h.fetched_at, h.details)

    if connection.vendor == "postgresql":
        monkeypatch.setattr(store, "VALUES_ROWS", 128)
        counter = UpdateCounter()
        for h in holdings:
            h.amount, h.details = 5, {"x": h.id}
        with connection.execute_wrapper(counter):
            store.update_rows(Holding, ["amount", "details"], holdings)
        assert [n for _, _, n in counter.calls] == [4, 4, 4]  # chunks of 128, 128 and 44 rows
        assert {h.id: (h.amount, h.details) for h in Holding.objects.all()} == {h.id: (5, {"x": h.id}) for h in holdings}


def test_update_rows_keeps_texts_exactly_as_written(owner):
    """On PostgreSQL the rows go as one JSON array of texts per column, cast on the server: a text that
    is NULL, braces, commas, quotes, backslashes, blank or not ASCII must come back as written, and an empty list of
    problems or cursors as JSON."""
    wcs = _wallet_chains(owner, 8)
    texts = ["NULL", "{a,b}", 'say "hi", \\ then', "", " spaced ", "ü ñ 😀", "tab\there\nnewline", "x" * 300]
    for wc, text in zip(wcs, texts):
        wc.last_error, wc.endpoint = text, text[::-1][:300]
        wc.cursors, wc.problems = ({"logs": {"from": 10**20, "note": text}}, [{"code": "c", "message": text}]) if text else ({}, [])
    store.update_rows(WalletChain, ["last_error", "endpoint", "cursors", "problems"], wcs)
    stored = {wc.id: wc for wc in WalletChain.objects.filter(id__in=[wc.id for wc in wcs])}
    for wc in wcs:
        got = stored[wc.id]
        assert (got.last_error, got.endpoint, got.cursors, got.problems) == (wc.last_error, wc.endpoint, wc.cursors, wc.problems)


def test_any_is_in_on_every_database(owner):
    """``__any`` (one array parameter on PostgreSQL) selects what ``__in`` selects: ids, foreign keys
    given as ids or rows, repeated ids, None, and nothing for an empty list."""
    wcs = _wallet_chains(owner, 4)
    _sync(wcs, _result(wcs, 3, 100))
    ids = [wc.id for wc in wcs]
    for lookup in (ids[:2], ids[:2] + ids[:1], [None, ids[3]], [], ids):
        assert set(WalletChain.objects.filter(id__any=lookup)) == set(WalletChain.objects.filter(id__in=lookup))
        assert (sorted(Holding.objects.filter(wallet_chain_id__any=lookup).values_list("id", flat=True))
                == sorted(Holding.objects.filter(wallet_chain_id__in=lookup).values_list("id", flat=True)))
    assert Holding.objects.filter(wallet_chain__any=wcs[:2]).count() == Holding.objects.filter(wallet_chain__in=wcs[:2]).count() > 0
    assert list(WalletChain.objects.filter(wallet__address__any=[wcs[1].wallet.address])) == [wcs[1]]
    # a frozenset (any_of: not walked value by value by the ORM) selects the same; ids beyond 32 bits too
    assert set(WalletChain.objects.filter(id__any=any_of(ids[1:] + [2**40]))) == set(wcs[1:])
    assert not WalletChain.objects.filter(id__any=any_of([])).exists()
    with CaptureQueriesContext(connection) as seen:
        list(WalletChain.objects.filter(id__any=any_of(ids)))
    sql = seen.captured_queries[0]["sql"]
    if connection.vendor == "postgresql":  # one array, as its literal text
        assert "= ANY('{" in sql and "::bigint[])" in sql
    else:  # the ids' digits in the statement, no placeholder each
        inlined = re.search(r"IN \((\d+(?:,\d+)*)\)", sql)
        assert inlined and sorted(map(int, inlined.group(1).split(","))) == sorted(ids)


def test_a_sync_loads_its_wallet_chains_as_the_orm_would_with_their_wallet_and_chain(owner, django_assert_num_queries):
    wcs = _wallet_chains(owner, 3)
    _sync(wcs, _result(wcs, 2, 100))
    ids = [wc.id for wc in wcs]
    with django_assert_num_queries(2):  # the rows with their wallets, and their chain
        loaded = sync_run.load_wallet_chains(ids)
    with django_assert_num_queries(0):
        seen = [(wc.wallet.address, wc.wallet.owner_id, wc.chain.slug, wc.last_ok_at, wc.cursors, wc.stored_fingerprint) for wc in loaded]
    orm = {wc.id: wc for wc in WalletChain.objects.select_related("wallet", "chain").filter(id__in=ids)}
    assert sorted(seen) == sorted((o.wallet.address, o.wallet.owner_id, o.chain.slug, o.last_ok_at, o.cursors, o.stored_fingerprint)
                                  for o in orm.values())
    assert {wc.chain for wc in loaded} == {wcs[0].chain} and len({id(wc.chain) for wc in loaded}) == 1
    first = loaded[0]
    assert not first._state.adding and first._state.db == "default"
    assert "next_due_at" in first.get_deferred_fields() and "label" in first.wallet.get_deferred_fields()
    with django_assert_num_queries(2):  # a deferred column is read on access, as with only()
        assert first.next_due_at == orm[first.id].next_due_at and first.wallet.label == orm[first.id].wallet.label
    assert first == orm[first.id] and first.wallet == orm[first.id].wallet
    first.status = WalletChain.FAILED
    first.save(update_fields=["status"])
    assert WalletChain.objects.get(id=first.id).status == WalletChain.FAILED
