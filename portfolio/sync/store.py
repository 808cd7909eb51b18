"""Writing a fetch's results: asset rows, and the holdings, NFTs and positions of WalletChains, written
by key through one diff writer (insert new keys, update changed rows, delete vanished ones; one
statement per kind and change: COPY on PostgreSQL, one executemany elsewhere).

``prepare`` reads the stored rows, diffs and converts everything before the caller's transaction opens
(on SQLite that transaction holds the database's one write lock); ``replace`` runs inside it. A
WalletChain whose fetch has the fingerprint of what is stored (``fingerprint``) is left out of both."""

from __future__ import annotations

import json
import logging
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field, replace as replaced
from datetime import datetime
from decimal import Decimal
from itertools import chain as iter_chain, repeat
from operator import attrgetter, itemgetter
from typing import Any, Iterable, Iterator, Sequence

from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction

from chains.base import NATIVE, AssetRef, FetchResult
from chains.gcpause import without_cyclic_gc
from portfolio import totals
from portfolio.fields import AMOUNT_DIGITS, AmountField
from portfolio.lookups import any_of, array_param, int_array
from portfolio.models import Asset, Chain, Holding, NftItem, Position, PositionLeg, WalletChain
from portfolio.services.prices import store_quotes
from portfolio.sync import fingerprint
from portfolio.sync.fingerprint import UNREAD_CODES
from portfolio.sync.spam import spam_reason

log = logging.getLogger(__name__)


def asset_key(address: str | None) -> str:
    """The Asset.address of a reference: "" for the native asset."""
    return address or ""


# --------------------------------------------------------------------------- assets and prices


def upsert_assets(chain: Chain, refs: Iterable[AssetRef]) -> dict[str, Asset]:
    """Asset rows for ``refs`` by key ("" for native), creating discovered ones (spam-checked). Asset
    rows are shared reference data created idempotently, so this needs no write lock of a sync."""
    wanted: dict[str, AssetRef] = {}
    refs = list(refs)
    # A fetch repeats one AssetRef object per wallet (25,000 refs for 100 assets): the distinct objects
    # first, at C speed (in order of first appearance), then the first ref of each address wins.
    for ref in dict(zip(map(id, refs), refs)).values():
        wanted.setdefault(asset_key(ref.address), ref)
    rows = {a.address: a for a in Asset.objects.filter(chain=chain, address__in=list(wanted))}
    missing = [_new_asset(chain, key, ref) for key, ref in wanted.items() if key not in rows]
    if missing:
        Asset.objects.bulk_create(missing, ignore_conflicts=True)
        rows.update({a.address: a for a in Asset.objects.filter(chain=chain, address__in=[m.address for m in missing])})
    return rows


LOGO_SCHEMES = ("http://", "https://", "ipfs://", "ar://")  # fetched later by the logo worker's safe fetcher


def _new_asset(chain: Chain, key: str, ref: AssetRef) -> Asset:
    reason = "" if ref.kind == NATIVE else spam_reason(ref.symbol, ref.name)
    logo = (ref.logo_url or "")[:500]
    return Asset(
        chain=chain, kind=ref.kind, address=key, standard=ref.standard or "native",
        symbol=(ref.symbol or "?")[:64], name=(ref.name or "")[:200], decimals=ref.decimals,
        logo_url=logo if logo.startswith(LOGO_SCHEMES) else "",
        listed=False, is_spam=bool(reason), spam_reason=reason[:200], oracle_address=ref.oracle or "",
    )


def store_price_quotes(chain: Chain, quotes) -> None:
    """Store the on-chain oracle quotes read during the fetch. Prices are a by-product: a failure is
    logged, never turned into a failed sync."""
    if not quotes:
        return
    try:
        with transaction.atomic():
            store_quotes(chain, list(quotes))
    except Exception:  # noqa: BLE001 - see above
        log.exception("storing oracle prices of %s failed", chain.slug)


# --------------------------------------------------------------------------- writing a fetch's state


@dataclass(frozen=True)
class RowKind:
    """A table of per-WalletChain rows written by key: the ``key`` columns name a row (its unique
    constraint), the ``values`` columns are compared with the stored ones and rewritten when they differ."""

    model: Any
    key: tuple[str, ...]
    values: tuple[str, ...]

    @property
    def columns(self) -> tuple[str, ...]:
        return self.key + self.values

    def stored(self, wallet_chain_ids: Sequence[int]) -> dict[tuple, tuple[int, tuple]]:
        """The stored rows of ``wallet_chain_ids`` as key -> (id, values), read as plain tuples: a group
        of 250 wallets holds 25,000 rows, read on every sync, and a model instance each would cost
        more than the writes it saves."""
        n = len(self.key)
        queryset = self.model.objects.filter(wallet_chain_id__in=list(wallet_chain_ids)).values_list("id", *self.columns)
        sql, params = queryset.query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            raw = cursor.fetchall()
        if not raw:
            return {}
        fields = [self.model._meta.pk] + [self.model._meta.get_field(name) for name in self.columns]
        columns = [_from_db_column(f, values) for f, values in zip(fields, zip(*raw))]
        # zip and dict at C speed: no Python-level loop over the rows
        return dict(zip(zip(*columns[1:n + 1]), zip(columns[0], zip(*columns[n + 1:]))))


# ``height``/``fetched_at`` stay NULL while a row holds what the WalletChain's last good sync read (the
# readers take wc.height and wc.last_ok_at then, models.ReadAt): a steady-state sync rewrites no row
# just because the block moved. They are set on an amount carried over stale, to when it was read.
HOLDINGS = RowKind(Holding, ("wallet_chain", "asset"), ("amount", "unconfirmed", "height", "fetched_at", "details"))
NFTS = RowKind(NftItem, ("wallet_chain", "collection", "token_id"),
               ("amount", "name", "description", "image_url", "metadata_url", "height", "fetched_at"))
POSITIONS = RowKind(Position, ("wallet_chain", "protocol", "ref"), ("kind", "label", "health_factor", "details", "height", "fetched_at"))
LEG_COLUMNS = ("position", "asset", "amount", "role")


@dataclass
class Diff:
    """What turns one kind's stored rows into the new ones: INSERT the new keys (COPY on PostgreSQL),
    UPDATE the changed rows by id, DELETE the vanished ones, one statement each and none when nothing
    changed. The statements are built (values converted) before the transaction that runs them."""

    kind: RowKind
    inserted: list[tuple]
    updated: dict[tuple, int]
    deleted: list[int]
    statements: list["_Statement"]

    @property
    def counts(self) -> tuple[int, int, int]:
        return len(self.inserted), len(self.updated), len(self.deleted)

    def run(self) -> None:
        for statement in self.statements:
            run_statement(statement)


def diff_rows(kind: RowKind, stored: dict[tuple, tuple[int, tuple]], new: dict[tuple, tuple]) -> Diff:
    """The statements writing ``new`` (key -> values) over ``stored`` (key -> (id, values))."""
    if len(new) == len(stored) and new == dict(zip(stored, map(itemgetter(1), stored.values()))):
        return Diff(kind, [], {}, [], [])  # nothing changed (the steady state): one comparison at C speed
    inserts: list[tuple] = []
    updates: list[tuple] = []
    updated: dict[tuple, int] = {}
    for key, values in new.items():
        old = stored.get(key)
        if old is None:
            inserts.append(key + values)
        elif old[1] != values:
            updates.append(values + (old[0],))
            updated[key] = old[0]
    deleted = [pk for key, (pk, _) in stored.items() if key not in new]
    statements = [prepare_delete(kind.model, "id", deleted), prepare_update(kind.model, kind.values, updates),
                  prepare_insert(kind.model, kind.columns, inserts)]
    n = len(kind.key)
    return Diff(kind, [row[:n] for row in inserts], updated, deleted, [s for s in statements if s is not None])


@dataclass
class Built:
    """The new rows of one WalletChain but its holdings (``Prepared.holdings``), by key: NFTs as value
    tuples of their RowKind, positions as (value tuple, sorted legs of (asset id, amount, role)), and
    counts for the run item."""

    nfts: dict[tuple, tuple]
    positions: dict[tuple, tuple[tuple, tuple]]
    counts: dict[str, int]


@dataclass
class Prepared:
    """Everything ``replace`` writes, built before the transaction from the stored rows as they were
    when ``seen`` (each WalletChain's last_ok_at, height and stored fingerprint) was read. The
    ``unchanged`` WalletChains (the fetch has their stored fingerprint) have no rows built or diffed."""

    wallet_chains: list[WalletChain]
    result: FetchResult
    now: datetime
    assets: dict[str, Asset]
    holdings: dict[tuple, tuple]  # the new holdings of every WalletChain: key -> HOLDINGS values
    built: dict[int, Built]
    unread: set[str]
    ids: list[int] = field(default_factory=list)
    seen: dict[int, tuple] = field(default_factory=dict)
    diffs: list[Diff] = field(default_factory=list)
    new_legs: dict[tuple, tuple] = field(default_factory=dict)  # position key -> legs, for positions whose legs change
    total_changes: dict[tuple, tuple[int, int]] = field(default_factory=dict)  # (wc id, asset id) -> (amount, holders) delta
    drop_legs: "_Statement | None" = None
    fingerprints: fingerprint.Fingerprints = field(default_factory=fingerprint.Fingerprints)
    unchanged: set[int] = field(default_factory=set)

    @property
    def changed_ids(self) -> list[int]:
        return [pk for pk in self.ids if pk not in self.unchanged]

    def fingerprint_of(self, wc_id: int) -> str:
        """What to store as the WalletChain's fingerprint once this is written: empty unless its rows
        are now exactly the fetched ones (see ``fingerprint.of_fetch``)."""
        return self.fingerprints.by_id.get(wc_id, "")

    @property
    def written(self) -> dict[str, tuple[int, int, int]]:
        """Rows (inserted, updated, deleted) per table: all zero for a sync that found nothing new."""
        return {d.kind.model._meta.model_name: d.counts for d in self.diffs}


# A fetch's rows are built and diffed with the collector paused: that allocates a few hundred thousand
# tuples and dicts (none in a cycle), and each collection the allocations set off walks the worker's
# whole heap again; measured, the pauses tripled the time of ``prepare``.
@without_cyclic_gc()
def prepare(wallet_chains: Sequence[WalletChain], result: FetchResult, now: datetime) -> Prepared:
    """Upsert the result's assets, build the new rows of every WalletChain the fetch changes and diff
    them against the stored ones (no write lock held). The WalletChains it does not change (their
    stored fingerprint is the fetch's: the steady state) are left out, their rows neither read nor
    built; ``seen`` is taken from the instances as loaded, before the fetch."""
    fingerprints = fingerprint.of_fetch(wallet_chains, result)
    unchanged = fingerprints.unchanged(wallet_chains)
    prepared = Prepared(
        wallet_chains=list(wallet_chains), result=result, now=now, assets={}, holdings={},
        built={wc_id: Built({}, {}, dict(fingerprints.counts[wc_id])) for wc_id in unchanged},
        unread={p.subject for p in result.problems if p.code in UNREAD_CODES}, ids=[wc.id for wc in wallet_chains],
        seen={wc.id: (wc.last_ok_at, wc.height, wc.stored_fingerprint) for wc in wallet_chains},
        fingerprints=fingerprints, unchanged=unchanged,
    )
    _build(prepared)
    if prepared.changed_ids:
        _plan(prepared)
    return prepared


def _build(prepared: Prepared) -> None:
    """Upsert the assets of the changed WalletChains' rows (and of the price quotes) and build those rows."""
    changed = [wc for wc in prepared.wallet_chains if wc.id not in prepared.unchanged]
    result = _rows_of(prepared, changed)
    refs: list[AssetRef] = [b.asset for b in result.balances] + [n.collection for n in result.nfts]
    refs += [leg.asset for p in result.positions for leg in p.legs] + [q.asset for q in result.prices]
    if refs:
        prepared.assets = upsert_assets(prepared.wallet_chains[0].chain, refs)
    if not changed:
        return
    assets = prepared.assets
    parts = _partition(changed, result)
    prepared.holdings = _holding_rows(changed, result, parts, assets)
    built = {wc.id: _new_rows(wc, parts[wc.id], assets) for wc in changed}
    for wc_id, n in Counter(map(itemgetter(0), prepared.holdings)).items():
        built[wc_id].counts["balances"] = n
    prepared.built.update(built)


def _rows_of(prepared: Prepared, wallet_chains: list[WalletChain]) -> FetchResult:
    """The fetch with only the rows of ``wallet_chains`` (all of it when they are all its WalletChains)."""
    result, fingerprints = prepared.result, prepared.fingerprints
    if len(wallet_chains) == len(prepared.wallet_chains):
        return result
    balances = result.balances
    return replaced(result, balances=tuple(b for wc in wallet_chains for start, stop in fingerprints.balance_rows[wc.id]
                                           for b in balances[start:stop]),
                    nfts=tuple(n for wc in wallet_chains for n in fingerprints.nfts[wc.id]),
                    positions=tuple(p for wc in wallet_chains for p in fingerprints.positions[wc.id]))


def replace(prepared: Prepared) -> None:
    """Make the stored holdings, NFTs and positions of the prepared WalletChains the fetched ones,
    writing only the rows that changed; call inside the caller's transaction so readers see the old or
    the new state, never a mix. An asset whose read failed this time keeps its last good amount,
    flagged stale (``counts["stale"]``).

    The diff was computed before the transaction; should another writer have stored these WalletChains
    since (their last_ok_at, height or fingerprint moved), it is computed again, for every one of them,
    from the rows as they are now."""
    seen = WalletChain.objects.filter(id__any=any_of(prepared.ids)).order_by("id")
    if connection.vendor == "postgresql":  # serialise with other writers of these rows (ordered: no deadlocks)
        seen = seen.select_for_update()
    now_seen = _versions(seen)
    if now_seen != prepared.seen:  # another writer came first: diff every WalletChain against its rows as they are now
        with without_cyclic_gc():
            prepared.unchanged = set()
            _build(prepared)
            prepared.seen = now_seen
            _plan(prepared)
    run_statement(prepared.drop_legs)  # before their positions go
    for diff in prepared.diffs:
        diff.run()
    if prepared.new_legs:
        _insert_legs(prepared)
    totals.apply_holding_changes(prepared.wallet_chains, prepared.total_changes)  # nothing when no holding changed


def _versions(queryset) -> dict[int, tuple]:
    return {pk: (ok_at, height, stored) for pk, ok_at, height, stored in
            queryset.values_list("id", "last_ok_at", "height", "stored_fingerprint")}


def _plan(prepared: Prepared) -> None:
    """Read the stored rows of the changed WalletChains and diff the new ones against them
    (``prepared.diffs``); ``prepared.seen`` must have been read before."""
    ids = prepared.changed_ids
    stored = HOLDINGS.stored(ids)
    holdings = prepared.holdings  # not changed in place: a second _plan (see replace) starts from it again
    if prepared.unread:
        holdings = {**holdings, **_carried(prepared, stored, holdings)}
    nfts = {key: values for b in prepared.built.values() for key, values in b.nfts.items()}
    positions = {key: p for b in prepared.built.values() for key, p in b.positions.items()}
    stored_positions = POSITIONS.stored(ids)
    incomplete = set(prepared.result.incomplete_protocols)
    if incomplete:  # a protocol that could not all be read keeps its previous positions as they were
        kept = {key: row for key, row in stored_positions.items() if key[1] in incomplete}
        stored_positions = {key: row for key, row in stored_positions.items() if key not in kept}
        positions = {key: p for key, p in positions.items() if key[1] not in incomplete}
        holdings = _without_accounted(holdings, kept, prepared.assets)
    stored_legs: dict[int, list] = {}
    if stored_positions:
        for position_id, *leg in PositionLeg.objects.filter(position__wallet_chain_id__in=ids).values_list(*LEG_COLUMNS):
            stored_legs.setdefault(position_id, []).append(tuple(leg))
    position_diff = diff_rows(POSITIONS, stored_positions, {key: values for key, (values, _) in positions.items()})
    # Legs are replaced for new positions and for stored ones whose legs differ; vanished ones lose theirs.
    prepared.new_legs = {
        key: legs for key, (_, legs) in positions.items()
        if key not in stored_positions or tuple(sorted(stored_legs.get(stored_positions[key][0], ()))) != legs
    }
    dropped = [stored_positions[key][0] for key in prepared.new_legs if key in stored_positions] + position_diff.deleted
    prepared.drop_legs = prepare_delete(PositionLeg, "position", [pk for pk in dropped if pk in stored_legs])
    holding_diff = diff_rows(HOLDINGS, stored, holdings)
    prepared.total_changes = _total_changes(holding_diff, stored, holdings)
    prepared.diffs = [holding_diff, diff_rows(NFTS, NFTS.stored(ids), nfts), position_diff]


def _total_changes(diff: Diff, stored: dict[tuple, tuple[int, tuple]], new: dict[tuple, tuple]) -> dict[tuple, tuple[int, int]]:
    """What the holdings diff changes in the scopes' per-asset totals: (WalletChain id, asset id) ->
    (amount delta, non-zero holdings delta), from the diff's rows only (nothing for an unchanged sync)."""
    out: dict[tuple, tuple[int, int]] = {}
    for key in diff.inserted:
        if new[key][0]:
            out[key] = (new[key][0], 1)
    for key in diff.updated:
        old, amount = stored[key][1][0], new[key][0]
        if old != amount:
            out[key] = (amount - old, (amount != 0) - (old != 0))
    if diff.deleted:
        for key, (_, values) in stored.items():
            if key not in new and values[0]:
                out[key] = (-values[0], -1)
    return out


def _without_accounted(holdings: dict[tuple, tuple], kept: dict[tuple, tuple[int, tuple]], assets: dict[str, Asset]) -> dict[tuple, tuple]:
    """Holdings less the tokens that kept positions account for (they are counted inside them)."""
    by_key = {key.lower(): asset.id for key, asset in assets.items()}
    drop = {(key[0], by_key[a.lower()]) for key, (_, values) in kept.items()
            for a in (values[3] or {}).get("accounts_for", ()) if a.lower() in by_key}
    return {key: row for key, row in holdings.items() if key not in drop}


def _carried(prepared: Prepared, stored: dict[tuple, tuple[int, tuple]], fresh: dict[tuple, tuple]) -> dict[tuple, tuple]:
    """Keep the last good amount of an asset whose read failed this time (a reverting call, a flaky
    node): dropping it would show a balance that vanished. It keeps the height and time it was read
    at (the WalletChain's previous good sync, unless it was stale already)."""
    missing = [key for key in stored if key not in fresh]
    if not missing:
        return {}
    assets = {pk: (address, kind) for pk, address, kind in
              Asset.objects.filter(id__in={key[1] for key in missing}).values_list("id", "address", "kind")}
    by_id = {wc.id: wc for wc in prepared.wallet_chains}
    carried = {}
    for key in missing:
        wc, (address, kind) = by_id[key[0]], assets[key[1]]
        wallet_keys = {wc.wallet.address, wc.wallet.address.lower()}
        if address in prepared.unread or (kind == Asset.NATIVE and prepared.unread & wallet_keys):
            amount, unconfirmed, height, fetched_at, details = stored[key][1]
            last_ok_at, last_height, _ = prepared.seen[wc.id]
            carried[key] = (amount, unconfirmed, last_height if height is None else height,
                            last_ok_at if fetched_at is None else fetched_at, {**details, "stale": True})
    for built in prepared.built.values():
        built.counts["stale"] = 0
    for key in carried:
        prepared.built[key[0]].counts["stale"] += 1
    return carried


def _insert_legs(prepared: Prepared) -> None:
    """The legs of new positions and of positions whose legs changed (their ids: new ones exist now)."""
    keys = set(prepared.new_legs)
    ids = {(wc, protocol, ref): pk for pk, wc, protocol, ref in
           Position.objects.filter(wallet_chain_id__in=prepared.changed_ids).values_list("id", *POSITIONS.key)
           if (wc, protocol, ref) in keys}
    rows = [(ids[key],) + leg for key, legs in prepared.new_legs.items() for leg in legs]
    insert_rows(PositionLeg, LEG_COLUMNS, rows)


def _owner_index(wallet_chains: Sequence[WalletChain]) -> dict[str, WalletChain]:
    index: dict[str, WalletChain] = {}
    for wc in wallet_chains:
        index[wc.wallet.address] = wc
        index[wc.wallet.address.lower()] = wc
    return index


def _partition(wallet_chains: Sequence[WalletChain], result: FetchResult) -> dict[int, dict[str, list]]:
    """Split a (possibly many-wallet) result's NFTs and positions by WalletChain, once: owner ->
    WalletChain (balances, the bulk, go straight into one dict: ``_holding_rows``)."""
    index = _owner_index(wallet_chains)
    single = wallet_chains[0] if len(wallet_chains) == 1 else None
    parts: dict[int, dict[str, list]] = {wc.id: {"nfts": [], "positions": []} for wc in wallet_chains}
    for kind, rows in (("nfts", result.nfts), ("positions", result.positions)):
        for row in rows:
            wc = index.get(row.owner) or index.get(row.owner.lower()) or single
            if wc is not None:
                parts[wc.id][kind].append(row)
    return parts


def _as_stored(details) -> dict:
    """Details as they come back from the JSON column (tuples become lists, keys strings), so an
    unchanged value compares equal to the stored one."""
    return json.loads(json.dumps(details)) if details else {}


_OWNER, _ADDRESS, _AMOUNT, _UNCONFIRMED, _DETAILS = (attrgetter(name) for name in (
    "owner", "asset.address", "amount", "unconfirmed", "details"))


def _holding_rows(wallet_chains: Sequence[WalletChain], result: FetchResult, parts: dict[int, dict[str, list]],
                  assets: dict[str, Asset]) -> dict[tuple, tuple]:
    """The holdings every WalletChain should hold after this fetch, key -> HOLDINGS values (without the
    carried-over stale ones: ``_carried``). The hot path of a big sync (250 wallets x 100 tokens is
    25,000 balances): the columns are picked with ``map`` at C speed and zipped into the dict; the
    per-balance loop below runs only when a balance needs more (an unknown owner, an asset listed
    twice for a wallet, a token a position accounts for)."""
    balances = result.balances
    index = {address: wc.id for address, wc in _owner_index(wallet_chains).items()}
    asset_ids: dict[str | None, int] = {key: asset.id for key, asset in assets.items()}
    if "" in asset_ids:
        asset_ids[None] = asset_ids[""]  # the native asset's reference has no address
    # A token a position of the wallet accounts for (an LST, an LP token) is counted inside it, once.
    accounted = {(wc_id, a.lower()) for wc_id, part in parts.items() for p in part["positions"] for a in p.accounts_for}
    addresses = list(map(_ADDRESS, balances))
    wc_ids = list(map(index.get, map(_OWNER, balances)))
    if not accounted and None not in wc_ids:
        keys = list(zip(wc_ids, map(asset_ids.__getitem__, addresses)))
        details = list(map(_DETAILS, balances))
        details = [_as_stored(d) if d else {} for d in details] if any(details) else [{} for _ in details]
        rows = dict(zip(keys, zip(map(_AMOUNT, balances), map(_UNCONFIRMED, balances), repeat(None), repeat(None), details)))
        if len(rows) == len(keys):
            return rows
    single = wallet_chains[0].id if len(wallet_chains) == 1 else None
    rows = {}
    for b in balances:
        wc_id = index.get(b.owner) or index.get(b.owner.lower()) or single
        address = b.asset.address or ""
        if wc_id is None or (accounted and (wc_id, address.lower()) in accounted):
            continue
        key = (wc_id, asset_ids[address])
        row = rows.get(key)
        if row is None:
            rows[key] = (b.amount, b.unconfirmed, None, None, _as_stored(b.details) if b.details else {})
        else:
            rows[key] = (row[0] + b.amount, row[1] + b.unconfirmed, None, None, row[4] or _as_stored(b.details))
    return rows


def _new_rows(wc: WalletChain, part: dict[str, list], assets: dict[str, Asset]) -> Built:
    """The NFTs and positions ``wc`` should hold after this fetch."""
    nfts: dict[tuple, list] = {}
    for n in part["nfts"]:
        key = (wc.id, assets[asset_key(n.collection.address)].id, n.token_id[:100])
        if key in nfts:
            nfts[key][0] += n.amount
        else:
            nfts[key] = [n.amount, n.name[:200], n.description, n.image_url, n.metadata_url, None, None]

    health = Position._meta.get_field("health_factor")
    positions: dict[tuple, tuple[tuple, tuple]] = {}
    for p in part["positions"]:
        key = (wc.id, p.protocol[:60], p.ref[:120])
        if key not in positions:
            legs = tuple(sorted((assets[asset_key(leg.asset.address)].id, leg.amount, leg.role[:12]) for leg in p.legs))
            details = {**p.details, "accounts_for": list(p.accounts_for)} if p.accounts_for else p.details
            values = (p.kind[:20], p.label[:200], health.to_places(p.health_factor), _as_stored(details), None, None)
            positions[key] = (values, legs)
    counts = {"balances": 0, "nfts": len(nfts), "positions": len(positions), "stale": 0}
    return Built({key: tuple(v) for key, v in nfts.items()}, positions, counts)


# --------------------------------------------------------------------------- the bulk writer


@dataclass
class _Statement:
    """One write of many rows, prepared (values converted) before the transaction that runs it: on
    SQLite that transaction holds the database's one write lock, which the other workers wait for."""

    sql: str
    params: Any  # rows for executemany, the COPY text on PostgreSQL, or one parameter tuple
    mode: str = "many"  # "many": executemany; "copy": COPY ... FROM STDIN; "one": execute; "each": (sql, params) pairs


def prepare_insert(model, field_names: Sequence[str], rows: Sequence[tuple]) -> _Statement | None:
    """Many rows as one executemany INSERT, values prepared by each field (exact amounts, JSON,
    datetimes) a column at a time (``map`` over a column, not a Python call per value); PostgreSQL
    gets COPY. The hot path of a first sync: building a model instance per balance costs more than the
    chain read itself (1,000 wallets x 100 tokens is 100,000 rows)."""
    if not rows:
        return None
    fields = [model._meta.get_field(name) for name in field_names]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    table = connection.ops.quote_name(model._meta.db_table)
    if connection.vendor == "postgresql":  # COPY: ten times faster than INSERTs of the same rows
        text_columns = [_copy_column(values) for values in zip(*rows)]
        lines = "\n".join(map("\t".join, zip(*text_columns))) + "\n"
        return _Statement(f"COPY {table} ({columns}) FROM STDIN", lines, mode="copy")
    prepared = list(zip(*(_prep_column(f, values) for f, values in zip(fields, zip(*rows)))))
    placeholders = ", ".join(["%s"] * len(fields))
    return _Statement(f"INSERT INTO {table} ({columns}) VALUES ({placeholders})", prepared)


def prepare_update(model, field_names: Sequence[str], rows: Sequence[tuple]) -> _Statement | None:
    """UPDATE ``field_names`` of many rows by id; each row is its values then its id. One statement per
    10,000 rows on PostgreSQL (``_values_update``), one executemany elsewhere."""
    if not rows:
        return None
    *columns, ids = zip(*rows)
    return _update_statement(model, field_names, columns, ids)


def _update_statement(model, field_names: Sequence[str], columns: Sequence[Sequence[Any]], ids: Sequence[int]) -> _Statement:
    """The UPDATE of ``field_names`` (each one's values in ``columns``, converted a column at a time)
    of the rows ``ids``: ``_values_update``'s statements on PostgreSQL, one executemany elsewhere."""
    fields = [model._meta.get_field(name) for name in field_names]
    if connection.vendor == "postgresql":
        return _Statement("", _values_update(model, fields, columns, ids), mode="each")
    params = list(zip(*(_prep_column(f, values) for f, values in zip(fields, columns)), ids))
    assignments = ", ".join(f"{connection.ops.quote_name(f.column)} = %s" for f in fields)
    return _Statement(f"UPDATE {connection.ops.quote_name(model._meta.db_table)} SET {assignments} WHERE id = %s", params)


# Rows per UPDATE statement on PostgreSQL: bounds one statement's text on the wire.
VALUES_ROWS = 10000


def _values_update(model, fields: Sequence[Any], columns: Sequence[Sequence[Any]], ids: Sequence[int]) -> list[tuple[str, list]]:
    """``columns`` (one per field, a value per row) of the rows ``ids`` as ``UPDATE t SET a = v.a::type
    ... FROM ROWS FROM (jsonb_array_elements_text(%s::jsonb), ...) AS v (a, ..., __id) WHERE t.id =
    v.__id::type`` statements: each column goes as ONE parameter, the JSON array of its values' texts
    (made by ``json.dumps`` at C speed; null for SQL NULL), and the server casts each text to its
    column's type. A JSON column without NULLs goes as the JSON array of its values themselves
    (``jsonb_array_elements``: one ``json.dumps`` for the column, not one per value). With one
    placeholder per value instead, psycopg (which binds client-side: it scans the query text for
    placeholders and quotes every value into it) and the server both worked per value, and an array
    parameter is escaped element by element in Python. varchar keeps no length in the cast (a too
    long value fails as in a plain UPDATE, not truncated)."""
    qn = connection.ops.quote_name
    names = [qn(f.column) for f in fields]
    as_json = [f.get_internal_type() == "JSONField" and None not in column for f, column in zip(fields, columns)]
    types = [_cast_type(f) for f in fields] + [model._meta.pk.rel_db_type(connection)]
    sets = ", ".join(f"{n} = v.{n}::{t}" for n, t in zip(names, types))
    arrays = ", ".join([f"jsonb_array_elements{'' if j else '_text'}(%s::jsonb)" for j in as_json] + ["jsonb_array_elements_text(%s::jsonb)"])
    pk = f"t.{qn(model._meta.pk.column)}"
    # The ids once more as an array: the planner then finds the rows through the primary key (a
    # set-returning function is estimated at 100 rows: it would hash-join a scan of the whole table).
    sql = (f"UPDATE {qn(model._meta.db_table)} AS t SET {sets} FROM ROWS FROM ({arrays}) AS v ({', '.join(names)}, __id) "
           f"WHERE {pk} = v.__id::{types[-1]} AND {pk} = ANY(%s::{types[-1]}[])")
    statements = []
    for start in range(0, len(ids), VALUES_ROWS):
        part = slice(start, start + VALUES_ROWS)
        chunk_ids = list(ids[part])
        texts = [_json_array(column[part], field.encoder) if j else _json_array(_column_texts(_prep_column(field, column[part])))
                 for field, column, j in zip(fields, columns, as_json)]
        statements.append((sql, [*texts, _json_array(list(map(str, chunk_ids))), int_array(chunk_ids)]))
    return statements


def _json_array(values: Sequence[Any], encoder=None) -> str:
    return json.dumps(list(values), cls=encoder, ensure_ascii=False, separators=(",", ":"))


def _column_texts(values: Sequence[Any]) -> list[str | None]:
    """One column's prepared values as the texts PostgreSQL reads for its type (None for SQL NULL):
    ints and Decimals as their digits (exact: never through a float), datetimes in ISO 8601 with their
    offset, booleans as true/false, JSON (psycopg's ``Jsonb`` wrapper) as its JSON text. A column of
    one value (a group's status and time) is converted once."""
    if _one_value(values):
        return [_text(values[0])] * len(values)
    if all(type(v) is int for v in values):
        return list(map(str, values))
    return list(map(_text, values))


def _text(value: Any) -> str | None:
    if value is None or type(value) is str:
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, Decimal)):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "obj") and hasattr(value, "dumps"):  # psycopg's Jsonb / Json: what JSONField prepares
        return (value.dumps or json.dumps)(value.obj)
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        raise TypeError("binary values are not written by the bulk writes of store")
    return str(value)  # date, time, UUID: their str() is what the type's input reads


def _cast_type(field) -> str:
    db_type = field.db_type(connection)
    return "varchar" if db_type.startswith("varchar(") else db_type


def prepare_delete(model, field_name: str, values: Sequence[int]) -> _Statement | None:
    """DELETE the rows whose ``field_name`` (the id, or a foreign key) is one of ``values``: one
    statement (``= ANY`` of an array on PostgreSQL, an executemany elsewhere: no limit on parameters)."""
    if not values:
        return None
    column = connection.ops.quote_name(model._meta.get_field(field_name).column)
    sql = f"DELETE FROM {connection.ops.quote_name(model._meta.db_table)} WHERE {column}"
    if connection.vendor == "postgresql":
        placeholder, param = array_param(list(values))
        return _Statement(f"{sql} = ANY({placeholder})", (param,), mode="one")
    return _Statement(f"{sql} = %s", [(v,) for v in values])


@contextmanager
def pipelined() -> Iterator[None]:
    """Run the block's statements without waiting for each one's answer: PostgreSQL's pipeline mode
    sends them back to back and reads the answers at the end, one round trip instead of one each
    (on a busy machine each round trip also waits for the server process to be scheduled). Only for
    statements whose results nobody reads (an UPDATE's row count reads -1 inside); an error is
    raised at the end of the block, as Django's own exception. Elsewhere the block runs as it is."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        yield
        return
    connection.ensure_connection()
    with connection.wrap_database_errors, connection.connection.pipeline():
        yield


def run_statement(statement: _Statement | None) -> None:
    if statement is None:
        return
    with connection.cursor() as cursor:
        if statement.mode == "copy":
            with cursor.copy(statement.sql) as copy:
                copy.write(statement.params)
        elif statement.mode == "one":
            cursor.execute(statement.sql, statement.params)
        elif statement.mode == "each":
            for sql, params in statement.params:
                cursor.execute(sql, params)
        else:
            cursor.executemany(statement.sql, statement.params)


def insert_rows(model, field_names: Sequence[str], rows: Sequence[tuple]) -> None:
    """INSERT many rows (see ``prepare_insert``)."""
    run_statement(prepare_insert(model, field_names, rows))


_PLAIN = (str, int, bool, datetime)


def _one_value(values: Sequence[Any]) -> bool:
    """Whether a column holds one value many times, over and over the same text once converted: None,
    a string, int, bool or datetime, an empty dict or list (not, say, Decimal("1.0") among Decimal("1"),
    equal but written differently), all of one type. At C speed."""
    if len(values) < 2:
        return False
    first = values[0]
    plain = first is None or type(first) in _PLAIN or (type(first) in (dict, list) and not first)
    return plain and values.count(first) == len(values) and len(set(map(type, values))) == 1


def _prep_column(field, values: Sequence[Any]) -> Sequence[Any]:
    """One column's values as the database adapter takes them. Amounts that are all plain ints in
    range become their digits at C speed (what ``AmountField`` stores off PostgreSQL); anything else
    goes through the field. A column of one value (defaults, NULLs) is converted once."""
    if _one_value(values):
        prep = _prep_for(field)
        return [values[0] if prep is None else prep(values[0])] * len(values)
    if isinstance(field, AmountField) and connection.vendor != "postgresql" and all(type(v) is int for v in values):
        if -(10**AMOUNT_DIGITS) < min(values) and max(values) < 10**AMOUNT_DIGITS:
            return list(map(str, values))
    prep = _prep_for(field)
    return values if prep is None else list(map(prep, values))


def _copy_column(values: Sequence[Any]) -> Sequence[str]:
    """One column in COPY text format; a column of plain ints (ids, amounts) at C speed, a column of
    datetimes (nearly all the same ``now``) formatted once per distinct value, a column of one value
    (defaults, NULLs) once."""
    if _one_value(values):
        return [_copy_text(values[0])] * len(values)
    if all(type(v) is int for v in values):
        return list(map(str, values))
    if all(type(v) is datetime for v in values):
        texts = {v: v.isoformat() for v in set(values)}
        return list(map(texts.__getitem__, values))
    return list(map(_copy_text, values))


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(value: Any) -> str:
    """One value in PostgreSQL's COPY text format: its text as ``_text`` writes it (ints stay exact:
    NUMERIC parses the digits), escaped; NULL as \\N."""
    text = _text(value)
    return "\\N" if text is None else text.translate(_COPY_ESCAPES)


def update_rows(model, field_names: Sequence[str], objs: Sequence[Any]) -> None:
    """UPDATE each object's ``field_names`` by primary key: one statement per 10,000 rows on PostgreSQL
    (``_values_update``), one executemany elsewhere; values converted a column at a time (a column of
    one value, e.g. a group's status and time, once)."""
    if not objs:
        return
    columns = [list(map(attrgetter(model._meta.get_field(name).attname), objs)) for name in field_names]
    run_statement(_update_statement(model, field_names, columns, list(map(attrgetter("pk"), objs))))


def _prep_for(field):
    """A one-argument function turning a Python value into what the database adapter takes (None:
    the value is taken as is)."""
    kind = field.get_internal_type()
    if kind in ("ForeignKey", "BigIntegerField", "IntegerField", "PositiveSmallIntegerField", "BigAutoField"):
        return None  # taken as is
    conn = connections[DEFAULT_DB_ALIAS]  # the real connection: the proxy's attribute lookups add up
    if kind == "JSONField":
        empty = field.get_db_prep_save({}, conn)
        return lambda v: empty if v == {} else field.get_db_prep_save(v, conn)
    if kind == "DateTimeField":
        cache: dict[Any, Any] = {}

        def prep_datetime(v):
            if v not in cache:
                cache[v] = field.get_db_prep_save(v, conn)
            return cache[v]

        return prep_datetime
    return lambda v: field.get_db_prep_save(v, conn)




def _from_db_column(field, values: Sequence[Any]) -> Sequence[Any]:
    """One column as the ORM would return it, without its per-value converter calls where a column is
    all alike (the stored rows of a steady-state sync are read on every sync): amounts are the digits
    of an int (a Decimal on PostgreSQL), details mostly the empty object."""
    if isinstance(field, AmountField):
        try:
            return list(map(int, values))  # digits (SQLite) or a Decimal (PostgreSQL): C speed
        except (TypeError, ValueError):
            return [None if v is None else int(Decimal(v)) for v in values]
    if field.get_internal_type() == "JSONField":
        return [{} if v == "{}" else json.loads(v) if isinstance(v, str) else v for v in values]
    converters = connection.ops.get_db_converters(field.cached_col) + field.get_db_converters(connection)
    if not converters or values.count(None) == len(values):  # e.g. height and fetched_at: NULL but on stale rows
        return values
    out = []
    for v in values:
        if v is not None:
            for convert in converters:
                v = convert(v, field.cached_col, connection)
        out.append(v)
    return out
