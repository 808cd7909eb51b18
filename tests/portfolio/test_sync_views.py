"""Refresh and the sync progress fragment: what the browser gets, scoped to the owner."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from portfolio.models import Chain, Portfolio, SyncRun, SyncRunItem, Wallet, WalletChain
from portfolio.sync.run import do_expand_run

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def chain():
    return Chain.objects.create(slug="testnet-evm", name="Test EVM", family="evm", chain_id=777, network="devnet",
                                native_symbol="ETH", enabled=True)


@pytest.fixture
def wallet(owner, chain):
    w = Wallet.objects.create(owner=owner, family="evm", address="0x70997970C51812dc3A010C7d01b50e0d17dc79C8", label="Alice")
    WalletChain.objects.create(wallet=w, chain=chain)
    return w


@pytest.fixture
def portfolio(owner, wallet):
    p = Portfolio.objects.create(owner=owner, name="Main")
    p.wallets.add(wallet)
    return p


def test_refresh_with_htmx_returns_a_polling_progress_fragment(owner_client, portfolio):
    response = owner_client.post(reverse("refresh"), {"portfolio": portfolio.pk}, **HTMX)
    assert response.status_code == 202
    html = response.content.decode()
    run = SyncRun.objects.get()
    assert run.portfolio == portfolio and run.items.count() == 0  # a worker fans the run out
    do_expand_run(run.pk)
    assert run.items.count() == 1
    assert 'hx-trigger="every 1s"' in html and reverse("sync_status", args=[run.pk]) in html
    assert "<html" not in html.lower()
    assert "queued" in html


def test_a_plain_refresh_redirects_back_to_the_page(owner_client, wallet):
    back = "http://testserver" + reverse("wallets")
    response = owner_client.post(reverse("refresh"), {"wallet": wallet.pk}, HTTP_REFERER=back)
    assert response.status_code == 302 and response["Location"] == back
    assert SyncRun.objects.get().wallet == wallet


def test_a_refresh_never_redirects_to_another_site(owner_client, wallet):
    response = owner_client.post(reverse("refresh"), {"wallet": wallet.pk}, HTTP_REFERER="https://evil.example/")
    assert response["Location"] == reverse("dashboard")


def test_refreshing_someone_elses_portfolio_is_a_404(outsider_client, portfolio):
    assert outsider_client.post(reverse("refresh"), {"portfolio": portfolio.pk}, **HTMX).status_code == 404
    assert not SyncRun.objects.exists()


def test_someone_elses_sync_status_is_a_404(owner_client, outsider_client, portfolio):
    owner_client.post(reverse("refresh"), {"portfolio": portfolio.pk}, **HTMX)
    run = SyncRun.objects.get()
    assert outsider_client.get(reverse("sync_status", args=[run.pk]), **HTMX).status_code == 404
    assert owner_client.get(reverse("sync_status", args=[run.pk]), **HTMX).status_code == 200


def test_a_finished_run_stops_polling_and_shows_errors(owner_client, portfolio):
    owner_client.post(reverse("refresh"), {"portfolio": portfolio.pk}, **HTMX)
    run = SyncRun.objects.get()
    do_expand_run(run.pk)
    SyncRunItem.objects.filter(run=run).update(status=SyncRun.FAILED, error="timed out (eth_blockNumber at http://node)", finished_at=timezone.now())
    SyncRun.objects.filter(pk=run.pk).update(status=SyncRun.FAILED, finished_at=timezone.now(), error="1 of 1 chain syncs failed")
    html = owner_client.get(reverse("sync_status", args=[run.pk]), **HTMX).content.decode()
    assert "hx-trigger" not in html
    assert "timed out" in html and "failed" in html


def test_progress_is_available_as_json(owner_client, portfolio):
    owner_client.post(reverse("refresh"), {"portfolio": portfolio.pk}, **HTMX)
    run = SyncRun.objects.get()
    do_expand_run(run.pk)
    data = owner_client.get(reverse("sync_status", args=[run.pk]), HTTP_ACCEPT="application/json").json()
    assert data["status"] == "queued" and data["total"] == 1 and not data["finished"]
    assert data["items"][0]["chain"] == "Test EVM" and data["items"][0]["state"] == "queued"


def test_the_status_page_without_htmx_is_a_whole_page(owner_client, portfolio):
    owner_client.post(reverse("refresh"), {"portfolio": portfolio.pk}, **HTMX)
    run = SyncRun.objects.get()
    html = owner_client.get(reverse("sync_status", args=[run.pk])).content.decode()
    assert "<html" in html.lower() and 'data-testid="sync-status"' in html


def test_refresh_of_all_wallets_covers_every_enabled_chain(owner_client, owner, wallet, chain):
    other = Chain.objects.create(slug="off-evm", name="Off", family="evm", chain_id=778, native_symbol="ETH", enabled=False)
    WalletChain.objects.create(wallet=wallet, chain=other)
    owner_client.post(reverse("refresh"), {}, **HTMX)
    run = SyncRun.objects.get()
    do_expand_run(run.pk)
    assert list(run.items.values_list("wallet_chain__chain__slug", flat=True)) == ["testnet-evm"]


def test_refresh_needs_a_login(client, portfolio):
    response = client.post(reverse("refresh"), {"portfolio": portfolio.pk})
    assert response.status_code == 302 and "login" in response["Location"]
