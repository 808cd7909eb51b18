"""Technical values as a user reads them: endpoints by host, sync errors as a short reason, protocols by
name; the favicon from our origin; a finished refresh tells the page to swap its figures in."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from portfolio.models import Chain, SyncRun, SyncRunItem, Wallet, WalletChain
from portfolio.templatetags.labels import endpoint_name, protocol_label, short_reason

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.mark.parametrize("url, name", [
    ("https://eth-mainnet.g.alchemy.com/v2/AbCdEf0123456789", "eth-mainnet.g.alchemy.com"),
    ("https://user:secret@rpc.example.org:8443/path?key=abc", "rpc.example.org"),
    ("http://127.0.0.1:8545", "local node :8545"),
    ("http://localhost", "local node"),
    ("http://10.0.0.5:8899/", "local node :8899"),
    ("", ""),
])
def test_an_endpoint_is_named_by_its_host_never_its_url(url, name):
    assert endpoint_name(url) == name


def test_a_sync_error_becomes_a_short_reason_without_urls():
    assert short_reason("timed out (eth_blockNumber at http://node:8545/key)") == "the endpoint did not answer in time"
    assert short_reason("HTTP 429 Too Many Requests from https://rpc.example/") == "the endpoint is rate-limiting us; retried later"
    assert short_reason("Something odd at https://rpc.example/abc. More detail here.") == "Something odd at the endpoint"
    assert len(short_reason("x" * 500)) == 120


def test_protocols_are_shown_by_name():
    assert protocol_label("solana-stake") == "Solana native staking"
    assert protocol_label("aave_v3") == "Aave V3"
    assert protocol_label("some_new-protocol") == "Some new protocol"


def test_the_favicon_is_served_from_our_origin_without_sign_in(client, db):
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"].endswith("favicon.svg")
    assert client.get(response["Location"]).status_code == 200


@pytest.mark.django_db
def test_a_finished_run_tells_the_page_to_swap_its_figures_in(owner, owner_client):
    chain = Chain.objects.create(slug="t-evm", name="Test EVM", family="evm", chain_id=777, network="devnet", native_symbol="ETH", enabled=True)
    wallet = Wallet.objects.create(owner=owner, family="evm", address="0x70997970C51812dc3A010C7d01b50e0d17dc79C8", label="Alice")
    wc = WalletChain.objects.create(wallet=wallet, chain=chain)
    run = SyncRun.objects.create(owner=owner, status=SyncRun.RUNNING)
    item = SyncRunItem.objects.create(run=run, wallet_chain=wc, status=SyncRun.RUNNING)
    url = reverse("sync_status", args=[run.pk])
    running = owner_client.get(url, **HTMX)
    assert "HX-Trigger" not in running and "0 of 1" in running.content.decode()
    SyncRunItem.objects.filter(pk=item.pk).update(status=SyncRun.FAILED, finished_at=timezone.now(),
                                                  error="connection refused at http://127.0.0.1:8545/secret")
    SyncRun.objects.filter(pk=run.pk).update(status=SyncRun.FAILED, finished_at=timezone.now())
    done = owner_client.get(url, **HTMX)
    html = done.content.decode()
    assert done["HX-Trigger"] == "sync-finished"
    assert "1 of 1 failed" in html and "the endpoint could not be reached" in html  # the short reason, shown
    assert 'role="alert"' in html and "<details" in html and "<details open" not in html  # per chain on demand
