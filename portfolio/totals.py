"""Per-asset totals of each scope (an owner's "All wallets" and each portfolio: models.AssetTotal), kept
next to the holdings so the holdings page reads one row per asset, not one per holding.

Who keeps them: the sync's diff writer adds what it changed (``apply_holding_changes``, only when a
holding changed), a portfolio's membership change adds or takes out the wallet's holdings, a
WalletChain's deletion (a wallet's, a chain's) takes its holdings out, and a Holding saved through the
ORM (admin, fixtures) recomputes its asset. ``rebuild`` recomputes an owner's totals from the holdings
(the migration, and data loaded around the ORM). The same hooks tell portfolio/pair_values.py whose
pairs' values to recompute (``rebuild``: all the owner's), and portfolio/holdings_cache.py
whose kept asset lists (last, after the other writes). Sums are exact ints; on PostgreSQL a delta is added in
SQL (NUMERIC, one upsert, safe with concurrent writers), on SQLite in Python under its one write lock."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Iterable, Sequence

from django.db import connection
from django.db.models.signals import m2m_changed, post_save, pre_delete

from portfolio import holdings_cache, pair_values
from portfolio.models import AssetTotal, Holding, Portfolio, Wallet, WalletChain
from portfolio.sync import fingerprint

Key = tuple[int, int | None, int]  # (owner id, portfolio id or None for "All wallets", asset id)
Sums = dict[tuple[int, int], tuple[int, int]]  # (wallet id, asset id) -> (amount, holdings)
Members = Portfolio.wallets.through


def holding_sums(holdings) -> Sums:
    """(wallet id, asset id) -> (sum of the non-zero amounts, how many) of a Holding queryset, summed
    from plain tuples (no model instance or Decimal per holding; amounts are TEXT on SQLite). One query."""
    qs = holdings.exclude(amount=0).order_by().values_list("wallet_chain__wallet_id", "asset_id", "amount")
    sql, params = qs.query.sql_with_params()
    amounts: dict[tuple[int, int], int] = defaultdict(int)
    counts: dict[tuple[int, int], int] = defaultdict(int)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        while chunk := cursor.fetchmany(10_000):
            for wallet_id, asset_id, amount in chunk:
                key = (wallet_id, asset_id)
                amounts[key] += int(amount)
                counts[key] += 1
    return {key: (amounts[key], counts[key]) for key in amounts}


def _scoped(owner_of: dict[int, int], sums: Sums, scopes_of: dict[int, Iterable[int | None]], sign: int = 1) -> dict[Key, tuple[int, int]]:
    """Per-wallet sums spread over the scopes that count each wallet (None: the owner's "All wallets")."""
    out: dict[Key, list[int]] = defaultdict(lambda: [0, 0])
    for (wallet_id, asset_id), (amount, n) in sums.items():
        for portfolio_id in scopes_of.get(wallet_id, ()):
            cell = out[(owner_of[wallet_id], portfolio_id, asset_id)]
            cell[0] += sign * amount
            cell[1] += sign * n
    return {key: (a, n) for key, (a, n) in out.items() if a or n}


def _memberships(wallet_ids: Iterable[int]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = defaultdict(list)
    for wallet_id, portfolio_id in Members.objects.filter(wallet_id__in=list(wallet_ids)).values_list("wallet_id", "portfolio_id"):
        out[wallet_id].append(portfolio_id)
    return out


def apply(deltas: dict[Key, tuple[int, int]]) -> None:
    """Add (amount, holders) deltas to the totals of their scopes, creating missing rows."""
    if not deltas:
        return
    keys = sorted(deltas, key=lambda k: (k[0], k[1] or 0, k[2]))  # one order for every writer: no deadlocks
    table = connection.ops.quote_name(AssetTotal._meta.db_table)
    if connection.vendor == "postgresql":
        for portfolio_rows, target in ((False, "(owner_id, asset_id) WHERE portfolio_id IS NULL"),
                                       (True, "(portfolio_id, asset_id) WHERE portfolio_id IS NOT NULL")):
            rows = [(o, p, a, Decimal(deltas[(o, p, a)][0]), deltas[(o, p, a)][1]) for o, p, a in keys if (p is not None) == portfolio_rows]
            if rows:
                with connection.cursor() as cursor:
                    cursor.executemany(
                        f"INSERT INTO {table} AS t (owner_id, portfolio_id, asset_id, amount, holders) VALUES (%s, %s, %s, %s, %s) "
                        f"ON CONFLICT {target} DO UPDATE SET amount = t.amount + EXCLUDED.amount, holders = t.holders + EXCLUDED.holders",
                        rows)
        return
    stored = {(o, p, a): (pk, amount, n) for pk, o, p, a, amount, n in AssetTotal.objects.filter(
        owner_id__in={k[0] for k in keys}, asset_id__in=sorted({k[2] for k in keys}))
        .values_list("id", "owner_id", "portfolio_id", "asset_id", "amount", "holders")}
    updates, inserts = [], []
    for key in keys:
        amount, n = deltas[key]
        if key in stored:
            pk, old_amount, old_n = stored[key]
            updates.append((str(old_amount + amount), old_n + n, pk))
        else:
            inserts.append((*key, str(amount), n))
    with connection.cursor() as cursor:
        if updates:
            cursor.executemany(f"UPDATE {table} SET amount = %s, holders = %s WHERE id = %s", updates)
        if inserts:
            cursor.executemany(f"INSERT INTO {table} (owner_id, portfolio_id, asset_id, amount, holders) VALUES (%s, %s, %s, %s, %s)",
                               inserts)


def apply_holding_changes(wallet_chains: Sequence[WalletChain], changes: dict[tuple[int, int], tuple[int, int]]) -> None:
    """The sync's hook, inside its transaction: ``changes`` maps (WalletChain id, asset id) to the
    (amount, holders) delta its diff wrote. Two or three statements, none when nothing changed."""
    if not changes:
        return
    by_id = {wc.id: wc for wc in wallet_chains}
    sums: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0, 0])
    for (wc_id, asset_id), (amount, n) in changes.items():
        cell = sums[(by_id[wc_id].wallet_id, asset_id)]
        cell[0] += amount
        cell[1] += n
    owner_of = {wc.wallet_id: wc.wallet.owner_id for wc in wallet_chains}
    portfolios = _memberships(owner_of)
    apply(_scoped(owner_of, {k: tuple(v) for k, v in sums.items()}, {w: [None, *portfolios.get(w, ())] for w in owner_of}))
    pair_values.changed({(owner_of[by_id[wc_id].wallet_id], by_id[wc_id].wallet_id, by_id[wc_id].chain_id) for wc_id, _ in changes})
    holdings_cache.changed(owner_of.values())  # last: every writer takes these locks after the others


def _lock_wallets(wallet_ids: Sequence[int]) -> None:
    """On PostgreSQL, wait for a sync writing these wallets (it holds their WalletChains), so the
    holdings read next are the committed ones and the sync, after us, sees the new membership."""
    if connection.vendor == "postgresql":
        list(WalletChain.objects.filter(wallet_id__in=list(wallet_ids)).order_by("id").select_for_update().values_list("id"))


def change_members(pairs: Iterable[tuple[int, int]], sign: int) -> None:
    """Add (``sign`` 1) or take out (-1) the holdings of each (wallet id, portfolio id) pair to or from
    the portfolio's totals."""
    scopes: dict[int, list[int | None]] = defaultdict(list)
    for wallet_id, portfolio_id in pairs:
        scopes[wallet_id].append(portfolio_id)
    if not scopes:
        return
    _lock_wallets(sorted(scopes))
    sums = holding_sums(Holding.objects.filter(wallet_chain__wallet_id__in=sorted(scopes)))
    owner_of = dict(Wallet.objects.filter(pk__in=sorted(scopes)).values_list("pk", "owner_id"))
    apply(_scoped(owner_of, sums, scopes, sign))
    holdings_cache.changed(owner_of.values())


def rebuild(owner_id: int, asset_ids: Iterable[int] | None = None) -> None:
    """Recompute an owner's totals (of ``asset_ids`` only, when given) from the holdings. A full rebuild
    is the step that follows rows written around the sync, so the owner's stored fingerprints are
    forgotten too: each WalletChain's next sync diffs its rows in full (and repairs them)."""
    if asset_ids is None:
        fingerprint.forget(owner_ids=[owner_id])
    holdings = Holding.objects.filter(wallet_chain__wallet__owner_id=owner_id)
    existing = AssetTotal.objects.filter(owner_id=owner_id)
    if asset_ids is not None:
        asset_ids = sorted(set(asset_ids))
        holdings, existing = holdings.filter(asset_id__in=asset_ids), existing.filter(asset_id__in=asset_ids)
    sums = holding_sums(holdings)
    wallets = {w for w, _ in sums}
    portfolios = _memberships(wallets)
    totals = _scoped({w: owner_id for w in wallets}, sums, {w: [None, *portfolios.get(w, ())] for w in wallets})
    existing.delete()
    pair_values.forget([owner_id])
    AssetTotal.objects.bulk_create([AssetTotal(owner_id=o, portfolio_id=p, asset_id=a, amount=amount, holders=n)
                                    for (o, p, a), (amount, n) in totals.items()], batch_size=5000)
    holdings_cache.changed([owner_id])


def scope_totals(owner_id: int, portfolio_id: int | None) -> dict[int, tuple[int, int]]:
    """asset id -> (amount, holders) of a scope's totals (accounts reached twice still in). One query."""
    rows = AssetTotal.objects.filter(owner_id=owner_id, holders__gt=0)
    rows = rows.filter(portfolio__isnull=True) if portfolio_id is None else rows.filter(portfolio_id=portfolio_id)
    return {asset_id: (amount, n) for asset_id, amount, n in rows.values_list("asset_id", "amount", "holders")}


# --------------------------------------------------------------------------- signals


def _members_changed(sender, instance, action, reverse, pk_set, **kwargs) -> None:
    if action not in ("post_add", "pre_remove", "pre_clear"):
        return
    pairs = Members.objects.filter(**({"wallet_id": instance.pk} if reverse else {"portfolio_id": instance.pk}))
    if action != "pre_clear":  # pre_remove's ids may include non-members: the filter keeps the real pairs
        pairs = pairs.filter(**({"portfolio_id__in": pk_set} if reverse else {"wallet_id__in": pk_set}))
    change_members(list(pairs.values_list("wallet_id", "portfolio_id")), 1 if action == "post_add" else -1)


def _wallet_chain_deleted(sender, instance: WalletChain, **kwargs) -> None:
    sums = holding_sums(Holding.objects.filter(wallet_chain_id=instance.pk))
    if not sums:
        return
    owner_id = Wallet.objects.filter(pk=instance.wallet_id).values_list("owner_id", flat=True).first()
    scopes = {instance.wallet_id: [None, *_memberships([instance.wallet_id]).get(instance.wallet_id, ())]}
    apply(_scoped({instance.wallet_id: owner_id}, sums, scopes, -1))
    pair_values.changed([(owner_id, instance.wallet_id, instance.chain_id)])
    holdings_cache.changed([owner_id])


def _holding_saved(sender, instance: Holding, raw: bool = False, **kwargs) -> None:
    if raw:
        return
    owner_id = WalletChain.objects.filter(pk=instance.wallet_chain_id).values_list("wallet__owner_id", flat=True).first()
    if owner_id is not None:
        rebuild(owner_id, [instance.asset_id])


def install() -> None:
    m2m_changed.connect(_members_changed, sender=Members, dispatch_uid="asset_totals_members")
    pre_delete.connect(_wallet_chain_deleted, sender=WalletChain, dispatch_uid="asset_totals_wallet_chain")
    post_save.connect(_holding_saved, sender=Holding, dispatch_uid="asset_totals_holding")
