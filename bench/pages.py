"""Whole pages through the test client (every query, template and middleware): the holdings page and the
holdings API at 10k / 100k / 1M holdings (1,000 wallets each, 20k transfers of history read by the
cost-basis column, daily prices over 180 days), the dashboard at 100 / 1,000 / 10,000 wallets (1 year
of history, materialised), and a portfolio whose series is not built yet.

    .venv/bin/python bench/pages.py [--rounds 7] [--skip-1m] [--rebuild] [--no-cold]

Each round requests every case once, in a rotated order, so load on the shared machine hits all cases
alike; figures are min/median/max over the rounds, the median CPU time of this process, the query
count (of a second view: the steady state) and the response bytes; then, per holdings case, the
median of 3 first views right after a new price was stored (--no-cold leaves them out). The
"baseline" of a growth table is its smallest case in the same rounds: the target is a flat page, so
the ratio to it is the figure to read. The dataset is built once
into var/bench/pages-<db>.sqlite3 (or the PostgreSQL database of BENCH_DATABASE_URL) and reused;
--rebuild starts over.
Writes bench/results/pages_<db>.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Iterable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portfolio.settings")

from bench._common import client_environment, configure_database, page_figures, page_header, time_pages, write_results  # noqa: E402

DATASET_VERSION = "pages-3"  # 2: with the per-asset totals (portfolio/totals.py); 3: transfers, backfills, daily prices


HOURLY, DAILY = 7 * 24, 365 - 7
HOLDING_SIZES = {"10k": 10, "100k": 100, "1M": 1000}  # holdings per wallet, 1,000 wallets
WALLET_SIZES = {"100w": 100, "1000w": 1000, "10000w": 10_000}
N_ASSETS = 2000
N_TRANSFERS = 20_000  # per holdings owner: the history the cost-basis column reads
HISTORY_DAYS = 180  # transfers and daily prices (the prices of their days) over this span
EXTERNAL = "0x" + "ee" * 20


def _insert(table: str, columns: tuple[str, ...], rows: Iterable[tuple]) -> int:
    """Plain tuples straight through the driver, no model instance and no Django cursor per row: COPY
    on PostgreSQL, one executemany on SQLite. Values must already be in the column's stored form
    (``_db``)."""
    from django.db import connection, transaction

    n = 0

    def counted():
        nonlocal n
        for row in rows:
            n += 1
            yield row

    with transaction.atomic():
        connection.ensure_connection()
        raw = connection.connection
        if connection.vendor == "postgresql":
            with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in counted():
                    copy.write_row(row)
        else:
            raw.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})", counted())
    return n


def _db(db_vendor: str):
    """(amount, decimal, moment) converters to the stored form: amounts and decimals are TEXT on SQLite,
    moments its naive UTC text; PostgreSQL's driver takes the Python values."""
    if db_vendor == "postgresql":
        return (lambda a: a), (lambda d: d), (lambda t: t)
    from django.db import connection

    return str, (lambda d: format(d, "f")), connection.ops.adapt_datetimefield_value


def _owner_with_wallets(name: str, n_wallets: int, chain, now):
    from django.contrib.auth import get_user_model

    from portfolio.models import Wallet, WalletChain

    user = get_user_model().objects.create_user(name, f"{name}@example.com", "x" * 20)
    base = abs(hash(name)) % 10**6 * 10**5
    wallets = Wallet.objects.bulk_create([Wallet(owner=user, family="evm", address=f"0x{base + n:040x}", label=f"{name}-{n}")
                                          for n in range(n_wallets)], batch_size=5000)
    wcs = WalletChain.objects.bulk_create([WalletChain(wallet=w, chain=chain, status="ok", last_ok_at=now, height=1000,
                                                       cursors={"v": 1, "note": "x" * 200}) for w in wallets], batch_size=5000)
    return user, wallets, wcs


def _holdings(wcs, per_wallet: int, assets, now, db_vendor: str) -> int:
    """Holdings as plain rows (around the sync), and the owner's per-asset totals the sync would keep,
    summed on the way (what ``totals.rebuild`` computes, without reading a million rows back)."""
    from portfolio.models import AssetTotal, Holding

    amount_of, _, moment = _db(db_vendor)
    at, zero = moment(now), amount_of(0)
    asset_ids = [a.pk for a in assets]
    sums: dict[int, list[int]] = {}

    def rows():
        for n, wc in enumerate(wcs):
            for k in range(per_wallet):
                asset_id, amount = asset_ids[(n * 7 + k) % len(asset_ids)], (k + 1) * 10**18 + n
                cell = sums.setdefault(asset_id, [0, 0])
                cell[0] += amount
                cell[1] += 1
                yield wc.pk, asset_id, amount_of(amount), zero, 1000, at, "{}"

    n = _insert(Holding._meta.db_table, ("wallet_chain_id", "asset_id", "amount", "unconfirmed", "height", "fetched_at", "details"), rows())
    owner_id = wcs[0].wallet.owner_id
    _insert(AssetTotal._meta.db_table, ("owner_id", "portfolio_id", "asset_id", "amount", "holders"),
            ((owner_id, None, a, amount_of(amount), holders) for a, (amount, holders) in sums.items()))
    return n


def _transfers(wallets, wcs, per_wallet: int, assets, now, db_vendor: str, tag: int) -> int:
    """The owner's history: ``N_TRANSFERS`` over ``HISTORY_DAYS`` of assets its wallets hold, bought from
    outside, every 5th a sale, every 50th a move between two of the owner's wallets (both legs, one
    transaction), and a finished backfill per wallet-chain (so the cost basis is worked out, not cut
    short as "history not read yet")."""
    from portfolio.models import Backfill, Transfer

    amount_of, _, moment = _db(db_vendor)
    zero, asset_ids = amount_of(0), [a.pk for a in assets]
    days = [moment(now - timedelta(days=d, minutes=m)) for d in range(HISTORY_DAYS) for m in (0, 7 * 60, 15 * 60)]

    def rows():
        for j in range(N_TRANSFERS):
            n, k = j % len(wcs), (j // len(wcs)) % per_wallet
            asset_id, at = asset_ids[(n * 7 + k) % len(asset_ids)], days[(j * 7919) % len(days)]
            amount, tx = amount_of((1 + j % 9) * 10**17), f"0x{tag:04x}{j:060x}"
            if j % 50 == 49:
                m = (n + 1) % len(wcs)
                yield wcs[n].pk, asset_id, tx, "0", "out", amount, zero, wallets[m].address, at, 1000
                yield wcs[m].pk, asset_id, tx, "0", "in", amount, zero, wallets[n].address, at, 1000
            else:
                yield wcs[n].pk, asset_id, tx, "0", "out" if j % 5 == 4 else "in", amount, zero, EXTERNAL, at, 1000

    n = _insert(Transfer._meta.db_table, ("wallet_chain_id", "asset_id", "tx", "key", "direction", "amount", "fee", "counterparty",
                                          "at", "height"), rows())
    done = moment(now)
    _insert(Backfill._meta.db_table, ("wallet_chain_id", "status", "depth_days", "days_total", "days_done", "reason", "cursor",
                                      "requests", "started_at", "finished_at", "updated_at"),
            ((wc.pk, Backfill.DONE, HISTORY_DAYS, HISTORY_DAYS, HISTORY_DAYS, "", "{}", 0, done, done, done) for wc in wcs))
    return n


def _prices(assets, now, db_vendor: str) -> None:
    """80% of the assets priced now, and daily over ``HISTORY_DAYS`` (the prices of the transfers' days,
    of 24 hours and 7 days ago)."""
    from portfolio.models import PricePoint

    _, decimal, moment = _db(db_vendor)
    rows = ((a.pk, moment(now - timedelta(days=d)), "USD", decimal(Decimal(f"{1 + i % 97 + d % 7}.{i:04d}")), "manual")
            for i, a in enumerate(assets) if i % 5 for d in range(HISTORY_DAYS))
    _insert(PricePoint._meta.db_table, ("asset_id", "at", "currency", "price", "source"), rows)


def _history(user, wallets, now, db_vendor: str, *, wallet_points: bool) -> None:
    """One year of snapshot totals: per wallet (WalletValue, when ``wallet_points``; else the latest
    only) and the materialised scope series of "All wallets" (ScopeValue)."""
    from portfolio.models import ScopeValue, WalletValue
    from portfolio.services.snapshots import scope_key

    _, money, moment = _db(db_vendor)
    times = sorted([now - timedelta(hours=h) for h in range(0, HOURLY)] + [now - timedelta(days=d) for d in range(7, 7 + DAILY)])
    fx = '{"EUR": "0.9", "GBP": "0.8"}'
    zero, one = money(Decimal(0)), money(Decimal(1))

    def wallet_rows():
        for i, at in enumerate(times if wallet_points else times[-1:]):
            res, stored = "hourly" if at >= now - timedelta(days=7) else "daily", moment(at)
            for n, w in enumerate(wallets):
                yield (w.pk, stored, res, money(Decimal(10_000 + n + i % 50)), zero, one, zero, 0, fx)

    _insert(WalletValue._meta.db_table, ("wallet_id", "at", "resolution", "value", "flow_value", "market_value", "opening_value",
                                         "unpriced", "fx_rates"), wallet_rows())
    key = scope_key(w.pk for w in wallets)
    breakdown = ('{"by_asset": [], "by_chain": [], "by_wallet": [], "by_kind": [["token", "%d"]], "unpriced": []}'
                 % (10_000 * len(wallets)))
    scope_rows = [(user.pk, key, moment(at), "hourly" if at >= now - timedelta(days=7) else "daily",
                   money(Decimal(10_000 * len(wallets) + i % 50)), zero, one, zero, 0, fx,
                   breakdown if at == times[-1] else "{}") for i, at in enumerate(times)]
    _insert(ScopeValue._meta.db_table, ("owner_id", "scope_key", "at", "resolution", "value", "flow_value", "market_value",
                                         "opening_value", "unpriced", "fx_rates", "breakdown"), scope_rows)


def build(db_vendor: str, skip_1m: bool) -> None:
    from django.utils import timezone

    from portfolio.models import Asset, Chain, Portfolio

    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    chain = Chain.objects.get(slug="ethereum")
    if db_vendor == "sqlite":  # this connection only: indexes grown in memory (the default 2 MB page cache
        from django.db import connection  # thrashed on the holdings' asset index), no fsync per commit

        with connection.cursor() as cursor:
            cursor.execute("PRAGMA cache_size = -400000")
            cursor.execute("PRAGMA synchronous = OFF")
    t = time.perf_counter()
    assets = Asset.objects.bulk_create([Asset(chain=chain, kind="fungible", standard="erc20", address=f"0x{0xbe000 + i:040x}",
                                              symbol=f"TK{i}", name=f"Token {i}", decimals=18) for i in range(N_ASSETS)])
    _prices(assets, now, db_vendor)
    print(f"  built assets and {HISTORY_DAYS} days of prices in {time.perf_counter() - t:.1f}s", flush=True)
    for tag, (label, per_wallet) in enumerate(HOLDING_SIZES.items()):
        if label == "1M" and skip_1m:
            continue
        t = time.perf_counter()
        user, wallets, wcs = _owner_with_wallets(f"h{label}", 1000, chain, now)
        n = _holdings(wcs, per_wallet, assets, now, db_vendor)
        m = _transfers(wallets, wcs, per_wallet, assets, now, db_vendor, tag)
        print(f"  built holdings {label}: {n:,} rows, {m:,} transfers in {time.perf_counter() - t:.1f}s", flush=True)
    for label, n_wallets in WALLET_SIZES.items():
        t = time.perf_counter()
        user, wallets, wcs = _owner_with_wallets(f"d{label}", n_wallets, chain, now)
        _holdings(wcs, max(1, 100_000 // n_wallets), assets, now, db_vendor)
        _history(user, wallets, now, db_vendor, wallet_points=n_wallets <= 1000)
        if n_wallets == 1000:  # a portfolio made after the snapshots: no materialised series yet
            Portfolio.objects.create(owner=user, name="new").wallets.set(wallets[1:])
        print(f"  built dashboard {label} in {time.perf_counter() - t:.1f}s", flush=True)


def ensure_dataset(db_vendor: str, skip_1m: bool) -> None:
    """Migrate, and build the dataset unless a marker user says this version was built already."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    marker = f"marker-{DATASET_VERSION}-{'no1m' if skip_1m else 'full'}"
    built = [f"marker-{DATASET_VERSION}-full"] + ([marker] if skip_1m else [])  # a full build serves --skip-1m too
    if get_user_model().objects.filter(username__in=built).exists():
        return
    print("building the dataset (once; reused by later runs)", flush=True)
    build(db_vendor, skip_1m)
    if db_vendor == "postgresql":  # the planner's statistics, as autovacuum keeps them on a live database
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    get_user_model().objects.create_user(marker, "m@example.com", "x" * 20)


def cases(skip_1m: bool) -> list[tuple[str, str, str]]:
    """(table, case name, user name, url) of every timed request."""
    from django.urls import reverse

    from portfolio.models import Portfolio

    out = []
    for label in HOLDING_SIZES:
        if label == "1M" and skip_1m:
            continue
        out.append(("holdings_page", label, f"h{label}", reverse("holdings")))
        out.append(("holdings_api", label, f"h{label}", "/api/v1/holdings?limit=100"))
    for label in WALLET_SIZES:
        out.append(("dashboard", label, f"d{label}", reverse("dashboard") + "?range=1y"))
    pending = Portfolio.objects.get(owner__username="d1000w", name="new")
    out.append(("dashboard_unmaterialised", "1000w", "d1000w", reverse("portfolio_dashboard", args=[pending.pk]) + "?range=1y"))
    return out


def cold(skip_1m: bool, clients: dict, repeats: int = 3) -> dict[tuple[str, str], list[tuple[float, float]]]:
    """Per holdings case: (wall s, CPU s) of ``repeats`` first views right after a new price was stored
    (the kept asset list and the cost basis' ledgers are then recomputed: the unflattering case)."""
    from portfolio.models import Asset, PricePoint

    asset = Asset.objects.exclude(kind=Asset.NFT_COLLECTION).order_by("pk").first()
    out: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for n in range(repeats):
        for table, label, username, url in cases(skip_1m):
            if not table.startswith("holdings"):
                continue
            PricePoint.objects.create(asset=asset, price=Decimal("1.0001") + Decimal(n) / 10**6, source="manual")
            start, cpu = time.perf_counter(), time.process_time()
            clients[username].get(url)
            out.setdefault((table, label), []).append((time.perf_counter() - start, time.process_time() - cpu))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--skip-1m", action="store_true", help="leave the 1M-holdings case out (quicker build)")
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--no-cold", action="store_true", help="skip the first views after a new price")
    args = parser.parse_args()
    vendor = configure_database("pages", args.rebuild)

    import django

    django.setup()
    client_environment()
    ensure_dataset(vendor, args.skip_1m)
    import gc

    gc.collect()
    gc.freeze()  # as gunicorn's master does once the app is loaded (gunicorn.conf.py when_ready)
    info, clients, load_before = time_pages(cases(args.skip_1m), args.rounds)
    first_views = {} if args.no_cold else cold(args.skip_1m, clients)
    figures = page_header(vendor, args.rounds, load_before)
    page_figures(info, figures)
    for (table, label), views in first_views.items():
        name = f"{table}_{label}_after_new_price"
        figures[f"{name}_median_ms"] = (statistics.median(w * 1000 for w, _ in views), "ms")
        figures[f"{name}_cpu_median_ms"] = (statistics.median(c * 1000 for _, c in views), "ms")
    write_results(f"pages_{vendor}", figures)


if __name__ == "__main__":
    main()
