"""Django admin: every page loads for staff, is refused to everyone else, never shows a secret, and its
actions (enable chains and endpoints, mark spam) do what they say."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.urls import reverse

from portfolio.models import Asset, Chain, Portfolio, PricePoint, RpcEndpoint, SyncRun, Wallet, WalletChain
from portfolio.services.wallets import do_add_wallet

pytestmark = pytest.mark.django_db

EVM = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"


@pytest.fixture
def objects(owner):
    wallet = do_add_wallet(owner, "evm", EVM, label="w")
    portfolio = Portfolio.objects.create(owner=owner, name="p")
    run = SyncRun.objects.create(owner=owner, wallet=wallet)
    asset = Asset.objects.get(chain__slug="ethereum", address="")
    PricePoint.objects.create(asset=asset, price="3000.12", source="manual")
    return {"wallet": wallet, "portfolio": portfolio, "run": run}


def admin_urls():
    for model, model_admin in admin.site._registry.items():
        info = model._meta.app_label, model._meta.model_name
        yield reverse("admin:%s_%s_changelist" % info), model
        if model_admin.has_add_permission(_StaffRequest()):
            yield reverse("admin:%s_%s_add" % info), model
        obj = model._default_manager.first()
        if obj is not None:
            yield reverse("admin:%s_%s_change" % info, args=[obj.pk]), model


class _StaffRequest:
    class user:
        is_active = is_staff = is_superuser = True

        @staticmethod
        def has_perm(*a, **k):
            return True


def test_every_admin_page_loads_for_staff(objects, staff_client):
    urls = [reverse("admin:index")] + [u for u, _ in admin_urls()]
    assert len(urls) > 20
    for url in urls:
        response = staff_client.get(url)
        assert response.status_code == 200, (url, response.status_code)


def test_admin_pages_send_signed_in_non_staff_users_to_the_admin_sign_in(objects, owner_client):
    for url in [reverse("admin:index")] + [u for u, _ in admin_urls()]:
        response = owner_client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login")), url


def test_admin_pages_send_anonymous_visitors_to_sign_in(objects, client):
    # LoginRequiredMiddleware answers first (the site's sign-in); a non-staff user then meets the admin's.
    for url in [reverse("admin:index")] + [u for u, _ in admin_urls()]:
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith((reverse("login"), reverse("admin:login"))), url


def test_the_endpoint_pages_show_the_env_var_name_never_a_key(staff_client, monkeypatch):
    monkeypatch.setenv("ALCHEMY_KEY", "sk-live-very-secret-value-123456")
    chain = Chain.objects.get(slug="ethereum")
    endpoint = RpcEndpoint.objects.create(
        chain=chain, url="https://eth-mainnet.g.alchemy.com/v2/AbCdEfGhIjKlMnOpQrStUvWxYz012345", auth_header_name="x-api-key", auth_header_env="ALCHEMY_KEY"
    )
    for url in (reverse("admin:portfolio_rpcendpoint_changelist"), reverse("admin:portfolio_rpcendpoint_change", args=[endpoint.pk]),
                reverse("admin:portfolio_chain_change", args=[chain.pk])):
        body = staff_client.get(url).content.decode()
        assert "sk-live-very-secret-value-123456" not in body
        assert "ALCHEMY_KEY" in body
    assert "AbCdEfGhIjKlMnOpQrStUvWxYz012345" not in staff_client.get(reverse("admin:portfolio_rpcendpoint_changelist")).content.decode()


def test_enabling_a_chain_in_the_admin_tracks_existing_wallets_on_it(owner, staff_client):
    wallet = do_add_wallet(owner, "evm", EVM)
    anvil = Chain.objects.get(slug="anvil")
    response = staff_client.post(
        reverse("admin:portfolio_chain_changelist"), {"action": "enable_chains", "_selected_action": [anvil.pk]}
    )
    assert response.status_code == 302
    anvil.refresh_from_db()
    assert anvil.enabled
    assert WalletChain.objects.filter(wallet=wallet, chain=anvil).exists()


def test_adding_a_chain_in_the_admin_tracks_existing_wallets_on_it(owner, staff_client):
    wallet = do_add_wallet(owner, "evm", EVM)
    data = {
        "slug": "gnosis", "name": "Gnosis", "family": "evm", "network": "mainnet", "chain_id": "100", "enabled": "on", "sort_order": "50",
        "native_symbol": "xDAI", "native_name": "xDAI", "native_decimals": "18", "sync_interval": "00:10:00",
        "multicall_address": "0xcA11bde05977b3631167028862bE2a173976CA11", "log_range": "10000",
        "endpoints-TOTAL_FORMS": "1", "endpoints-INITIAL_FORMS": "0", "endpoints-MIN_NUM_FORMS": "0", "endpoints-MAX_NUM_FORMS": "1000",
        "endpoints-0-url": "https://rpc.gnosischain.com", "endpoints-0-priority": "10", "endpoints-0-enabled": "on", "endpoints-0-timeout_s": "10",
        "protocol_deployments-TOTAL_FORMS": "1", "protocol_deployments-INITIAL_FORMS": "0",
        "protocol_deployments-MIN_NUM_FORMS": "0", "protocol_deployments-MAX_NUM_FORMS": "1000",
        "protocol_deployments-0-protocol": "uniswap_v2", "protocol_deployments-0-enabled": "on",
        "protocol_deployments-0-contracts": '{"factory": "0x5C69bEe701ef814a2B6a3EDD4B1652CB9cc5aA6f"}',
    }
    response = staff_client.post(reverse("admin:portfolio_chain_add"), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    gnosis = Chain.objects.get(slug="gnosis")
    assert gnosis.endpoints.count() == 1
    assert gnosis.to_config().protocols == {"uniswap_v2": {"factory": "0x5C69bEe701ef814a2B6a3EDD4B1652CB9cc5aA6f"}}
    assert WalletChain.objects.filter(wallet=wallet, chain=gnosis).exists()


def test_disabling_chains_and_endpoints_from_the_admin(staff_client):
    chain = Chain.objects.get(slug="ethereum")
    staff_client.post(reverse("admin:portfolio_chain_changelist"), {"action": "disable_chains", "_selected_action": [chain.pk]})
    chain.refresh_from_db()
    assert not chain.enabled
    endpoint = chain.endpoints.first()
    staff_client.post(reverse("admin:portfolio_rpcendpoint_changelist"), {"action": "disable_endpoints", "_selected_action": [endpoint.pk]})
    endpoint.refresh_from_db()
    assert not endpoint.enabled
    staff_client.post(reverse("admin:portfolio_rpcendpoint_changelist"), {"action": "enable_endpoints", "_selected_action": [endpoint.pk]})
    endpoint.refresh_from_db()
    assert endpoint.enabled


def test_marking_assets_as_spam_and_not_spam(staff_client):
    asset = Asset.objects.create(chain=Chain.objects.get(slug="ethereum"), kind="fungible", standard="erc20", address="0x" + "11" * 20, symbol="SCAM", decimals=18)
    url = reverse("admin:portfolio_asset_changelist")
    staff_client.post(url, {"action": "mark_spam", "_selected_action": [asset.pk]})
    asset.refresh_from_db()
    assert asset.is_spam and asset.spam_reason
    staff_client.post(url, {"action": "mark_not_spam", "_selected_action": [asset.pk]})
    asset.refresh_from_db()
    assert not asset.is_spam


def test_a_manual_price_can_be_entered_in_the_admin(staff_client):
    asset = Asset.objects.get(chain__slug="ethereum", address="")
    response = staff_client.get(reverse("admin:portfolio_pricepoint_add"))
    assert b'value="manual"' in response.content
    response = staff_client.post(
        reverse("admin:portfolio_pricepoint_add"),
        {"asset": asset.pk, "at_0": "2026-01-01", "at_1": "00:00:00", "currency": "USD", "price": "3123.456789012345678", "source": "manual"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    from decimal import Decimal

    assert PricePoint.objects.get(asset=asset, source="manual").price == Decimal("3123.456789012345678")


def test_wallets_cannot_be_added_in_the_admin_bypassing_validation(staff_client):
    assert staff_client.get(reverse("admin:portfolio_wallet_add")).status_code == 403
    assert not Wallet.objects.exists()
