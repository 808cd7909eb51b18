"""Accounts reached through several wallets: which (wallet, chain) pairs a scope counts, so that an
on-chain account contributes once to every total whatever the number of wallets that reach it.

Two wallets reach the same account on a chain when they are the same extended key in two encodings
(a tpub and a vpub of one key with the same script type), the same address, or a single address
that an extended key of the scope derives. In a scope, the pair of the later wallet (or of the single
address) is *covered*: per-wallet views still show it, marked "also in <wallet>", but scope totals
(net worth, allocation, holdings, history, returns, CSV, API) leave it out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from chains.base import InvalidAddress
from chains.bitcoin.adapter import BitcoinAdapter
from chains.bitcoin.address import account_identity
from portfolio.models import Wallet, WalletChain

Pair = tuple[int, int]  # (wallet id, chain id)


@dataclass(frozen=True)
class Cover:
    """A pair the scope does not count, the wallet whose pair counts it instead, and why."""

    wallet_id: int
    chain_id: int
    counted_in: int
    reason: str  # "same_account" | "derived_address"


def account_key(family: str, kind: str, address: str, script_type: str = "") -> str:
    """The identity of the on-chain account behind a wallet's address or key (see module docstring)."""
    if kind == Wallet.EXTENDED_KEY:
        try:
            return "key:" + account_identity(address, script_type or None)
        except InvalidAddress:
            return "text:" + address
    return "addr:" + (address.lower() if family == "evm" else address)


def covered_pairs(wallet_ids: Iterable[int]) -> dict[Pair, Cover]:
    """The (wallet, chain) pairs among ``wallet_ids`` that the set does not count. One query."""
    rows, cursors = _pair_rows(wallet_ids)
    return _covers(rows, cursors)


def covered_pairs_of_groups(groups: dict) -> dict:
    """``covered_pairs`` of several sets of wallets at once (a page of portfolios: key -> wallet ids),
    from one read of their wallet-chains: at most two queries in all."""
    rows, cursors = _pair_rows({w for ids in groups.values() for w in ids})
    out = {}
    for key, ids in groups.items():
        wanted = set(ids)
        out[key] = _covers([r for r in rows if r[0] in wanted], cursors)
    return out


def _pair_rows(wallet_ids: Iterable[int]) -> tuple[list[tuple], dict[Pair, dict]]:
    rows = list(
        WalletChain.objects.filter(wallet_id__in=sorted(set(wallet_ids)))
        .order_by("chain_id", "wallet_id")
        .values_list("wallet_id", "chain_id", "wallet__family", "wallet__kind", "wallet__address", "wallet__script_type")
    )
    keyed = [r for r in rows if r[3] == Wallet.EXTENDED_KEY]
    cursors = dict(((w, c), cur) for w, c, cur in WalletChain.objects.filter(
        wallet_id__in=[r[0] for r in keyed]).values_list("wallet_id", "chain_id", "cursors")) if keyed else {}
    return rows, cursors


def _covers(rows: list[tuple], cursors: dict[Pair, dict]) -> dict[Pair, Cover]:
    by_chain: dict[int, list[tuple]] = {}
    for row in rows:
        by_chain.setdefault(row[1], []).append(row)
    covers: dict[Pair, Cover] = {}
    for chain_id, chain_rows in by_chain.items():
        covers.update(_covers_on_chain(chain_id, chain_rows, cursors))
    return covers


def _covers_on_chain(chain_id: int, rows: list[tuple], cursors: dict[Pair, dict]) -> dict[Pair, Cover]:
    first_of: dict[str, int] = {}  # account key -> the wallet that counts it (lowest id)
    covers: dict[Pair, Cover] = {}
    for wallet_id, _, family, kind, address, script_type in rows:  # ordered by wallet id
        key = account_key(family, kind, address, script_type)
        if key in first_of:
            covers[(wallet_id, chain_id)] = Cover(wallet_id, chain_id, first_of[key], "same_account")
        else:
            first_of[key] = wallet_id
    derived: dict[str, int] = {}
    for wallet_id, _, _, kind, _, _ in rows:
        if kind == Wallet.EXTENDED_KEY and (wallet_id, chain_id) not in covers:
            for address in BitcoinAdapter.derived_addresses(cursors.get((wallet_id, chain_id)) or {}):
                derived.setdefault(address, wallet_id)
    for wallet_id, _, _, kind, address, _ in rows:
        if kind != Wallet.EXTENDED_KEY and address in derived and (wallet_id, chain_id) not in covers:
            covers[(wallet_id, chain_id)] = Cover(wallet_id, chain_id, derived[address], "derived_address")
    return covers


def also_in(owner_id: int, wallet_id: int) -> dict[int, list[int]]:
    """For one wallet's page: chain id -> the owner's other wallets that reach the same account there."""
    covers = covered_pairs(Wallet.objects.filter(owner_id=owner_id).values_list("id", flat=True))
    out: dict[int, set[int]] = {}
    for cover in covers.values():
        if cover.wallet_id == wallet_id:
            out.setdefault(cover.chain_id, set()).add(cover.counted_in)
        elif cover.counted_in == wallet_id:
            out.setdefault(cover.chain_id, set()).add(cover.wallet_id)
    return {c: sorted(ws) for c, ws in out.items()}


def overlap_note(wallet: Wallet) -> str:
    """What to tell the user who just added ``wallet`` when it reaches an account another of their
    wallets already reaches ("" when it does not): kept for its label, counted once."""
    covers = covered_pairs(Wallet.objects.filter(owner_id=wallet.owner_id).values_list("id", flat=True))
    others = {c.counted_in for c in covers.values() if c.wallet_id == wallet.pk}
    others |= {c.wallet_id for c in covers.values() if c.counted_in == wallet.pk}
    if not others:
        return ""
    names = ", ".join(str(w) for w in Wallet.objects.filter(pk__in=others).order_by("pk"))
    return (f"{wallet} reaches the same account as {names}. Both are kept (each shows it, marked \"also in\"), "
            "and every total counts it once.")
