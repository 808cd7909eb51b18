"""Writing a fetch's results: asset rows, and the holdings, NFTs and positions of WalletChains replaced
as a set, through one bulk writer (COPY on PostgreSQL, one executemany elsewhere).

``prepare`` builds and converts every row before the caller's transaction opens (on SQLite that
transaction holds the database's one write lock); ``replace`` runs inside it."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable, Sequence

from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction

from chains.base import NATIVE, AssetRef, FetchResult
from portfolio.fields import AMOUNT_DIGITS, AmountField
from portfolio.models import Asset, Chain, Holding, NftItem, Position, PositionLeg, WalletChain
from portfolio.services.prices import store_quotes
from portfolio.sync.spam import spam_reason

log = logging.getLogger(__name__)

HOLDING_COLUMNS = ("wallet_chain", "asset", "amount", "unconfirmed", "height", "fetched_at", "details")
# Problem codes that mean an asset's balance could not be read: its previous amount is kept.
UNREAD_CODES = {"balance_call_failed", "balance_bad_return", "native_balance_failed"}


def asset_key(address: str | None) -> str:
    """The Asset.address of a reference: "" for the native asset."""
    return address or ""


# --------------------------------------------------------------------------- assets and prices


def upsert_assets(chain: Chain, refs: Iterable[AssetRef]) -> dict[str, Asset]:
    """Asset rows for ``refs`` by key ("" for native), creating discovered ones (spam-checked). Asset
    rows are shared reference data created idempotently, so this needs no write lock of a sync."""
    wanted: dict[str, AssetRef] = {}
    for ref in refs:
        wanted.setdefault(asset_key(ref.address), ref)
    rows = {a.address: a for a in Asset.objects.filter(chain=chain, address__in=list(wanted))}
    missing = [_new_asset(chain, key, ref) for key, ref in wanted.items() if key not in rows]
    if missing:
        Asset.objects.bulk_create(missing, ignore_conflicts=True)
        rows.update({a.address: a for a in Asset.objects.filter(chain=chain, address__in=[m.address for m in missing])})
    return rows


def _new_asset(chain: Chain, key: str, ref: AssetRef) -> Asset:
    reason = "" if ref.kind == NATIVE else spam_reason(ref.symbol, ref.name)
    logo = (ref.logo_url or "")[:500]
    return Asset(
        chain=chain, kind=ref.kind, address=key, standard=ref.standard or "native",
        symbol=(ref.symbol or "?")[:64], name=(ref.name or "")[:200], decimals=ref.decimals,
        logo_url=logo if logo.startswith(("http://", "https://")) else "",
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


# --------------------------------------------------------------------------- replacing a fetch's state


@dataclass
class Built:
    """The new rows of one WalletChain: holdings as tuples of HOLDING_COLUMNS, unsaved NftItems, the
    adapter's positions, and counts for the run item."""

    holdings: list[tuple]
    nfts: list[NftItem]
    positions: list
    counts: dict[str, int]


@dataclass
class Prepared:
    """Everything ``replace`` writes, built before the transaction."""

    wallet_chains: list[WalletChain]
    result: FetchResult
    now: datetime
    assets: dict[str, Asset]
    built: dict[int, Built]
    unread: set[str]
    insert_holdings: "_Insert | None" = None
    ids: list[int] = field(default_factory=list)


def prepare(wallet_chains: Sequence[WalletChain], result: FetchResult, now: datetime) -> Prepared:
    """Upsert the result's assets and build every WalletChain's new rows (no write lock held)."""
    chain = wallet_chains[0].chain
    refs: list[AssetRef] = [b.asset for b in result.balances] + [n.collection for n in result.nfts]
    refs += [leg.asset for p in result.positions for leg in p.legs] + [q.asset for q in result.prices]
    assets = upsert_assets(chain, refs)
    parts = _partition(wallet_chains, result)
    built = {wc.id: _new_rows(wc, parts[wc.id], result, assets, now) for wc in wallet_chains}
    holdings = [row for wc in wallet_chains for row in built[wc.id].holdings]
    return Prepared(
        wallet_chains=list(wallet_chains), result=result, now=now, assets=assets, built=built,
        unread={p.subject for p in result.problems if p.code in UNREAD_CODES},
        insert_holdings=prepare_insert(Holding, HOLDING_COLUMNS, holdings), ids=[wc.id for wc in wallet_chains],
    )


def replace(prepared: Prepared) -> None:
    """Replace the holdings, NFTs and positions of the prepared WalletChains; call inside the caller's
    transaction so readers see the old or the new state, never a mix. An asset whose read failed this
    time keeps its last good amount, flagged stale (``counts["stale"]``)."""
    ids = prepared.ids
    if connection.vendor == "postgresql":  # serialise with other writers of these rows (ordered: no deadlocks)
        list(WalletChain.objects.select_for_update().filter(id__in=ids).order_by("id").values_list("id", flat=True))
    carried = _carry_unread(prepared) if prepared.unread else []
    Holding.objects.filter(wallet_chain_id__in=ids).delete()
    NftItem.objects.filter(wallet_chain_id__in=ids).delete()
    Position.objects.filter(wallet_chain_id__in=ids).delete()  # legs cascade
    run_insert(prepared.insert_holdings)
    insert_rows(Holding, HOLDING_COLUMNS, carried)
    NftItem.objects.bulk_create([n for b in prepared.built.values() for n in b.nfts], batch_size=2000)
    PositionLeg.objects.bulk_create(_position_legs(prepared), batch_size=2000)


def _carry_unread(prepared: Prepared) -> list[tuple]:
    old: dict[int, list[Holding]] = {}
    for h in Holding.objects.filter(wallet_chain_id__in=prepared.ids).select_related("asset"):
        old.setdefault(h.wallet_chain_id, []).append(h)
    carried: list[tuple] = []
    for wc in prepared.wallet_chains:
        built = prepared.built[wc.id]
        stale = _carried_rows(wc, old.get(wc.id, []), prepared.unread, built.holdings)
        built.counts["stale"] = len(stale)
        carried += stale
    return carried


def _position_legs(prepared: Prepared) -> list[PositionLeg]:
    """Create the Position rows (their ids are needed) and return their unsaved legs."""
    legs: list[PositionLeg] = []
    height, now, assets = prepared.result.height, prepared.now, prepared.assets
    for wc in prepared.wallet_chains:
        for p in prepared.built[wc.id].positions:
            row = Position.objects.create(
                wallet_chain=wc, protocol=p.protocol[:60], kind=p.kind[:20], ref=p.ref[:120], label=p.label[:200],
                health_factor=p.health_factor, details=dict(p.details), height=height, fetched_at=now,
            )
            legs += [PositionLeg(position=row, asset=assets[asset_key(leg.asset.address)], amount=leg.amount, role=leg.role)
                     for leg in p.legs]
    return legs


def _owner_index(wallet_chains: Sequence[WalletChain]) -> dict[str, WalletChain]:
    index: dict[str, WalletChain] = {}
    for wc in wallet_chains:
        index[wc.wallet.address] = wc
        index[wc.wallet.address.lower()] = wc
    return index


def _partition(wallet_chains: Sequence[WalletChain], result: FetchResult) -> dict[int, dict[str, list]]:
    """Split a (possibly many-wallet) result by WalletChain, once: owner -> WalletChain."""
    index = _owner_index(wallet_chains)
    single = wallet_chains[0] if len(wallet_chains) == 1 else None
    parts: dict[int, dict[str, list]] = {wc.id: {"balances": [], "nfts": [], "positions": []} for wc in wallet_chains}
    for kind, rows in (("balances", result.balances), ("nfts", result.nfts), ("positions", result.positions)):
        for row in rows:
            wc = index.get(row.owner) or index.get(row.owner.lower()) or single
            if wc is not None:
                parts[wc.id][kind].append(row)
    return parts


def _new_rows(wc: WalletChain, part: dict[str, list], result: FetchResult, assets: dict[str, Asset], now) -> Built:
    """The rows replacing ``wc``'s (without the carried-over stale ones: ``_carried_rows``)."""
    amounts: dict[int, list] = {}
    for b in part["balances"]:
        asset = assets[asset_key(b.asset.address)]
        row = amounts.setdefault(asset.id, [asset, 0, 0, {}])
        row[1] += b.amount
        row[2] += b.unconfirmed
        row[3] = row[3] or dict(b.details)
    holdings = [(wc.id, a.id, amt, unc, result.height, now, d) for a, amt, unc, d in amounts.values()]

    nfts: dict[tuple[int, str], NftItem] = {}
    for n in part["nfts"]:
        collection = assets[asset_key(n.collection.address)]
        key = (collection.id, n.token_id)
        if key in nfts:
            nfts[key].amount += n.amount
            continue
        nfts[key] = NftItem(
            wallet_chain=wc, collection=collection, token_id=n.token_id[:100], amount=n.amount, name=n.name[:200],
            description=n.description, image_url=n.image_url, metadata_url=n.metadata_url, height=result.height, fetched_at=now,
        )
    positions = {}
    for p in part["positions"]:
        positions.setdefault((p.protocol, p.ref), p)
    counts = {"balances": len(amounts), "nfts": len(nfts), "positions": len(positions), "stale": 0}
    return Built(holdings, list(nfts.values()), list(positions.values()), counts)


def _carried_rows(wc: WalletChain, old: list[Holding], unread: set[str], holdings: list[tuple]) -> list[tuple]:
    """Keep the last good amount of an asset whose read failed this time (a reverting call, a flaky
    node): dropping it would show a balance that vanished."""
    fresh = {row[1] for row in holdings}
    wallet_keys = {wc.wallet.address, wc.wallet.address.lower()}
    carried = []
    for h in old:
        failed = h.asset.address in unread or (h.asset.kind == Asset.NATIVE and unread & wallet_keys)
        if failed and h.asset_id not in fresh:
            carried.append((wc.id, h.asset_id, h.amount, h.unconfirmed, h.height, h.fetched_at, {**h.details, "stale": True}))
    return carried



# --------------------------------------------------------------------------- the bulk writer


@dataclass
class _Insert:
    """An INSERT of many rows, prepared (values converted) before the transaction that runs it: on
    SQLite that transaction holds the database's one write lock, which the other workers wait for."""

    sql: str
    params: Any  # rows for executemany, or the COPY text on PostgreSQL
    copy: bool = False


def prepare_insert(model, field_names: Sequence[str], rows: Sequence[tuple]) -> _Insert | None:
    """Many rows as one executemany INSERT, values prepared by each field (exact amounts, JSON,
    datetimes) a column at a time (``map`` over a column, not a Python call per value); PostgreSQL
    gets COPY. The hot path of a big sync: building a model instance per balance costs more than the
    chain read itself (1,000 wallets x 100 tokens is 100,000 rows)."""
    if not rows:
        return None
    fields = [model._meta.get_field(name) for name in field_names]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    table = connection.ops.quote_name(model._meta.db_table)
    if connection.vendor == "postgresql":  # COPY: ten times faster than INSERTs of the same rows
        text_columns = [_copy_column(values) for values in zip(*rows)]
        lines = "\n".join(map("\t".join, zip(*text_columns))) + "\n"
        return _Insert(f"COPY {table} ({columns}) FROM STDIN", lines, copy=True)
    prepared = list(zip(*(_prep_column(f, values) for f, values in zip(fields, zip(*rows)))))
    placeholders = ", ".join(["%s"] * len(fields))
    return _Insert(f"INSERT INTO {table} ({columns}) VALUES ({placeholders})", prepared)


def run_insert(insert: _Insert | None) -> None:
    if insert is None:
        return
    with connection.cursor() as cursor:
        if insert.copy:
            with cursor.copy(insert.sql) as copy:
                copy.write(insert.params)
        else:
            cursor.executemany(insert.sql, insert.params)


def insert_rows(model, field_names: Sequence[str], rows: Sequence[tuple]) -> None:
    """INSERT many rows (see ``prepare_insert``)."""
    run_insert(prepare_insert(model, field_names, rows))


def _prep_column(field, values: Sequence[Any]) -> Sequence[Any]:
    """One column's values as the database adapter takes them. Amounts that are all plain ints in
    range become their digits at C speed (what ``AmountField`` stores off PostgreSQL); anything else
    goes through the field."""
    if isinstance(field, AmountField) and connection.vendor != "postgresql" and all(type(v) is int for v in values):
        if -(10**AMOUNT_DIGITS) < min(values) and max(values) < 10**AMOUNT_DIGITS:
            return list(map(str, values))
    prep = _prep_for(field)
    return values if prep is None else list(map(prep, values))


def _copy_column(values: Sequence[Any]) -> Sequence[str]:
    """One column in COPY text format; a column of plain ints (ids, amounts) at C speed, a column of
    datetimes (nearly all the same ``now``) formatted once per distinct value."""
    if all(type(v) is int for v in values):
        return list(map(str, values))
    if all(type(v) is datetime for v in values):
        texts = {v: v.isoformat() for v in set(values)}
        return list(map(texts.__getitem__, values))
    return list(map(_copy_text, values))


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(value: Any) -> str:
    """One value in PostgreSQL's COPY text format (ints stay exact: NUMERIC parses the digits)."""
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (dict, list)):
        if not value:
            return "{}" if isinstance(value, dict) else "[]"
        return json.dumps(value).translate(_COPY_ESCAPES)
    return str(value).translate(_COPY_ESCAPES)


def update_rows(model, field_names: Sequence[str], objs: Sequence[Any]) -> None:
    """UPDATE each object's ``field_names`` by primary key, with one executemany."""
    if not objs:
        return
    fields = [model._meta.get_field(name) for name in field_names]
    preps = [_prep_for(f) or _as_is for f in fields]
    assignments = ", ".join(f"{connection.ops.quote_name(f.column)} = %s" for f in fields)
    sql = f"UPDATE {connection.ops.quote_name(model._meta.db_table)} SET {assignments} WHERE id = %s"
    values = [tuple(prep(getattr(o, f.attname)) for prep, f in zip(preps, fields)) + (o.pk,) for o in objs]
    with connection.cursor() as cursor:
        cursor.executemany(sql, values)


def _as_is(value):
    return value


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


