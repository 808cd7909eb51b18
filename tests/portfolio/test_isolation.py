"""Isolation: another user's wallet, portfolio or sync run is a 404 on every URL that takes an id (found by
walking the URL patterns, so routes added later are covered), and nothing of theirs changes."""

from __future__ import annotations

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from portfolio.models import ApiToken, Asset, AssetIcon, Holding, Portfolio, SyncRun, Wallet, WalletChain
from portfolio.services.tokens import do_create_api_token
from portfolio.services.wallets import do_add_wallet

pytestmark = pytest.mark.django_db


# django-allauth's pages (security keys by id) look objects up through the signed-in user and ask for the
# password again before anything else: tests/portfolio/test_limits.py walks them for out-of-range ids.
ALLAUTH_PREFIXES = ("mfa_", "account_")


def id_routes(resolver=None, prefix="", *, with_allauth=False):
    """(name, route, id kwarg names) of every non-admin URL pattern that takes an int id."""
    resolver = resolver or get_resolver()
    for p in resolver.url_patterns:
        if isinstance(p, URLResolver):
            if p.app_name != "admin":
                yield from id_routes(p, prefix + str(p.pattern), with_allauth=with_allauth)
        elif isinstance(p, URLPattern) and p.name and (with_allauth or not p.name.startswith(ALLAUTH_PREFIXES)):
            route = prefix + str(p.pattern)
            ids = re.findall(r"<int:(\w+)>", route)
            if ids:
                yield p.name, route, ids


@pytest.fixture
def owned(owner):
    wallet = do_add_wallet(owner, "evm", "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", label="alice's")
    portfolio = Portfolio.objects.create(owner=owner, name="alice's portfolio")
    portfolio.wallets.add(wallet)
    run = SyncRun.objects.create(owner=owner, portfolio=portfolio)
    wallet_chain = WalletChain.objects.filter(wallet=wallet).first()
    token, _ = do_create_api_token(owner, "alice's script", ApiToken.WRITE)
    # An asset only alice holds: its per-wallet breakdown is hers alone.
    asset = Asset.objects.create(chain=wallet_chain.chain, kind=Asset.FUNGIBLE, address="0x" + "a1" * 20, symbol="ALICE")
    Holding.objects.create(wallet_chain=wallet_chain, asset=asset, amount=5)
    AssetIcon.objects.create(asset=asset, source_url="https://example.invalid/a.png", content_type="image/png",
                             data=b"\x89PNG\r\n\x1a\n", digest="0" * 64)  # its logo: served to who holds it
    return {"wallet_id": wallet.pk, "portfolio_id": portfolio.pk, "run_id": run.pk, "wallet_chain_id": wallet_chain.pk,
            "token_id": token.pk, "asset_id": asset.pk}


def test_the_id_routes_are_found(owned):
    names = {name for name, _, _ in id_routes()}
    assert {"wallet_detail", "wallet_edit", "wallet_delete", "portfolio_detail", "portfolio_edit", "portfolio_delete"} <= names


def test_every_id_url_is_a_404_for_another_user(owned, owner_client, outsider_client):
    for name, route, ids in id_routes():
        unknown = [i for i in ids if i not in owned]
        assert not unknown, f"{name} ({route}) takes {unknown}: add an owned object for it in this test"
        url = reverse(name, kwargs={i: owned[i] for i in ids})
        statuses = {}
        for method in ("get", "post", "patch", "delete"):
            statuses[method] = getattr(outsider_client, method)(url).status_code
        assert set(statuses.values()) <= {404, 405}, (name, statuses)
        assert 404 in statuses.values(), (name, statuses)
        # and the owner does see it (so the 404 is about ownership, not a missing object)
        assert owner_client.get(url).status_code in (200, 405), name
    # nothing of alice's changed or disappeared
    assert Wallet.objects.filter(pk=owned["wallet_id"], label="alice's").exists()
    assert Portfolio.objects.filter(pk=owned["portfolio_id"], name="alice's portfolio").exists()
    assert ApiToken.objects.get(pk=owned["token_id"]).revoked_at is None


def test_an_id_that_does_not_exist_is_a_404_too(owned, owner_client):
    for name, route, ids in id_routes():
        assert owner_client.get(reverse(name, kwargs={i: 999_999 for i in ids})).status_code in (404, 405), name


def test_lists_show_only_the_users_own_objects(owned, outsider_client):
    for name in ("wallets", "portfolios"):
        body = outsider_client.get(reverse(name)).content.decode()
        assert "alice" not in body, name


@pytest.mark.parametrize("field", ["wallet", "portfolio"])
def test_refreshing_another_users_wallet_or_portfolio_is_a_404(owned, outsider_client, field):
    """Ids sent in a POST body are scoped the same way as ids in the URL."""
    runs = SyncRun.objects.count()
    response = outsider_client.post(reverse("refresh"), {field: owned[f"{field}_id"]})
    assert response.status_code == 404
    assert SyncRun.objects.count() == runs
