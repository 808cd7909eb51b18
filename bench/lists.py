"""The lists with values through the test client (every query, template and middleware): the wallets page,
the portfolios page and the wallets API of an owner with 1,000 wallets and 20 portfolios of 60, at 10k /
100k / 1M holdings.

    .venv/bin/python bench/lists.py [--rounds 7] [--skip-1m] [--rebuild] [--no-cold] [--cold-1m]

Each round requests every case once, in a rotated order, so load on the shared machine hits all cases
alike; figures are min/median/max over the rounds, the median CPU time of this process, the query count
(of a second view: the steady state) and the response bytes, and each size's median against the 10k
case's in the same rounds (the target is a list flat in the number of holdings). Then, unless --no-cold,
one first view of the wallets page per size after a new price was stored and before the price task
revalued it (every kept pair value is recomputed from the holdings then; 1M only with --cold-1m: ~10 s).
The dataset is built once with plain INSERTs into var/bench/lists-<db>.sqlite3 (or the PostgreSQL
database of BENCH_DATABASE_URL) and reused; --rebuild starts over. Writes bench/results/lists.json (lists_postgresql.json on PostgreSQL).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portfolio.settings")

from bench._common import client_environment, configure_database, page_figures, page_header, time_pages, write_results  # noqa: E402

DATASET_VERSION = "lists-2"  # 2: totals summed while inserting
SIZES = {"10k": 10, "100k": 100, "1M": 1000}  # holdings per wallet, 1,000 wallets
WALLETS, PORTFOLIOS, PER_PORTFOLIO, N_ASSETS = 1000, 20, 60, 2000


def _owner(label: str, per_wallet: int, chain, assets, now, db_vendor: str) -> int:
    """An owner with 1,000 wallets of ``per_wallet`` holdings each and 20 portfolios of 60 wallets,
    the holdings and memberships as plain rows (around the sync), and the per-asset totals of the owner
    and of each portfolio the sync would keep, summed on the way (what ``totals.rebuild`` computes,
    without reading a million rows back; checked against it by ``--check-totals``)."""
    from bench.pages import _db, _insert, _owner_with_wallets
    from portfolio.models import AssetTotal, Holding, Portfolio

    amount_of, _, moment = _db(db_vendor)
    at, zero = moment(now), amount_of(0)
    user, wallets, wcs = _owner_with_wallets(f"l{label}", WALLETS, chain, now)
    portfolios = Portfolio.objects.bulk_create([Portfolio(owner=user, name=f"p{i:02d}") for i in range(PORTFOLIOS)])
    members = [(p.pk, (i * 50 + j) % WALLETS) for i, p in enumerate(portfolios) for j in range(PER_PORTFOLIO)]
    _insert(Portfolio.wallets.through._meta.db_table, ("portfolio_id", "wallet_id"), ((p, wallets[n].pk) for p, n in members))
    scopes: list[list] = [[None] for _ in range(WALLETS)]  # wallet index -> the scopes its holdings count in
    for p, n in members:
        scopes[n].append(p)
    sums: dict[tuple, list[int]] = {}

    def rows():
        for n, wc in enumerate(wcs):
            for k in range(per_wallet):
                asset_id, amount = assets[(n * 7 + k) % len(assets)].pk, (k + 1) * 10**18 + n
                for scope in scopes[n]:
                    cell = sums.setdefault((scope, asset_id), [0, 0])
                    cell[0] += amount
                    cell[1] += 1
                yield wc.pk, asset_id, amount_of(amount), zero, 1000, at, "{}"

    n = _insert(Holding._meta.db_table, ("wallet_chain_id", "asset_id", "amount", "unconfirmed", "height", "fetched_at", "details"), rows())
    _insert(AssetTotal._meta.db_table, ("owner_id", "portfolio_id", "asset_id", "amount", "holders"),
            ((user.pk, p, a, amount_of(amount), holders) for (p, a), (amount, holders) in sums.items()))
    return n


def check_totals() -> None:
    """The summed totals equal what ``totals.rebuild`` computes from the stored holdings (every owner)."""
    from django.contrib.auth import get_user_model

    from portfolio import totals
    from portfolio.models import AssetTotal

    for label in SIZES:
        user = get_user_model().objects.filter(username=f"l{label}").first()
        if user is None:
            continue
        rows = lambda: sorted(AssetTotal.objects.filter(owner=user).values_list("portfolio_id", "asset_id", "amount", "holders"),
                              key=lambda r: (r[0] or 0, r[1]))  # noqa: E731
        summed = rows()
        totals.rebuild(user.pk)
        assert rows() == summed, f"{label}: the summed totals differ from totals.rebuild"
        print(f"  {label}: {len(summed):,} totals equal totals.rebuild's", flush=True)


def ensure_dataset(db_vendor: str, skip_1m: bool) -> None:
    """Migrate, and build the dataset unless a marker user says this version was built already."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.utils import timezone

    from portfolio.models import Asset, Chain, PricePoint

    call_command("migrate", verbosity=0)
    marker = f"marker-{DATASET_VERSION}-{'no1m' if skip_1m else 'full'}"
    built = [f"marker-{DATASET_VERSION}-full"] + ([marker] if skip_1m else [])  # a full build serves --skip-1m too
    users = get_user_model().objects
    if users.filter(username__in=built).exists():
        return
    print("building the dataset (once; reused by later runs)", flush=True)
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    chain = Chain.objects.get(slug="ethereum")
    assets = Asset.objects.bulk_create([Asset(chain=chain, kind="fungible", standard="erc20", address=f"0x{0x1157000 + i:040x}",
                                              symbol=f"LT{i}", name=f"List token {i}", decimals=18) for i in range(N_ASSETS)])
    PricePoint.objects.bulk_create([PricePoint(asset=a, at=now, price=Decimal(f"{1 + i % 97}.{i:04d}"), source="manual")
                                    for i, a in enumerate(assets) if i % 5])  # 80% priced
    for label, per_wallet in SIZES.items():
        if (label == "1M" and skip_1m) or users.filter(username=f"l{label}").exists():
            continue
        t = time.perf_counter()
        n = _owner(label, per_wallet, chain, assets, now, db_vendor)
        print(f"  built {label}: {n:,} holdings in {time.perf_counter() - t:.1f}s", flush=True)
    if db_vendor == "postgresql":  # the planner's statistics, as autovacuum keeps them on a live database
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    users.create_user(marker, "m@example.com", "x" * 20)


def cases(skip_1m: bool) -> list[tuple[str, str, str, str]]:
    """(table, case name, user name, url) of every timed request."""
    from django.urls import reverse

    out = []
    for label in SIZES:
        if label == "1M" and skip_1m:
            continue
        out.append(("wallets_page", label, f"l{label}", reverse("wallets")))
        out.append(("portfolios_page", label, f"l{label}", reverse("portfolios")))
        out.append(("wallets_api", label, f"l{label}", "/api/v1/wallets?limit=50"))
    return out


def cold(sizes: list[str], clients: dict) -> dict[str, tuple[float, float]]:
    """Per size: (wall s, CPU s) of the wallets page's first view after a new price was stored."""
    from django.urls import reverse

    from portfolio.models import Asset, PricePoint

    asset = Asset.objects.filter(symbol="LT1").first()
    out = {}
    for label in sizes:
        PricePoint.objects.create(asset=asset, price=Decimal("1.0001"), source="manual")
        start, cpu = time.perf_counter(), time.process_time()
        clients[f"l{label}"].get(reverse("wallets"))
        out[label] = (time.perf_counter() - start, time.process_time() - cpu)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--skip-1m", action="store_true", help="leave the 1M-holdings case out (quicker build)")
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--no-cold", action="store_true", help="skip the first views after a new price")
    parser.add_argument("--cold-1m", action="store_true", help="time the first view after a new price at 1M too")
    parser.add_argument("--check-totals", action="store_true", help="check the built totals against totals.rebuild, then stop")
    args = parser.parse_args()
    vendor = configure_database("lists", args.rebuild)

    import django

    django.setup()
    client_environment()
    ensure_dataset(vendor, args.skip_1m)
    if args.check_totals:
        return check_totals()
    info, clients, load_before = time_pages(cases(args.skip_1m), args.rounds)
    cold_sizes = [s for s in SIZES if s != "1M" or (args.cold_1m and not args.skip_1m)]
    first_views = {} if args.no_cold else cold(cold_sizes, clients)
    figures = page_header(vendor, args.rounds, load_before)
    page_figures(info, figures)
    for label, (wall, cpu) in first_views.items():
        figures[f"wallets_page_{label}_after_new_price_ms"] = (wall * 1000, "ms")
        figures[f"wallets_page_{label}_after_new_price_cpu_ms"] = (cpu * 1000, "ms")
    write_results("lists" if vendor == "sqlite" else f"lists_{vendor}", figures,
                  sizes={"wallets": WALLETS, "portfolios": PORTFOLIOS, "wallets_per_portfolio": PER_PORTFOLIO, "assets": N_ASSETS,
                         "holdings": {label: per_wallet * WALLETS for label, per_wallet in SIZES.items()
                                      if label != "1M" or not args.skip_1m}, "rounds": args.rounds, "database": vendor})


if __name__ == "__main__":
    main()
