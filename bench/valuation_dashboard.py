"""Dashboard page cost at scale (the whole view through the test client, every query and the template):
1,000 wallets, 100,000 holdings, one year of snapshots (hourly for 7 days, daily before), against a naive
per-wallet read of the same figures, interleaved over the same rounds; and a portfolio whose series is
not materialised yet.

    .venv/bin/python bench/valuation_dashboard.py [--scale 0.1] [--rounds 7]

Uses a throwaway test database (Django's test-database machinery: in-memory SQLite by default, or
``test_<name>`` on PostgreSQL when DATABASE_URL points there) and writes
bench/results/valuation_dashboard.json.

Why it is fast: each snapshot materialises one ScopeValue row per (owner, wallet set, hour) with the
exact total, flow and market parts, and the latest row carries the allocation breakdown. A 1y series is
then ~530 rows of one scope whatever the number of wallets or holdings; on SQLite the exact sums
(TEXT columns) happen once at snapshot time in Python instead of at every page view.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portfolio.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_test_environment  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench._common import interleaved, timer, write_results  # noqa: E402

HOURLY_POINTS = 7 * 24
DAILY_POINTS = 365 - 7


def build(scale: float) -> dict:
    """The dataset: one owner, N wallets on 4 EVM chains, 100 holdings each over 500 assets (80% priced)."""
    from portfolio import totals
    from portfolio.models import Asset, Chain, Holding, PricePoint, ScopeValue, Wallet, WalletChain, WalletValue
    from portfolio.services.snapshots import scope_key

    n_wallets = max(2, int(1000 * scale))
    per_wallet = 100
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    owner = get_user_model().objects.create_user("bench", "bench@example.com", "x" * 20)
    chains = list(Chain.objects.filter(slug__in=["ethereum", "arbitrum", "base", "polygon"]))
    assets = Asset.objects.bulk_create(
        [Asset(chain=chains[i % len(chains)], kind="fungible", standard="erc20", address=f"0x{0xbe000 + i:040x}",
               symbol=f"TK{i}", decimals=18) for i in range(500)]
    )
    PricePoint.objects.bulk_create(
        [PricePoint(asset=a, at=now - timedelta(minutes=5), price=Decimal(f"{1 + i % 97}.{i:04d}"), source="manual")
         for i, a in enumerate(assets) if i % 5]
    )
    wallets = Wallet.objects.bulk_create(
        [Wallet(owner=owner, family="evm", address=f"0x{0xa11e7 + n:040x}", label=f"w{n}") for n in range(n_wallets)]
    )
    wcs = WalletChain.objects.bulk_create(
        [WalletChain(wallet=w, chain=c, last_ok_at=now, height=1000, status="ok") for w in wallets for c in chains]
    )
    by_wallet_chain = {(wc.wallet_id, wc.chain_id): wc.pk for wc in wcs}
    # 100,000 holdings as plain rows, not a model instance each (every (wallet, asset) pair is distinct).
    prep = {name: Holding._meta.get_field(name) for name in ("amount", "details")}
    zero, details = prep["amount"].get_db_prep_save(0, connection), prep["details"].get_db_prep_save({}, connection)
    holdings = []
    for n, w in enumerate(wallets):
        for k in range(per_wallet):
            a = assets[(n * 7 + k * 5) % len(assets)]
            holdings.append((by_wallet_chain[(w.id, a.chain_id)], a.pk,
                             prep["amount"].get_db_prep_save((k + 1) * 10**18 + n, connection), zero, details))
    with connection.cursor() as cursor:
        cursor.executemany(f"INSERT INTO {Holding._meta.db_table} (wallet_chain_id, asset_id, amount, unconfirmed, details)"
                           f" VALUES (%s, %s, %s, %s, %s)", holdings)
    totals.rebuild(owner.pk)  # holdings loaded around the sync: their per-asset totals

    # One year of per-wallet totals (what each past snapshot wrote) and the materialised scope series.
    # Wallet n's total at the i-th time is 10,000 + n + i % 50 (market part 1, or -49 every 50th time);
    # one INSERT ... SELECT over the owner's wallets per time writes those rows in the database itself
    # (525,000 of them at scale 1: model instances would take minutes). SQLite stores the integer
    # results as the text of the TEXT columns, PostgreSQL casts them to numeric: the same exact values.
    times = [now - timedelta(hours=h) for h in range(1, HOURLY_POINTS)] + [now - timedelta(days=d) for d in range(7, 7 + DAILY_POINTS)]
    times.sort()
    fx = {"EUR": "0.9", "GBP": "0.8", "CHF": "0.88", "JPY": "150"}
    field = WalletValue._meta.get_field
    insert = (
        f"INSERT INTO {WalletValue._meta.db_table} (wallet_id, at, resolution, value, flow_value, market_value,"
        f" opening_value, unpriced, fx_rates)"
        f" SELECT id, %s, %s, {{value}}, 0, {{market}}, 0, 0, %s FROM {Wallet._meta.db_table} WHERE owner_id = %s"
    )
    value_sql = "10000 + CAST(SUBSTR(label, 2) AS INTEGER) + %s"  # label "w<n>"
    fx_db = field("fx_rates").get_db_prep_save(fx, connection)
    scope_totals = {}
    base_total = sum(10_000 + n for n in range(n_wallets))
    with connection.cursor() as cursor:
        for i, at in enumerate(times):
            resolution = "hourly" if at >= now - timedelta(days=7) else "daily"
            market = value_sql if i == 0 else ("1" if i % 50 else "-49")
            cursor.execute(insert.format(value=value_sql, market=market),
                           [field("at").get_db_prep_save(at, connection), resolution, i % 50, *([i % 50] if i == 0 else []),
                            fx_db, owner.pk])
            scope_totals[at] = (resolution, Decimal(base_total + n_wallets * (i % 50)))
    key = scope_key(w.id for w in wallets)
    prev = Decimal(0)
    scope_rows = []
    for at, (resolution, total) in scope_totals.items():
        scope_rows.append(ScopeValue(owner=owner, scope_key=key, at=at, resolution=resolution, value=total,
                                     flow_value=Decimal(0) if prev else total, market_value=total - prev if prev else Decimal(0),
                                     fx_rates=fx))
        prev = total
    ScopeValue.objects.bulk_create(scope_rows, batch_size=2000)
    return {"owner": owner, "wallet_ids": [w.id for w in wallets], "now": now, "holdings": len(holdings),
            "points": len(times) * len(wallets)}


def small_dataset(now) -> tuple:
    """A second owner with 3 wallets x 10 holdings, for the query-count comparison."""
    from portfolio.models import Asset, Holding, Wallet, WalletChain
    from portfolio.services.snapshots import do_snapshot

    user = get_user_model().objects.create_user("small", "small@example.com", "x" * 20)
    assets = list(Asset.objects.filter(symbol__startswith="TK")[:10])
    for n in range(3):
        w = Wallet.objects.create(owner=user, family="evm", address=f"0x{0x5a11 + n:040x}")
        for a in assets:
            wc, _ = WalletChain.objects.get_or_create(wallet=w, chain=a.chain)
            Holding.objects.create(wallet_chain=wc, asset=a, amount=10**18)
    do_snapshot(list(Wallet.objects.filter(owner=user).values_list("pk", flat=True)), at=now - timedelta(hours=1))
    do_snapshot(list(Wallet.objects.filter(owner=user).values_list("pk", flat=True)), at=now)
    return user, list(Wallet.objects.filter(owner=user).values_list("pk", flat=True))


def naive_dashboard(user, wallet_ids, start):
    """The baseline: one query per wallet for its series and one per wallet for its holdings, priced in Python."""
    from portfolio.models import Holding, WalletValue
    from portfolio.services.prices import latest_prices
    from portfolio.valuation import ZERO, exact, to_units

    series: dict = {}
    by_asset: dict = {}
    holdings_per_wallet = []
    with exact():
        for w in wallet_ids:
            for at, value in WalletValue.objects.filter(wallet_id=w, at__gte=start).values_list("at", "value"):
                series[at] = series.get(at, ZERO) + value
            holdings_per_wallet.append(list(Holding.objects.filter(wallet_chain__wallet_id=w).values_list("asset_id", "asset__decimals", "amount")))
        prices = latest_prices({a for hs in holdings_per_wallet for a, _, _ in hs})
        for hs in holdings_per_wallet:
            for a, decimals, amount in hs:
                if a in prices:
                    by_asset[a] = by_asset.get(a, ZERO) + to_units(amount, decimals) * prices[a].usd
    return sorted(series.items()), by_asset


def page(client, url: str):
    """A request through the test client (middleware, view, every query, template); fails on a non-200."""
    def get():
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        return response
    return get


def counted(fn) -> tuple[int, int]:
    """(queries, response bytes) of one call."""
    with CaptureQueriesContext(connection) as ctx:
        response = fn()
    return len(ctx.captured_queries), len(getattr(response, "content", b""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of 1,000 wallets / 100,000 holdings")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    from django.conf import settings
    from django.test import Client
    from django.test.utils import override_settings
    from django.urls import reverse

    from portfolio.models import Portfolio
    from portfolio.services.snapshots import do_snapshot

    setup_test_environment()
    override_settings(STORAGES={**settings.STORAGES, "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}).enable()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        with timer() as t_build:
            data = build(args.scale)
        owner, ids, now = data["owner"], data["wallet_ids"], data["now"]
        with timer() as t_snapshot:
            report = do_snapshot(ids, at=now)
        start = now - timedelta(days=365)
        client = Client()
        client.force_login(owner)
        # A portfolio made after the snapshots: its series is not materialised yet.
        pending = Portfolio.objects.create(owner=owner, name="new")
        pending.wallets.set(ids[:-1])
        small_user, _small_ids = small_dataset(now)
        small_client = Client()
        small_client.force_login(small_user)
        cases = {
            "page_1y_usd": page(client, reverse("dashboard") + "?range=1y"),
            "page_24h_usd": page(client, reverse("dashboard") + "?range=24h"),
            "page_unmaterialised_portfolio": page(client, reverse("portfolio_dashboard", args=[pending.pk]) + "?range=1y"),
            "naive_per_wallet": lambda: naive_dashboard(owner, ids, start),
        }
        counts = {name: counted(fn) for name, fn in cases.items()}
        small_q, _ = counted(page(small_client, reverse("dashboard") + "?range=1y"))
        times = interleaved(cases, args.rounds)
        figures = {
            "database": (1.0 if connection.vendor == "postgresql" else 0.0, "1 = PostgreSQL, 0 = SQLite"),
            "wallets": (len(ids), "wallets"),
            "holdings": (data["holdings"], "holdings"),
            "wallet_total_points": (data["points"], "rows"),
            "rounds": (args.rounds, "rounds"),
            "load_average": (os.getloadavg()[0], "load"),
            "build_dataset_s": (t_build["s"], "s"),
            "snapshot_100k_holdings_s": (t_snapshot["s"], "s"),
            "snapshot_value_points": (report.points, "rows"),
            "page_queries_small_dataset": (small_q, "queries"),
        }
        for name, ts in times.items():
            ms = sorted(t * 1000 for t in ts)
            figures[f"{name}_min_ms"] = (ms[0], "ms")
            figures[f"{name}_median_ms"] = (statistics.median(ms), "ms")
            figures[f"{name}_max_ms"] = (ms[-1], "ms")
            figures[f"{name}_queries"] = (counts[name][0], "queries")
            if counts[name][1]:
                figures[f"{name}_bytes"] = (counts[name][1], "bytes")
        ratios = [n / p for n, p in zip(times["naive_per_wallet"], times["page_1y_usd"])]
        figures["naive_vs_page_median"] = (statistics.median(ratios), "x")
        write_results("valuation_dashboard", figures, sizes={
            "wallets": len(ids), "holdings": data["holdings"], "wallet_total_points": data["points"], "rounds": args.rounds,
            "database": connection.vendor})
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
