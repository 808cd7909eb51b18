"""Pages whose cost does not grow with the portfolio: the holdings page, the holdings API and the dashboard
run the same number of queries for 1 wallet as for many, and a page of holdings stays one page (100
assets, a bounded number of bytes) however many assets and holdings the scope has."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal as D

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from chains.base import AssetRef, FetchResult, TokenBalance
from portfolio import totals
from portfolio.models import Asset, Chain, Holding, Portfolio, PricePoint, Wallet, WalletChain
from portfolio.services.snapshots import do_snapshot

pytestmark = pytest.mark.django_db
API = "/api/v1"
PAGE_BYTES = 300_000
DASHBOARD_QUERIES = 15  # "All wallets", materialised, its freshness row current: whatever the number of wallets


def build(owner, *, wallets: int, assets: int, base: int, failed: int = 0) -> list[Wallet]:
    """``wallets`` EVM wallets each holding every one of ``assets`` tokens (half of them priced); the first
    ``failed`` of them failed their last sync (both scopes of a count comparison have failures, as the
    page reads error messages only when something failed)."""
    chain = Chain.objects.filter(family="evm").order_by("pk").first()
    tokens = Asset.objects.bulk_create([
        Asset(chain=chain, kind=Asset.FUNGIBLE, address=f"0x{base * 100_000 + i:040x}", symbol=f"T{base}x{i}", decimals=6)
        for i in range(assets)])
    PricePoint.objects.bulk_create([PricePoint(asset=t, price=D(i + 1), currency="USD", source="manual")
                                    for i, t in enumerate(tokens) if i % 2 == 0])
    made = Wallet.objects.bulk_create([Wallet(owner=owner, family="evm", address=f"0x{base * 100_000 + n:040x}", label=f"w{n}")
                                       for n in range(wallets)])
    now = timezone.now()
    wcs = WalletChain.objects.bulk_create([
        WalletChain(wallet=w, chain=chain, status=WalletChain.FAILED if n < failed else WalletChain.OK, last_ok_at=now,
                    last_error="endpoint timed out" if n < failed else "", height=100) for n, w in enumerate(made)])
    Holding.objects.bulk_create([Holding(wallet_chain=wc, asset=t, amount=(k + 1) * 10**6, height=100)
                                 for wc in wcs for k, t in enumerate(tokens)])
    totals.rebuild(owner.pk)  # rows loaded around the sync: its per-asset totals recomputed
    return made


def queries_of(client, url: str) -> tuple[int, bytes]:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(ctx.captured_queries), response.content


@pytest.fixture
def small_and_large(owner, outsider):
    """The owner: 2 wallets (1 failing) x 2 assets. The outsider: 12 wallets (3 failing) x 30 assets."""
    build(owner, wallets=2, assets=2, base=1, failed=1)
    build(outsider, wallets=12, assets=30, base=2, failed=3)


@pytest.mark.parametrize("url", [reverse("holdings"), reverse("holdings") + "?sort=-change", reverse("holdings_csv"),
                                 f"{API}/holdings", f"{API}/holdings?include=wallets&limit=5"])
def test_holdings_queries_do_not_grow_with_wallets_or_holdings(owner_client, outsider_client, small_and_large, url):
    first = queries_of(owner_client, url)[0]
    assert first == queries_of(outsider_client, url)[0]
    # A second view reads the kept asset list (portfolio/holdings_cache.py): fewer queries, the same for both.
    second = queries_of(owner_client, url)[0]
    assert second == queries_of(outsider_client, url)[0] and second < first


def test_the_dashboard_queries_do_not_grow_with_wallets_or_holdings(owner, outsider, owner_client, outsider_client,
                                                                    small_and_large):
    url = reverse("dashboard")
    live = queries_of(owner_client, url)[0], queries_of(outsider_client, url)[0]
    do_snapshot(at=timezone.now() - timedelta(hours=1))
    do_snapshot()
    materialised = queries_of(owner_client, url)[0], queries_of(outsider_client, url)[0]
    assert live[0] == live[1] and materialised[0] == materialised[1], (live, materialised)
    # A portfolio made after the snapshots: no series yet, the page reads its wallets' latest totals.
    for user, client in ((owner, owner_client), (outsider, outsider_client)):
        p = Portfolio.objects.create(owner=user, name="new")
        p.wallets.set(list(Wallet.objects.filter(owner=user).order_by("pk"))[:-1])  # not "All wallets": no series yet
    pending = [queries_of(c, reverse("portfolio_dashboard", args=[Portfolio.objects.get(owner=u).pk]))
               for u, c in ((owner, owner_client), (outsider, outsider_client))]
    assert pending[0][0] == pending[1][0]
    assert b'data-testid="history-pending"' in pending[1][1]
    assert materialised == (DASHBOARD_QUERIES + 1,) * 2, "a handful of queries (and one for the failures' messages)"


def test_a_pending_portfolio_shows_its_wallets_latest_totals(outsider, outsider_client):
    build(outsider, wallets=3, assets=4, base=3)
    do_snapshot()
    p = Portfolio.objects.create(owner=outsider, name="two of three")
    p.wallets.set(Wallet.objects.filter(owner=outsider).order_by("pk")[:2])
    page = outsider_client.get(reverse("portfolio_dashboard", args=[p.pk])).content.decode()
    # Per wallet: 1 * 1 + 3 * 3 (the priced tokens 0 and 2) = 10; two wallets = 20.
    assert "$20.00" in page and 'data-testid="history-pending"' in page


def test_the_freshness_table_counts_failures_and_shows_a_few_reasons(outsider_client, outsider):
    build(outsider, wallets=12, assets=1, base=4, failed=5)
    page = outsider_client.get(reverse("dashboard")).content.decode()
    assert "5 failed" in page and page.count("endpoint timed out") == 3 + 3  # 3 in the title, 3 in the row below


def test_a_page_of_holdings_is_one_page_however_many_assets(owner, owner_client):
    build(owner, wallets=3, assets=120, base=5)
    first_small = owner_client.get(reverse("holdings")).content
    build(owner, wallets=3, assets=240, base=6)
    first, second = owner_client.get(reverse("holdings")).content, owner_client.get(reverse("holdings") + "?page=4").content
    assert first.count(b'data-testid="holding-row"') == 100 and second.count(b'data-testid="holding-row"') == 60
    assert len(first) < PAGE_BYTES and len(first) < len(first_small) * 1.1  # three times the assets, the same page
    assert b"Page 1 of 4" in first and b'rel="next"' in first


def test_the_api_pages_by_cursor_and_keeps_offset(owner, owner_client):
    build(owner, wallets=2, assets=250, base=7)
    seen, url, pages = [], f"{API}/holdings?limit=100", 0
    while url:
        response = owner_client.get(url)
        assert len(response.content) < PAGE_BYTES
        body = response.json()
        seen += [i["asset_id"] for i in body["items"]]
        url = f"{API}/holdings?limit=100&cursor={body['next_cursor']}" if body["next_cursor"] else None
        pages += 1
    assert pages == 3 and len(seen) == len(set(seen)) == 250
    by_offset = owner_client.get(f"{API}/holdings?limit=100&offset=100").json()["items"]
    assert [i["asset_id"] for i in by_offset] == seen[100:200]
    assert owner_client.get(f"{API}/holdings?cursor=not-a-cursor").status_code == 422


def test_a_portfolios_holdings_read_its_totals_in_the_same_queries_whatever_its_size(owner, outsider, owner_client,
                                                                                      outsider_client, small_and_large):
    counts, pages = [], []
    for user, client in ((owner, owner_client), (outsider, outsider_client)):
        p = Portfolio.objects.create(owner=user, name="all but one")
        p.wallets.set(list(Wallet.objects.filter(owner=user).order_by("pk"))[1:])
        n, page = queries_of(client, reverse("holdings") + f"?portfolio={p.pk}")
        counts.append(n)
        pages.append(page)
        n_api, body = queries_of(client, f"{API}/holdings?portfolio_id={p.pk}&limit=500")
        counts.append(n_api)
    assert counts[0] == counts[2] and counts[1] == counts[3], counts
    items = json.loads(body)["items"]  # the outsider's: 11 of 12 wallets, each holding (k + 1) units of token k
    assert sorted((int(i["amount_raw"]), i["holders"]) for i in items) == [(11 * (k + 1) * 10**6, 11) for k in range(30)]
    # The outsider's portfolio: 11 wallets x 30 assets, each wallet holding (k + 1) units of token k.
    assert b'data-testid="holding-row"' in pages[1] and pages[1].count(b'data-testid="holding-row"') == 30


def test_the_dashboard_reads_freshness_without_counting_wallet_chains(outsider, outsider_client, monkeypatch):
    """"All wallets" keeps its per-chain freshness in one row: a second view reads no WalletChain at all
    (flat in the number of wallets), and each sync transition shows on the next view."""
    from portfolio.services.wallets import do_delete_wallet
    from portfolio.sync import plan, run

    made = build(outsider, wallets=4, assets=1, base=8)
    do_snapshot()
    url = reverse("dashboard")
    first = queries_of(outsider_client, url)
    with CaptureQueriesContext(connection) as ctx:
        assert outsider_client.get(url).status_code == 200
    assert not [q for q in ctx.captured_queries if 'FROM "portfolio_walletchain"' in q["sql"]]
    assert queries_of(outsider_client, url)[0] == len(ctx.captured_queries) == DASHBOARD_QUERIES
    assert b"badge-ok" in first[1]

    wcs = list(WalletChain.objects.filter(wallet__owner=outsider).select_related("chain", "wallet"))
    plan.mark_queued(wcs[:1], timezone.now())
    assert b"syncing" in outsider_client.get(url).content
    run._record_failure(wcs[:2], {}, RuntimeError("boom"), final=True)
    page = outsider_client.get(url).content.decode()
    assert "2 failed" in page and "internal error (RuntimeError)" in page
    token = AssetRef(kind=Asset.FUNGIBLE, address=f"0x{8 * 100_000:040x}", symbol="T8x0", name="", decimals=6, standard="erc20")

    def fetcher(wallet_chains):  # the fetch runs in a thread of its own: no database there
        return lambda: FetchResult(balances=tuple(TokenBalance(owner=wc.wallet.address, asset=token, amount=10**6) for wc in wallet_chains),
                                   height=101, endpoint="x")

    def prepare(*args, **kwargs):  # fetched, not stored yet
        assert b"syncing" in outsider_client.get(url).content  # a view while the sync runs keeps that state
        return prepare_rows(*args, **kwargs)

    prepare_rows = run.store.prepare
    monkeypatch.setattr(run, "_fetcher", fetcher)
    monkeypatch.setattr(run.store, "prepare", prepare)
    run.do_sync_wallet_chains([wc.id for wc in wcs[:2]])  # read again: the next view shows it
    page = outsider_client.get(url).content.decode()
    assert "failed" not in page and "syncing" not in page
    assert b'data-testid="history-pending"' not in outsider_client.get(url).content
    do_delete_wallet(made[3])
    page = outsider_client.get(url).content.decode()
    assert '<td class="num" data-label="Wallets">3</td>' in page
    assert 'data-testid="history-pending"' in page  # three wallets: not the four's series (its key is not kept)
    do_snapshot()
    assert b'data-testid="history-pending"' not in outsider_client.get(url).content
    Wallet.objects.filter(pk=made[2].pk).delete()  # around the services: the set's count and highest id tell
    assert b'data-testid="history-pending"' in outsider_client.get(url).content
