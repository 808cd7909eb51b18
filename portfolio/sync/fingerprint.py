"""Fingerprints of what a fetch holds per WalletChain, so that a sync finding nothing new neither reads
nor writes that WalletChain's holdings, NFTs and positions (``store.prepare``).

``WalletChain.stored_fingerprint`` is the fingerprint of the fetch its last good sync stored exactly as
fetched (no amount carried over, no protocol's positions kept), written in the same transaction as the
rows; empty when unknown. The stored rows are a function of the fetch (``store``'s row building), so an
equal fingerprint means an empty diff. Whatever writes those rows around the sync must ``forget`` the
fingerprints: an ORM save (``install``'s signals: the admin, fixtures), ``totals.rebuild`` (the repair
step after rows were loaded or edited around the sync), a reset. Deleting a WalletChain deletes its rows
with it; an asset cannot be deleted while a row refers to it (PROTECT).
"""

from __future__ import annotations

import hashlib
import marshal
from dataclasses import dataclass, field
from itertools import groupby
from operator import attrgetter
from typing import Iterable, Sequence

from django.db.models.signals import post_save

from chains.base import FetchResult
from portfolio.models import Holding, NftItem, Position, PositionLeg, WalletChain

# Problem codes that mean an asset's balance could not be read: its previous amount is kept.
UNREAD_CODES = {"balance_call_failed", "balance_bad_return", "native_balance_failed"}
# Part of every fingerprint: change it when the rows ``store`` builds from a fetch change for the same
# fetch (a new column, another truncation), so that every WalletChain is diffed once again.
VERSION = "1"

_OWNER, _ASSET, _AMOUNT, _UNCONFIRMED, _DETAILS = (attrgetter(name) for name in (
    "owner", "asset", "amount", "unconfirmed", "details"))


@dataclass
class Fingerprints:
    """A fetch's fingerprint per WalletChain, with where each one's balances are in the fetch and how
    many rows of each kind it makes (the run item's counts, without building the rows)."""

    by_id: dict[int, str] = field(default_factory=dict)
    balance_rows: dict[int, list[tuple[int, int]]] = field(default_factory=dict)  # WalletChain id -> [start, stop) runs of balances
    nfts: dict[int, list] = field(default_factory=dict)
    positions: dict[int, list] = field(default_factory=dict)
    counts: dict[int, dict[str, int]] = field(default_factory=dict)

    def unchanged(self, wallet_chains: Iterable[WalletChain]) -> set[int]:
        """The WalletChains whose stored rows are what this fetch holds for them."""
        return {wc.id for wc in wallet_chains
                if wc.last_ok_at is not None and wc.stored_fingerprint and wc.stored_fingerprint == self.by_id.get(wc.id)}


def of_fetch(wallet_chains: Sequence[WalletChain], result: FetchResult) -> Fingerprints:
    """The fingerprint of ``result`` for each WalletChain; none at all (an empty ``by_id``) when the
    fetch is not to be stored as fetched: a balance could not be read (its last amount is carried
    over), a protocol's positions not all read (its last ones are kept), or a row names no wallet of
    the group. About 13 ms for 250 wallets x 100 tokens (reading and diffing their stored rows costs
    ~10 times that): the columns are picked and serialised at C speed, one Python step runs per
    WalletChain and per run of rows of one owner (sliced), none per row. The part that names the
    assets (their addresses, serialised, and the holdings they make) is built once per distinct run
    of assets: the wallets of a group are read for the same list, so it is built once per group."""
    if result.incomplete_protocols or any(p.code in UNREAD_CODES for p in result.problems):
        return Fingerprints()
    index: dict[str, int] = {}
    for wc in wallet_chains:
        index[wc.wallet.address] = wc.id
        index[wc.wallet.address.lower()] = wc.id
    single = wallet_chains[0].id if len(wallet_chains) == 1 else None

    def owner_of(owner: str) -> int | None:
        return index.get(owner) or index.get(owner.lower()) or single

    balances = result.balances
    rows: dict[int, list[tuple[int, int]]] = {wc.id: [] for wc in wallet_chains}
    start = 0
    for owner, run in groupby(map(_OWNER, balances)):  # runs of one owner: slices, no step per row
        wc_id = owner_of(owner)
        if wc_id is None:
            return Fingerprints()
        stop = start + len(list(run))
        rows[wc_id].append((start, stop))
        start = stop
    nfts: dict[int, list] = {wc.id: [] for wc in wallet_chains}
    positions: dict[int, list] = {wc.id: [] for wc in wallet_chains}
    for kind, items in ((nfts, result.nfts), (positions, result.positions)):
        for item in items:
            wc_id = owner_of(item.owner)
            if wc_id is None:
                return Fingerprints()
            kind[wc_id].append(item)
    assets, amounts = list(map(_ASSET, balances)), list(map(_AMOUNT, balances))
    # Unconfirmed amounts (Bitcoin) and details (UTXO counts) are in the digest only when a balance
    # of the fetch has one: a fetch with and one without them never share a digest (another shape).
    columns = [amounts]
    for pick in (_UNCONFIRMED, _DETAILS):
        if any(map(pick, balances)):
            columns.append(list(map(pick, balances)))
    out = Fingerprints(balance_rows=rows, nfts=nfts, positions=positions)
    # the last run of assets seen, its addresses serialised, and the holding keys they make
    last_assets: list | None = None
    head, held = b"", set()
    for wc_id, runs in rows.items():
        own_assets = _take(assets, runs)
        if own_assets != last_assets:  # the same AssetRef objects as the last WalletChain's: compared by identity first
            addresses = [a.address for a in own_assets]
            last_assets, head, held = own_assets, marshal.dumps((VERSION, addresses), 2), _held(addresses)
        # NFTs and positions (a few) as their repr, exact for their types (ints, strings, Decimal, dicts)
        own = (tuple(_take(column, runs) for column in columns), repr(nfts[wc_id]), repr(positions[wc_id]))
        out.by_id[wc_id] = _digest(head, own)
        out.counts[wc_id] = _counts(held, nfts[wc_id], positions[wc_id])
    return out


def _take(column: list, runs: list[tuple[int, int]]) -> list:
    """A WalletChain's part of a column: its one run as a slice, its runs joined, or none (a fetch
    without a balance of this wallet)."""
    if not runs:
        return []
    if len(runs) == 1:
        return column[runs[0][0]:runs[0][1]]
    part = column[runs[0][0]:runs[0][1]]
    for a, b in runs[1:]:
        part += column[a:b]
    return part


def _held(addresses: list[str | None]) -> set[str]:
    """The holding keys of a run of balances: each address once, the native asset (no address) as ""."""
    held = set(addresses)
    if None in held:
        held.discard(None)
        held.add("")
    return held


def _counts(held: set[str], nfts: list, positions: list) -> dict[str, int]:
    """The rows ``store`` makes of one WalletChain's part of a fetch, counted by key as it counts them:
    an asset listed twice is one holding, a token a position accounts for none."""
    if not nfts and not positions:
        return {"balances": len(held), "nfts": 0, "positions": 0, "stale": 0}
    accounted = {a.lower() for p in positions for a in p.accounts_for}
    if accounted:
        held = {a for a in held if a.lower() not in accounted}
    return {"balances": len(held), "nfts": len({(n.collection.address, n.token_id[:100]) for n in nfts}),
            "positions": len({(p.protocol[:60], p.ref[:120]) for p in positions}), "stale": 0}


def _digest(head: bytes, value: tuple) -> str:
    """A digest of ``head`` (a marshal serialisation) and plain values (ints, strings, lists, dicts,
    tuples) by their marshal serialisation: C speed, exact (it decodes back to the same values, and
    two serialisations end to end decode back to the two). Version 2 writes no back-references, so
    equal values give equal bytes (a string's interning flag aside, which can only tell equal values
    apart: a needless full diff, never a missed change). Other values fall back to their repr."""
    try:
        data = marshal.dumps(value, 2)
    except ValueError:
        data = repr(value).encode()
    return hashlib.sha256(head + data).hexdigest()[:32]


def forget(*, wallet_chain_ids: Iterable[int] = (), owner_ids: Iterable[int] = ()) -> None:
    """These WalletChains' (or these owners') rows were written around the sync: their next sync reads
    and diffs them in full."""
    wc_ids, owners = sorted(set(wallet_chain_ids)), sorted(set(owner_ids))
    if wc_ids:
        WalletChain.objects.filter(id__in=wc_ids).exclude(stored_fingerprint="").update(stored_fingerprint="")
    if owners:
        WalletChain.objects.filter(wallet__owner_id__in=owners).exclude(stored_fingerprint="").update(stored_fingerprint="")


def _row_saved(sender, instance, **kwargs) -> None:
    if isinstance(instance, PositionLeg):
        wc_id = Position.objects.filter(pk=instance.position_id).values_list("wallet_chain_id", flat=True).first()
    else:
        wc_id = instance.wallet_chain_id
    if wc_id is not None:
        forget(wallet_chain_ids=[wc_id])


def install() -> None:
    """A row saved through the ORM (not by the sync, which writes around it) forgets its fingerprint."""
    for model in (Holding, NftItem, Position, PositionLeg):
        post_save.connect(_row_saved, sender=model, dispatch_uid=f"fingerprint_{model.__name__}")
