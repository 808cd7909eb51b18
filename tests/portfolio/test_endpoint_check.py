"""The admin checks an endpoint's chain on save (a real anvil answers eth_chainId) and shows its health."""

from __future__ import annotations

import pytest
from django.urls import reverse

from chains.base import ChainError
from chains.endpoints import RpcEvent
from devnet.common import free_port
from portfolio import endpoint_health
from portfolio.models import Chain
from tests.fixtures.celery import seed_chain

pytestmark = pytest.mark.django_db


def post_endpoint(staff_client, chain, url):
    return staff_client.post(reverse("admin:portfolio_rpcendpoint_add"), {
        "chain": chain.pk, "url": url, "priority": "5", "enabled": "on", "timeout_s": "5",
    })


def test_an_endpoint_of_the_right_chain_is_saved(staff_client, evm_devnet):
    chain = seed_chain(evm_devnet.scenario)
    chain.endpoints.all().delete()
    response = post_endpoint(staff_client, chain, evm_devnet.url)
    assert response.status_code == 302
    assert chain.endpoints.filter(url=evm_devnet.url).exists()


def test_an_endpoint_serving_another_chain_id_is_refused_with_the_reason(staff_client, evm_devnet):
    chain = seed_chain(evm_devnet.scenario)
    chain.endpoints.all().delete()
    Chain.objects.filter(pk=chain.pk).update(chain_id=987654321)  # the admin typed a wrong id for the anvil chain
    chain.refresh_from_db()
    response = post_endpoint(staff_client, chain, evm_devnet.url)
    assert response.status_code == 200
    page = response.content.decode()
    assert "serves another chain" in page and f"chain id {evm_devnet.scenario['chain']['chain_id']}" in page
    assert not chain.endpoints.exists()


def test_an_unreachable_endpoint_is_saved_with_a_clear_warning(staff_client, evm_devnet):
    chain = seed_chain(evm_devnet.scenario)
    url = f"http://127.0.0.1:{free_port()}"
    response = post_endpoint(staff_client, chain, url)
    assert response.status_code == 302
    shown = staff_client.get(response.url).content.decode()
    assert "could not be reached to check its chain" in shown
    assert chain.endpoints.filter(url=url).exists()


def test_the_admin_shows_recent_error_rate_latency_and_last_error(staff_client, evm_devnet):
    chain = seed_chain(evm_devnet.scenario)
    endpoint = chain.endpoints.get()
    label = endpoint.label
    with endpoint_health._lock:  # requests other tests made to the same session devnet are not this test's
        endpoint_health._tallies.clear()
    for outcome in ("ok", "ok", "ok", "error"):
        endpoint_health.observe(RpcEvent(endpoint=label, method="eth_call", kind="request", outcome=outcome, seconds=0.2,
                                         detail="" if outcome == "ok" else str(ChainError("HTTP 502", endpoint=endpoint.url))))
    assert endpoint_health.flush(force=True) == 1
    page = staff_client.get(reverse("admin:portfolio_rpcendpoint_changelist")).content.decode()
    assert "25%" in page and "200 ms" in page and "HTTP 502" in page
