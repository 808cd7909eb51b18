"""Syncing wallets: fetch through the chain adapter, replace a WalletChain's stored state atomically,
record SyncRun outcomes, claim due WalletChains for the scheduler, and report progress."""

from __future__ import annotations

import itertools
import json
import logging
import re
import secrets
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Iterable, Sequence

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.models import F, Q
from django.utils import timezone

from chains.base import NATIVE, AssetRef, ChainError, FetchRequest, FetchResult
from chains.registry import adapter_for
from portfolio.fields import AMOUNT_DIGITS, AmountField
from portfolio.models import (
    Asset,
    Chain,
    Holding,
    NftItem,
    Portfolio,
    Position,
    PositionLeg,
    PricePoint,
    SyncRun,
    SyncRunItem,
    Wallet,
    WalletChain,
)

log = logging.getLogger(__name__)

FINISHED = (SyncRun.OK, SyncRun.PARTIAL, SyncRun.FAILED)
IN_FLIGHT_WINDOW = timedelta(minutes=10)
HOLDING_COLUMNS = ("wallet_chain", "asset", "amount", "unconfirmed", "height", "fetched_at", "details")
# Problem codes that mean an asset's balance could not be read: its previous amount is kept.
UNREAD_CODES = {"balance_call_failed", "balance_bad_return", "native_balance_failed"}


class SyncError(Exception):
    """A sync that cannot run at all (the WalletChain or its chain is gone or disabled). Permanent."""


@dataclass
class SyncOutcome:
    """What one WalletChain's sync did (returned to the task, and to tests)."""

    wallet_chain_id: int
    status: str
    counts: dict[str, int] = field(default_factory=dict)
    error: str = ""
    skipped: bool = False


# --------------------------------------------------------------------------- spam heuristics

_URLISH = re.compile(r"(?i)(https?://|www\.|\b[a-z0-9-]+\.(com|io|org|net|xyz|app|site|top|finance|fi|co|me|gift|link|pro|vip|club|info)\b|t\.me/)")
_BAIT = re.compile(r"(?i)\b(claim|visit|reward|rewards|airdrop|voucher|bonus|free)\b")
_INVISIBLE = {"\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u202e", "\u202d"}


def spam_reason(symbol: str, name: str) -> str:
    """Why a discovered token looks like spam ("" when it does not): URLs or bait words in its name,
    invisible characters, or letters from another script posing as Latin (homoglyphs)."""
    text = f"{symbol} {name}"
    if _URLISH.search(text):
        return "name or symbol contains a web address"
    if _BAIT.search(text):
        return "name or symbol contains bait words (claim, visit, reward, airdrop...)"
    if any(ch in _INVISIBLE or unicodedata.category(ch) == "Cf" for ch in text):
        return "name or symbol contains invisible characters"
    scripts = set()
    for ch in text:
        if ch.isalpha():
            script = unicodedata.name(ch, "UNKNOWN").split(" ")[0]
            scripts.add(script)
    if "LATIN" in scripts and scripts & {"CYRILLIC", "GREEK", "ARMENIAN", "CHEROKEE", "FULLWIDTH", "MATHEMATICAL"}:
        return "name or symbol mixes Latin with look-alike letters (homoglyphs)"
    if scripts & {"FULLWIDTH", "MATHEMATICAL"}:
        return "name or symbol uses look-alike letters (homoglyphs)"
    return ""


# --------------------------------------------------------------------------- helpers


def _now():
    return timezone.now()


def _is_postgres() -> bool:
    return connection.vendor == "postgresql"


def _safe_error(exc: BaseException) -> str:
    """An error text safe to store and show: ChainError is redacted; anything else shows its type only."""
    if isinstance(exc, ChainError):
        return str(exc)[:2000]
    if isinstance(exc, SyncError):
        return str(exc)
    return f"internal error ({type(exc).__name__}); see the worker log"


def _asset_key(address: str | None) -> str:
    return address or ""


def known_assets(chain: Chain, wallet_chains: Sequence[WalletChain]) -> list[AssetRef]:
    """The assets to read: the chain's listed ones plus every asset these WalletChains held before."""
    ids = [wc.id for wc in wallet_chains]
    held = Q(id__in=Holding.objects.filter(wallet_chain_id__in=ids).values("asset_id"))
    held |= Q(id__in=NftItem.objects.filter(wallet_chain_id__in=ids).values("collection_id"))
    assets = Asset.objects.filter(chain=chain).filter(Q(listed=True) | Q(kind=Asset.NATIVE) | held)
    return [a.to_ref() for a in assets]


def build_adapter(chain: Chain):
    """The chain's adapter with its enabled endpoints and the limiter shared by all workers."""
    from portfolio.ratelimit import shared_limiter

    return adapter_for(chain.to_config(), chain.endpoint_configs(), limiter=shared_limiter())


def _upsert_assets(chain: Chain, refs: Iterable[AssetRef]) -> dict[str, Asset]:
    """Asset rows for ``refs`` by key ("" for native), creating discovered ones (spam-checked)."""
    wanted: dict[str, AssetRef] = {}
    for ref in refs:
        wanted.setdefault(_asset_key(ref.address), ref)
    rows = {a.address: a for a in Asset.objects.filter(chain=chain, address__in=list(wanted))}
    missing = []
    for key, ref in wanted.items():
        if key in rows:
            continue
        reason = "" if ref.kind == NATIVE else spam_reason(ref.symbol, ref.name)
        missing.append(
            Asset(
                chain=chain, kind=ref.kind, address=key, standard=ref.standard or "native",
                symbol=(ref.symbol or "?")[:64], name=(ref.name or "")[:200], decimals=ref.decimals,
                logo_url=(ref.logo_url or "")[:500] if (ref.logo_url or "").startswith(("http://", "https://")) else "",
                listed=False, is_spam=bool(reason), spam_reason=reason[:200],
                oracle_address=ref.oracle or "",
            )
        )
    if missing:
        Asset.objects.bulk_create(missing, ignore_conflicts=True)
        rows.update({a.address: a for a in Asset.objects.filter(chain=chain, address__in=[m.address for m in missing])})
    return rows


def _owner_index(wallet_chains: Sequence[WalletChain]) -> dict[str, WalletChain]:
    index: dict[str, WalletChain] = {}
    for wc in wallet_chains:
        index[wc.wallet.address] = wc
        index[wc.wallet.address.lower()] = wc
    return index


def _owner_wc(index: dict[str, WalletChain], owner: str, single: WalletChain | None) -> WalletChain | None:
    return index.get(owner) or index.get(owner.lower()) or single


def store_price_quotes(chain: Chain, quotes, assets: dict[str, Asset]) -> int:
    """Store on-chain oracle quotes through the valuation service, or as PricePoints when it is absent."""
    if not quotes:
        return 0
    try:
        from portfolio.services.prices import store_quotes
    except ImportError:
        store_quotes = None
    if store_quotes is not None:
        store_quotes(chain, list(quotes))
        return len(quotes)
    now = _now()
    points = [
        PricePoint(asset=assets[_asset_key(q.asset.address)], at=now, currency=q.currency, price=q.price, source=q.source[:120])
        for q in quotes
        if _asset_key(q.asset.address) in assets
    ]
    PricePoint.objects.bulk_create(points)
    return len(points)


# --------------------------------------------------------------------------- one sync


def _start(wallet_chains: Sequence[WalletChain], items: dict[int, SyncRunItem]) -> None:
    now = _now()
    WalletChain.objects.filter(id__in=[wc.id for wc in wallet_chains]).update(status=WalletChain.RUNNING, last_attempt_at=now)
    if items:
        item_ids = [i.id for i in items.values()]
        SyncRunItem.objects.filter(id__in=item_ids).update(status=SyncRun.RUNNING, attempts=F("attempts") + 1)
        SyncRunItem.objects.filter(id__in=item_ids, started_at__isnull=True).update(started_at=now)
        run_ids = {i.run_id for i in items.values()}
        SyncRun.objects.filter(id__in=run_ids, status=SyncRun.QUEUED).update(status=SyncRun.RUNNING, started_at=now)


@dataclass
class _Insert:
    """An INSERT of many rows, prepared (values converted) before the transaction that runs it: on
    SQLite that transaction holds the database's one write lock, which the other workers wait for."""

    sql: str
    params: Any  # rows for executemany, or the COPY text on PostgreSQL
    copy: bool = False


def _prepare_insert(model, field_names: Sequence[str], rows: Sequence[tuple]) -> _Insert | None:
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


def _run_insert(insert: _Insert | None) -> None:
    if insert is None:
        return
    with connection.cursor() as cursor:
        if insert.copy:
            with cursor.copy(insert.sql) as copy:
                copy.write(insert.params)
        else:
            cursor.executemany(insert.sql, insert.params)


def _insert_rows(model, field_names: Sequence[str], rows: Sequence[tuple]) -> None:
    """INSERT many rows (see ``_prepare_insert``)."""
    _run_insert(_prepare_insert(model, field_names, rows))


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


def _update_rows(model, field_names: Sequence[str], objs: Sequence[Any]) -> None:
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


def _partition(wallet_chains: Sequence[WalletChain], result: FetchResult) -> dict[int, dict[str, list]]:
    """Split a (possibly many-wallet) result by WalletChain, once: owner -> WalletChain."""
    index = _owner_index(wallet_chains)
    single = wallet_chains[0] if len(wallet_chains) == 1 else None
    parts: dict[int, dict[str, list]] = {wc.id: {"balances": [], "nfts": [], "positions": []} for wc in wallet_chains}
    for kind, rows in (("balances", result.balances), ("nfts", result.nfts), ("positions", result.positions)):
        for row in rows:
            wc = _owner_wc(index, row.owner, single)
            if wc is not None:
                parts[wc.id][kind].append(row)
    return parts


def _new_rows(wc: WalletChain, part: dict[str, list], result: FetchResult, assets: dict[str, Asset],
              now) -> tuple[list[tuple], list[NftItem], list, dict[str, int]]:
    """The Holding rows (tuples of HOLDING_COLUMNS), NftItems (unsaved) and positions replacing ``wc``'s
    (without the carried-over stale ones: ``_carried_rows``)."""
    amounts: dict[int, list] = {}
    for b in part["balances"]:
        asset = assets[_asset_key(b.asset.address)]
        row = amounts.setdefault(asset.id, [asset, 0, 0, {}])
        row[1] += b.amount
        row[2] += b.unconfirmed
        row[3] = row[3] or dict(b.details)
    holdings = [(wc.id, a.id, amt, unc, result.height, now, d) for a, amt, unc, d in amounts.values()]

    nfts: dict[tuple[int, str], NftItem] = {}
    for n in part["nfts"]:
        collection = assets[_asset_key(n.collection.address)]
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
    return holdings, list(nfts.values()), list(positions.values()), counts


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


def _problems_for(wc: WalletChain, result: FetchResult, others: set[str]) -> list[dict[str, str]]:
    """The problems that concern this wallet (those naming another wallet of the batch are theirs)."""
    return [
        {"code": p.code, "message": p.message[:500], "subject": p.subject}
        for p in result.problems
        if not (p.subject and p.subject in others)
    ][:100]


def _cursor_for(wc: WalletChain, result: FetchResult, single: bool):
    cursor = result.cursors.get(wc.wallet.address)
    if cursor is None:
        cursor = result.cursors.get(wc.wallet.address.lower())
    if cursor is None and single and len(result.cursors) == 1:
        cursor = next(iter(result.cursors.values()))
    return dict(cursor) if cursor is not None else wc.cursors


def _record_success(wallet_chains, items, result: FetchResult) -> list[SyncOutcome]:
    """Replace the stored state of every WalletChain of the fetch in ONE transaction (set-based: a few
    statements for the whole group): readers see the old or the new state, never a mix. The rows are
    built and converted before the transaction opens, so it holds the write lock (SQLite has one for
    the whole database) only for the statements themselves."""
    chain = wallet_chains[0].chain
    now = _now()
    ids = [wc.id for wc in wallet_chains]
    refs: list[AssetRef] = [b.asset for b in result.balances] + [n.collection for n in result.nfts]
    refs += [leg.asset for p in result.positions for leg in p.legs] + [q.asset for q in result.prices]
    parts = _partition(wallet_chains, result)
    unread = {p.subject for p in result.problems if p.code in UNREAD_CODES}
    addresses = {wc.wallet.address for wc in wallet_chains}
    endpoint = (result.endpoint or "")[:300]
    # Asset rows are shared reference data, created idempotently (a discovered token is the same
    # token whether or not this replace commits), so they need not wait for the write lock.
    assets = _upsert_assets(chain, refs)
    built = {wc.id: _new_rows(wc, parts[wc.id], result, assets, now) for wc in wallet_chains}
    holdings = [row for wc in wallet_chains for row in built[wc.id][0]]
    insert_holdings = _prepare_insert(Holding, HOLDING_COLUMNS, holdings)
    outcomes = []
    with transaction.atomic():
        if _is_postgres():  # serialise with any other writer of these WalletChains (ordered: no deadlocks)
            list(WalletChain.objects.select_for_update().filter(id__in=ids).order_by("id").values_list("id", flat=True))
        old: dict[int, list[Holding]] = {}
        if unread:
            for h in Holding.objects.filter(wallet_chain_id__in=ids).select_related("asset"):
                old.setdefault(h.wallet_chain_id, []).append(h)
        Holding.objects.filter(wallet_chain_id__in=ids).delete()
        NftItem.objects.filter(wallet_chain_id__in=ids).delete()
        Position.objects.filter(wallet_chain_id__in=ids).delete()  # legs cascade

        carried: list[tuple] = []
        nfts: list[NftItem] = []
        legs: list[PositionLeg] = []
        for wc in wallet_chains:
            h, n, positions, counts = built[wc.id]
            if wc.id in old:
                stale = _carried_rows(wc, old[wc.id], unread, h)
                carried += stale
                counts["stale"] = len(stale)
            nfts += n
            for p in positions:
                row = Position.objects.create(
                    wallet_chain=wc, protocol=p.protocol[:60], kind=p.kind[:20], ref=p.ref[:120], label=p.label[:200],
                    health_factor=p.health_factor, details=dict(p.details), height=result.height, fetched_at=now,
                )
                legs += [PositionLeg(position=row, asset=assets[_asset_key(leg.asset.address)], amount=leg.amount, role=leg.role)
                         for leg in p.legs]
            wc.status, wc.last_ok_at, wc.last_error, wc.height, wc.endpoint = WalletChain.OK, now, "", result.height, endpoint
            wc.cursors = _cursor_for(wc, result, len(wallet_chains) == 1)
            wc.problems = _problems_for(wc, result, addresses - {wc.wallet.address})
            item = items.get(wc.id)
            if item is not None:
                counts.update(requests=result.request_count, wallets_in_fetch=len(wallet_chains), problems=len(wc.problems))
                item.status, item.finished_at, item.error, item.endpoint, item.height, item.counts = (
                    SyncRun.OK, now, "", endpoint, result.height, counts)
            outcomes.append(SyncOutcome(wc.id, SyncRun.OK, counts))
        _run_insert(insert_holdings)
        _insert_rows(Holding, HOLDING_COLUMNS, carried)
        NftItem.objects.bulk_create(nfts, batch_size=2000)
        PositionLeg.objects.bulk_create(legs, batch_size=2000)
        _update_rows(WalletChain, ["status", "last_ok_at", "last_error", "height", "endpoint", "cursors", "problems"], wallet_chains)
        _update_rows(SyncRunItem, ["status", "finished_at", "error", "endpoint", "height", "counts"], list(items.values()))
    try:
        with transaction.atomic():
            store_price_quotes(chain, result.prices, assets)
    except Exception:  # prices are a by-product: never fail a good sync over them
        log.exception("storing oracle prices of %s failed", chain.slug)
    return outcomes


def _record_failure(wallet_chains, items, exc: BaseException, *, final: bool) -> list[SyncOutcome]:
    """Keep the last good data; store the (redacted) error. Items fail only when no retry follows."""
    now = _now()
    error = _safe_error(exc)
    ids = [wc.id for wc in wallet_chains]
    with transaction.atomic():
        WalletChain.objects.filter(id__in=ids).update(status=WalletChain.FAILED if final else WalletChain.QUEUED, last_error=error)
        if items:
            item_ids = [i.id for i in items.values()]
            if final:
                SyncRunItem.objects.filter(id__in=item_ids).update(status=SyncRun.FAILED, finished_at=now, error=error)
            else:
                SyncRunItem.objects.filter(id__in=item_ids).update(status=SyncRun.QUEUED, error=f"retrying: {error}")
    return [SyncOutcome(i, SyncRun.FAILED if final else SyncRun.QUEUED, error=error) for i in ids]


def do_sync_wallet_chains(
    wallet_chain_ids: Sequence[int], run_id: int | None = None, *, final_attempt: bool = True
) -> list[SyncOutcome]:
    """Sync several WalletChains of ONE chain with a single adapter fetch (EVM packs them into the same
    Multicall batches), then store each one's result in its own transaction.

    Idempotent: items of ``run_id`` already finished are skipped, so a redelivered task does nothing
    twice. Raises ``ChainError`` after recording it (the task decides on a retry; with
    ``final_attempt`` False, run items go back to queued instead of failed).
    """
    wallet_chains = list(WalletChain.objects.select_related("wallet", "chain").filter(id__in=wallet_chain_ids))
    items: dict[int, SyncRunItem] = {}
    if run_id is not None:
        items = {i.wallet_chain_id: i for i in SyncRunItem.objects.filter(run_id=run_id, wallet_chain_id__in=wallet_chain_ids)}
        done = {wc_id for wc_id, i in items.items() if i.status in FINISHED}
        skipped = [SyncOutcome(wc_id, items[wc_id].status, skipped=True) for wc_id in done]
        wallet_chains = [wc for wc in wallet_chains if wc.id not in done]
        items = {k: v for k, v in items.items() if k not in done}
    else:
        skipped = []
    if not wallet_chains:
        return skipped
    chains = {wc.chain_id for wc in wallet_chains}
    if len(chains) != 1:
        raise ValueError("do_sync_wallet_chains syncs WalletChains of one chain at a time")
    chain = wallet_chains[0].chain

    _start(wallet_chains, items)
    try:
        if not chain.enabled:
            raise SyncError(f"{chain.name} is disabled")
        adapter = build_adapter(chain)
        request = FetchRequest(
            wallets=tuple(wc.wallet.to_ref() for wc in wallet_chains),
            known_assets=tuple(known_assets(chain, wallet_chains)),
            cursors={wc.wallet.address: wc.cursors for wc in wallet_chains if wc.cursors},
        )
        result = adapter.fetch(request)
    except (ChainError, SyncError) as exc:
        permanent = isinstance(exc, SyncError) or exc.permanent
        outcomes = _record_failure(wallet_chains, items, exc, final=final_attempt or permanent)
        if final_attempt or permanent:
            finish_runs({i.run_id for i in items.values()})
        raise
    except Exception as exc:
        log.exception("sync of %s failed unexpectedly", [wc.id for wc in wallet_chains])
        _record_failure(wallet_chains, items, exc, final=True)
        finish_runs({i.run_id for i in items.values()})
        raise
    outcomes = _record_success(wallet_chains, items, result)
    finish_runs({i.run_id for i in items.values()})
    return skipped + outcomes


def do_sync_wallet_chain(wallet_chain_id: int, run_item_id: int | None = None, *, final_attempt: bool = True) -> SyncOutcome:
    """Fetch one wallet on one chain and replace its stored holdings, NFTs and positions atomically.

    Raises ``ChainError`` (after recording it) when the chain could not be read: a failed sync keeps
    the last good data. Returns a skipped outcome when the run item is already finished (redelivery).
    """
    run_id = None
    if run_item_id is not None:
        run_id = SyncRunItem.objects.filter(id=run_item_id).values_list("run_id", flat=True).first()
    outcomes = do_sync_wallet_chains([wallet_chain_id], run_id, final_attempt=final_attempt)
    return outcomes[0] if outcomes else SyncOutcome(wallet_chain_id, "missing", skipped=True)


# --------------------------------------------------------------------------- runs


def finish_runs(run_ids: Iterable[int]) -> None:
    """Close every run whose items are all finished: ok, partial (some failed) or failed (all failed).
    The conditional UPDATE makes exactly one caller the closer; it triggers the snapshot."""
    for run_id in run_ids:
        statuses = list(SyncRunItem.objects.filter(run_id=run_id).values_list("status", flat=True))
        if any(s not in FINISHED for s in statuses):
            continue
        failed = sum(s == SyncRun.FAILED for s in statuses)
        status = SyncRun.OK if not failed else (SyncRun.FAILED if failed == len(statuses) else SyncRun.PARTIAL)
        closed = SyncRun.objects.filter(id=run_id, finished_at__isnull=True).update(
            status=status, finished_at=_now(),
            error=f"{failed} of {len(statuses)} chain syncs failed" if failed else "",
        )
        if closed:
            _after_run(run_id)


def _after_run(run_id: int) -> None:
    run = SyncRun.objects.get(id=run_id)
    if run.trigger != SyncRun.MANUAL:
        return  # scheduled batches are covered by the hourly snapshot
    wallet_ids = sorted(set(SyncRunItem.objects.filter(run_id=run_id).values_list("wallet_chain__wallet_id", flat=True)))
    try:
        from portfolio.services.snapshots import do_snapshot
    except ImportError:
        return
    try:
        do_snapshot(wallet_ids)
    except Exception:  # a snapshot failure must not turn a finished sync into a failed task
        log.exception("snapshot after sync run %s failed", run_id)


def _wallet_chains_for(owner, *, portfolio: Portfolio | None, wallet: Wallet | None):
    qs = WalletChain.objects.filter(wallet__owner=owner, chain__enabled=True).select_related("chain")
    if wallet is not None:
        qs = qs.filter(wallet=wallet)
    elif portfolio is not None:
        qs = qs.filter(wallet__portfolios=portfolio)
    return list(qs.order_by("chain__sort_order", "wallet_id"))


def queue_for(chain: Chain) -> str:
    return chain.family if chain.family in ("evm", "bitcoin", "solana") else "default"


def do_request_sync(owner, *, portfolio: Portfolio | None = None, wallet: Wallet | None = None) -> SyncRun:
    """Create a SyncRun for the owner's wallet, portfolio or all wallets, and enqueue one task per
    (wallet, chain) after the transaction commits; an unfinished run of the same scope younger than
    ``IN_FLIGHT_WINDOW`` is returned instead. Objects of another owner raise ``PermissionError``."""
    if portfolio is not None and portfolio.owner_id != owner.id:
        raise PermissionError("not your portfolio")
    if wallet is not None and wallet.owner_id != owner.id:
        raise PermissionError("not your wallet")
    now = _now()
    with transaction.atomic():
        # A second click while the same refresh is still in flight joins it instead of queueing again.
        in_flight = SyncRun.objects.filter(
            owner=owner, portfolio=portfolio, wallet=wallet, trigger=SyncRun.MANUAL, finished_at__isnull=True,
            created_at__gte=now - IN_FLIGHT_WINDOW,
        ).first()
        if in_flight is not None:
            return in_flight
        wallet_chains = _wallet_chains_for(owner, portfolio=portfolio, wallet=wallet)
        run = SyncRun.objects.create(owner=owner, portfolio=portfolio, wallet=wallet, trigger=SyncRun.MANUAL)
        items = SyncRunItem.objects.bulk_create([SyncRunItem(run=run, wallet_chain=wc) for wc in wallet_chains])
        items = list(SyncRunItem.objects.filter(run=run).select_related("wallet_chain__chain"))
        if not items:
            SyncRun.objects.filter(id=run.id).update(status=SyncRun.OK, started_at=now, finished_at=now)
            run.refresh_from_db()
            return run
        for wc in wallet_chains:  # a manual sync counts as the scheduled one
            WalletChain.objects.filter(id=wc.id).update(
                status=WalletChain.QUEUED, next_due_at=now + wc.chain.sync_interval, claimed_at=now
            )
        jobs = [(i.wallet_chain_id, i.id, queue_for(i.wallet_chain.chain)) for i in items]
        transaction.on_commit(lambda: _enqueue_items(jobs))
    return run


def _enqueue_items(jobs) -> None:
    from portfolio.tasks import sync_wallet_chain_task

    for wc_id, item_id, queue in jobs:
        sync_wallet_chain_task.apply_async(args=(wc_id, item_id), queue=queue)


# --------------------------------------------------------------------------- scheduling


def group_size(chain: Chain) -> int:
    """WalletChains of one chain synced by one task when many are due (EVM batches them well)."""
    if chain.family == "evm":
        return settings.SYNC_EVM_GROUP_SIZE
    return 1


def claim_due_wallet_chains(*, limit: int = 5000) -> list[WalletChain]:
    """Claim due WalletChains so that two beats or many workers never sync one twice.

    PostgreSQL: ``SELECT ... FOR UPDATE SKIP LOCKED`` then an UPDATE of exactly those rows. Elsewhere:
    a conditional ``UPDATE ... SET claimed_at = <this claim's token> WHERE id IN (...) AND next_due_at
    <= now`` per chain, then the rows carrying our token are ours (a row another claimer took first
    no longer matches ``next_due_at <= now``, so each row is won exactly once)."""
    now = _now()
    due = WalletChain.objects.filter(chain__enabled=True, next_due_at__lte=now).exclude(wallet__isnull=True)
    if _is_postgres():
        with transaction.atomic():
            rows = list(due.select_for_update(skip_locked=True, of=("self",)).select_related("chain").order_by("next_due_at")[:limit])
            by_interval: dict[timedelta, list[int]] = {}
            for wc in rows:
                by_interval.setdefault(wc.chain.sync_interval, []).append(wc.id)
            for interval, ids in by_interval.items():
                WalletChain.objects.filter(id__in=ids).update(next_due_at=now + interval, claimed_at=now, status=WalletChain.QUEUED)
        return rows
    # A claim token: "now" plus random microseconds, unique among claimers in practice.
    token = now + timedelta(microseconds=secrets.randbelow(999_999) + 1)
    candidates = list(due.order_by("next_due_at").values_list("id", "chain_id")[:limit])
    by_chain: dict[int, list[int]] = {}
    for wc_id, chain_id in candidates:
        by_chain.setdefault(chain_id, []).append(wc_id)
    intervals = dict(Chain.objects.filter(id__in=list(by_chain)).values_list("id", "sync_interval"))
    for chain_id, ids in by_chain.items():
        for i in range(0, len(ids), 500):
            WalletChain.objects.filter(id__in=ids[i:i + 500], next_due_at__lte=now).update(
                next_due_at=now + intervals[chain_id], claimed_at=token, status=WalletChain.QUEUED
            )
    ids = [wc_id for wc_id, _ in candidates]
    return list(WalletChain.objects.filter(id__in=ids, claimed_at=token).select_related("chain").order_by("next_due_at", "id"))


def do_fanout_due() -> tuple[SyncRun | None, list[tuple[list[int], int, str]]]:
    """Claim due WalletChains, record them as one scheduled SyncRun and return the jobs to enqueue:
    (wallet_chain_ids, run_id, queue), grouped per chain."""
    claimed = claim_due_wallet_chains()
    if not claimed:
        return None, []
    with transaction.atomic():
        run = SyncRun.objects.create(trigger=SyncRun.SCHEDULE, status=SyncRun.QUEUED)
        SyncRunItem.objects.bulk_create([SyncRunItem(run=run, wallet_chain_id=wc.id) for wc in claimed])
    by_chain: dict[int, list[WalletChain]] = {}
    for wc in claimed:
        by_chain.setdefault(wc.chain_id, []).append(wc)
    jobs = []
    for wcs in by_chain.values():
        size = max(1, group_size(wcs[0].chain))
        for i in range(0, len(wcs), size):
            jobs.append(([wc.id for wc in wcs[i:i + size]], run.id, queue_for(wcs[0].chain)))
    return run, jobs


# --------------------------------------------------------------------------- progress


ITEM_STATE = {SyncRun.QUEUED: "queued", SyncRun.RUNNING: "running", SyncRun.OK: "done", SyncRun.PARTIAL: "done", SyncRun.FAILED: "failed"}


def sync_status(run: SyncRun) -> dict[str, Any]:
    """Progress of a run for the status fragment and JSON: one entry per (wallet, chain)."""
    items = (
        SyncRunItem.objects.filter(run=run)
        .select_related("wallet_chain__wallet", "wallet_chain__chain")
        .order_by("wallet_chain__chain__sort_order", "wallet_chain__wallet__label", "id")
    )
    rows = []
    for i in items:
        wc = i.wallet_chain
        rows.append({
            "id": i.id,
            "wallet_id": wc.wallet_id,
            "wallet": str(wc.wallet),
            "chain": wc.chain.name,
            "chain_slug": wc.chain.slug,
            "state": ITEM_STATE.get(i.status, i.status),
            "status": i.status,
            "error": i.error,
            "endpoint": i.endpoint,
            "height": i.height,
            "counts": i.counts,
            "attempts": i.attempts,
            "last_ok_at": wc.last_ok_at.isoformat() if wc.last_ok_at else None,
            "finished_at": i.finished_at.isoformat() if i.finished_at else None,
        })
    done = sum(r["state"] in ("done", "failed") for r in rows)
    return {
        "id": run.id,
        "status": run.status,
        "finished": run.status in FINISHED,
        "created_at": run.created_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "error": run.error,
        "total": len(rows),
        "done": done,
        "items": rows,
    }


# --------------------------------------------------------------------------- beat schedule

PERIODIC_TASKS = [
    # name, task, schedule kind, schedule value
    ("chainfolio: sync due wallets", "portfolio.tasks.fanout_due_task", "every_s", "SYNC_FANOUT_SECONDS"),
    ("chainfolio: value snapshot", "portfolio.tasks.snapshot_task", "every_min", "SNAPSHOT_INTERVAL_MINUTES"),
    ("chainfolio: downsample history", "portfolio.tasks.downsample_task", "daily", "03:15"),
    ("chainfolio: refresh prices", "portfolio.tasks.refresh_prices_task", "every_min", 5),
]


def ensure_periodic_tasks() -> int:
    """Create the beat schedule rows (django-celery-beat) that are missing; never touch existing ones,
    so an admin's edits (interval, enabled) survive migrations. Returns how many were created."""
    from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

    created = 0
    for name, task, kind, value in PERIODIC_TASKS:
        if PeriodicTask.objects.filter(name=name).exists():
            continue
        if kind == "daily":
            hour, minute = value.split(":")
            crontab, _ = CrontabSchedule.objects.get_or_create(minute=minute, hour=hour, day_of_week="*", day_of_month="*", month_of_year="*")
            PeriodicTask.objects.create(name=name, task=task, crontab=crontab, queue="default")
        else:
            amount = getattr(settings, value) if isinstance(value, str) else value
            period = IntervalSchedule.SECONDS if kind == "every_s" else IntervalSchedule.MINUTES
            interval, _ = IntervalSchedule.objects.get_or_create(every=int(amount), period=period)
            PeriodicTask.objects.create(name=name, task=task, interval=interval, queue="default")
        created += 1
    return created
