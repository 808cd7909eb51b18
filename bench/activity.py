"""The activity feed and the cost basis over a year of history (issue #19): one user, 10 wallets, 50 assets
with daily prices, 10,000 transfers. Whole requests through the test client (every query, template and
middleware): the feed's first and a deep page, the holdings page with its cost-basis column against
the same page's read model without it, and the CSV export of everything.

    .venv/bin/python bench/activity.py [--rounds 7] [--transfers 10000]

Every round makes each request once, the order rotated per round (the holdings read model alone, the
baseline of the holdings page's cost-basis column, among them); min / median / max over the rounds,
with the query count of each request. The dataset is built into a fresh var/bench/activity.sqlite3
each run. Writes bench/results/activity.json.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portfolio.settings")
DB = ROOT / "var" / "bench" / "activity.sqlite3"
START = datetime(2025, 1, 1, tzinfo=timezone.utc)
N_WALLETS, N_ASSETS = 10, 50


def build(n_transfers: int):
    """The user, wallets (all backfilled), assets with a price a day, transfers in and out (some between
    the user's wallets) and balances that match them."""
    from django.contrib.auth import get_user_model

    from portfolio import totals
    from portfolio.models import Asset, Backfill, Chain, Holding, PricePoint, Transfer, Wallet, WalletChain

    chain = Chain.objects.get(slug="ethereum")
    user = get_user_model().objects.create_user("bench", "b@example.com", "x" * 20)
    wallets = [Wallet.objects.create(owner=user, family="evm", address=f"0x{n + 1:040x}", label=f"w{n}")
               for n in range(N_WALLETS)]
    wcs = [WalletChain.objects.create(wallet=w, chain=chain, first_ok_at=START + timedelta(days=366),
                                      last_ok_at=START + timedelta(days=366)) for w in wallets]
    Backfill.objects.bulk_create([Backfill(wallet_chain=wc, status=Backfill.DONE, complete_from=START) for wc in wcs])
    assets = [Asset.objects.create(chain=chain, kind=Asset.FUNGIBLE, address=f"0x{0xbe00 + n:040x}", symbol=f"T{n}",
                                   decimals=6) for n in range(N_ASSETS)]
    PricePoint.objects.bulk_create([PricePoint(asset=a, at=START + timedelta(days=d), price=Decimal(1 + d % 7),
                                               currency="USD", source="coingecko")
                                    for a in assets for d in range(367)], batch_size=5000)
    balances: dict[tuple[int, int], int] = {}
    rows = []
    step = timedelta(days=365) / n_transfers
    for i in range(n_transfers):
        wc, asset = wcs[i % N_WALLETS], assets[i % N_ASSETS]
        at, amount = START + step * i, 10**6 * (1 + i % 5)
        held = balances.get((wc.pk, asset.pk), 0)
        if i % 3 == 2 and held >= amount:  # a sale, and every ninth transfer goes to another own wallet
            other = wcs[(i + 1) % N_WALLETS] if i % 9 == 8 else None
            rows.append(Transfer(wallet_chain=wc, asset=asset, tx=f"0x{i:064x}", direction="out", amount=amount, at=at,
                                 counterparty=other.wallet.address if other else "0x" + "ee" * 20))
            balances[(wc.pk, asset.pk)] = held - amount
            if other:
                rows.append(Transfer(wallet_chain=other, asset=asset, tx=f"0x{i:064x}", direction="in", amount=amount,
                                     at=at, counterparty=wc.wallet.address))
                balances[(other.pk, asset.pk)] = balances.get((other.pk, asset.pk), 0) + amount
        else:
            rows.append(Transfer(wallet_chain=wc, asset=asset, tx=f"0x{i:064x}", direction="in", amount=amount, at=at,
                                 counterparty="0x" + "ee" * 20))
            balances[(wc.pk, asset.pk)] = held + amount
    Transfer.objects.bulk_create(rows, batch_size=5000)
    Holding.objects.bulk_create([Holding(wallet_chain_id=wc, asset_id=a, amount=v) for (wc, a), v in balances.items() if v])
    totals.rebuild(user.pk)  # holdings loaded around the sync: their per-asset totals, which the holdings page reads
    PricePoint.objects.bulk_create([PricePoint(asset=a, price=Decimal(9), currency="USD", source="manual") for a in assets])
    return user, len(rows)


def counted(client, url: str) -> tuple[int, int]:
    """(queries, response bytes) of GET ``url``, which must answer 200."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return len(ctx.captured_queries), len(response.content)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--transfers", type=int, default=10_000)
    args = parser.parse_args()
    DB.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(str(DB) + suffix).unlink(missing_ok=True)
    os.environ["DATABASE_URL"] = f"sqlite:///{DB}"

    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client
    from django.conf import settings
    from django.core.cache import cache
    from django.test.utils import override_settings, setup_test_environment

    from bench._common import add_spread, interleaved, write_results
    from portfolio.activity import activity_page
    from portfolio.api_routers.responses import encode_cursor
    from portfolio.holdings import scope_holdings
    from portfolio.models import Wallet

    setup_test_environment()  # the test client's templates/context capture, ALLOWED_HOSTS=testserver
    # Static URLs without a collectstatic manifest (the page's cost, not the static pipeline's).
    override_settings(STORAGES={**settings.STORAGES, "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}).enable()
    call_command("migrate", verbosity=0)
    user, n = build(args.transfers)
    client = Client()
    client.force_login(user)
    ids = list(Wallet.objects.filter(owner=user).values_list("pk", flat=True))
    deep = activity_page(user, ids, "USD", limit=n // 2).next_key
    figures: dict[str, tuple[float, str]] = {"transfers": (n, "rows"), "rounds": (args.rounds, "rounds")}
    pages = {"feed first page": "/activity/",
             "feed page after half the history": f"/activity/?after={encode_cursor(deep)}",
             "holdings page (cost basis of 50 assets)": "/holdings/", "CSV of every transfer": "/activity.csv"}
    for name, url in pages.items():  # also the warm-up
        figures[f"{name}: queries"] = (counted(client, url)[0], "queries")
    cases = {name: (lambda url=url: client.get(url)) for name, url in pages.items()}
    # The unflattering case: the first view after the history moved (a new transfer or price), when the
    # flows of the whole set and the cost basis are not kept yet and are read from every transfer.
    cases["feed first page, nothing kept (after a new transfer)"] = lambda: (cache.clear(), client.get("/activity/"))
    cases["holdings page, nothing kept (after a new transfer)"] = lambda: (cache.clear(), client.get("/holdings/"))
    cases["holdings read model without cost basis"] = lambda: scope_holdings(user, ids, "USD")
    times = interleaved(cases, args.rounds)
    for name, values in times.items():
        add_spread(figures, f"{name}: time", values, "s")
    ratios = [page / model for page, model in zip(times["holdings page (cost basis of 50 assets)"],
                                                   times["holdings read model without cost basis"])]
    add_spread(figures, "holdings page / read model alone, per round", ratios, "x")
    write_results("activity", figures, sizes={"wallets": N_WALLETS, "assets": N_ASSETS, "transfers": n,
                                              "price_days": 367, "rounds": args.rounds, "database": "sqlite"})


if __name__ == "__main__":
    main()
