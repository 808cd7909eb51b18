"""/metrics: protected, and every metric family present after a sync (HTTP, tasks, RPC, freshness, queues)."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from portfolio import metrics
from portfolio.models import WalletChain
from portfolio.sync import run as sync
from tests.fixtures.celery import add_scenario_wallets, seed_chain

pytestmark = pytest.mark.django_db

FAMILIES = [
    "chainfolio_http_requests_total", "chainfolio_http_request_seconds",
    "chainfolio_celery_tasks_total", "chainfolio_celery_task_seconds",
    "chainfolio_rpc_requests_total", "chainfolio_rpc_request_seconds", "chainfolio_rpc_wait_seconds_total",
    "chainfolio_sync_oldest_success_age_seconds", "chainfolio_sync_interval_seconds", "chainfolio_queue_depth",
]


def test_metrics_are_refused_without_the_token(client, settings):
    settings.METRICS_TOKEN = "s3cret-token-for-tests"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-token-for-tests").status_code == 200


def test_without_a_token_metrics_are_for_loopback_only(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", REMOTE_ADDR="10.0.0.7").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200


@pytest.mark.django_db(transaction=True)  # the scrape reads the database from a probe thread of its own
def test_every_family_is_present_after_a_sync(client, owner, evm_devnet, settings):
    settings.METRICS_TOKEN = ""
    chain = seed_chain(evm_devnet.scenario, rate_per_s=1000)
    wallets = add_scenario_wallets(owner, evm_devnet.scenario, chain)
    wc = WalletChain.objects.filter(wallet=wallets[0], chain=chain).get()
    sync.do_sync_wallet_chain(wc.id)
    # a task outcome as a worker would report it (the worker runs in another process in the real flow)
    metrics.task_started("t-1")
    metrics.task_finished("t-1", "portfolio.tasks.sync_wallet_chains_task", "evm", "success")
    client.get(reverse("readyz"))

    text = client.get("/metrics", REMOTE_ADDR="127.0.0.1").content.decode()
    missing = [f for f in FAMILIES if not re.search(rf"^{f}(_bucket|_count|_sum)?{{", text, re.M)]
    assert not missing, missing
    slug = evm_devnet.scenario["chain"]["slug"]
    age = float(re.search(rf'^chainfolio_sync_oldest_success_age_seconds{{chain="{slug}"}} (\S+)', text, re.M).group(1))
    assert 0 <= age < 120
    assert re.search(r'^chainfolio_rpc_requests_total{endpoint="[^"]+",outcome="ok"} [1-9]', text, re.M)
    assert 'chainfolio_http_requests_total{method="GET",status="2xx",view="readyz"}' in text
