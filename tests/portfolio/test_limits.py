"""Brakes on greed: per-user wallet and portfolio limits in the form, the API and the service layer, raised
per user by staff; the refresh limit per scope (429 + Retry-After on the API); and ids outside the
database's integer range answered 404/422 on every id-taking route and field, never 500."""

from __future__ import annotations

import re
import time

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from portfolio.limits import LimitReached, RefreshTooSoon, check_wallet_limit, claim_refresh
from portfolio.models import Portfolio, Wallet
from portfolio.services.wallets import do_add_wallet, do_create_portfolio
from tests.portfolio.test_isolation import id_routes

pytestmark = pytest.mark.django_db


def evm(i: int) -> str:
    return "0x" + f"{i:040x}"


@pytest.fixture
def small_limits(settings):
    settings.MAX_WALLETS_PER_USER = 2
    settings.MAX_PORTFOLIOS_PER_USER = 1
    return settings


def test_the_service_refuses_a_wallet_past_the_limit(owner, small_limits):
    do_add_wallet(owner, "evm", evm(1))
    do_add_wallet(owner, "evm", evm(2))
    with pytest.raises(LimitReached) as caught:
        do_add_wallet(owner, "evm", evm(3))
    assert caught.value.code == "limit" and "2 wallets" in caught.value.message
    assert Wallet.objects.filter(owner=owner).count() == 2


def test_the_form_says_so_clearly(owner, owner_client, small_limits):
    do_add_wallet(owner, "evm", evm(1))
    do_add_wallet(owner, "evm", evm(2))
    response = owner_client.post(reverse("wallets"), {"family": "evm", "address": evm(3), "gap_limit": "20"})
    assert response.status_code == 200
    assert "the most this account may have" in response.content.decode()
    assert Wallet.objects.filter(owner=owner).count() == 2


def test_the_api_answers_429_with_retry_after_and_a_clear_message(owner, owner_client, small_limits):
    for i in (1, 2):
        assert owner_client.post("/api/v1/wallets", {"family": "evm", "address": evm(i)}, content_type="application/json").status_code == 201
    response = owner_client.post("/api/v1/wallets", {"family": "evm", "address": evm(3)}, content_type="application/json")
    assert response.status_code == 429 and int(response["Retry-After"]) > 0
    assert response.json() == {"code": "limit", "detail": "You track 2 wallets, the most this account may have. Remove one, "
                               "or ask an administrator to raise your limit."}
    assert Wallet.objects.filter(owner=owner).count() == 2

    do_create_portfolio(owner, "one")
    response = owner_client.post("/api/v1/portfolios", {"name": "two"}, content_type="application/json")
    assert response.status_code == 429 and response["Retry-After"]
    assert response.json()["code"] == "limit" and "1 portfolios" in response.json()["detail"]
    assert Portfolio.objects.filter(owner=owner).count() == 1


def test_portfolios_are_limited_in_the_form_and_the_service(owner, owner_client, small_limits):
    do_create_portfolio(owner, "one")
    with pytest.raises(LimitReached):
        do_create_portfolio(owner, "two")
    response = owner_client.post(reverse("portfolios"), {"name": "two"})
    assert "the most this account may have" in response.content.decode()
    assert Portfolio.objects.filter(owner=owner).count() == 1
    # Editing an existing one is not adding one.
    p = Portfolio.objects.get(owner=owner)
    assert owner_client.post(reverse("portfolio_edit", args=[p.pk]), {"name": "renamed"}).status_code == 302


def test_staff_raise_one_users_limit_in_the_admin(owner, outsider, staff_client, small_limits):
    do_add_wallet(owner, "evm", evm(1))
    do_add_wallet(owner, "evm", evm(2))
    profile = owner.profile
    page = staff_client.get(reverse("admin:portfolio_profile_change", args=[profile.pk]))
    assert b"max_wallets" in page.content
    data = {"user": owner.pk, "quote_currency": "USD", "dust_threshold": "1.00", "health_alert_below": "1.20", "max_wallets": "5", "max_portfolios": ""}
    assert staff_client.post(reverse("admin:portfolio_profile_change", args=[profile.pk]), data).status_code == 302
    do_add_wallet(owner, "evm", evm(3))
    assert Wallet.objects.filter(owner=owner).count() == 3
    do_add_wallet(outsider, "evm", evm(1))
    do_add_wallet(outsider, "evm", evm(2))
    with pytest.raises(LimitReached):  # the others keep the default
        check_wallet_limit(outsider)


def test_a_refresh_per_scope_at_most_once_a_minute(owner, outsider, monkeypatch, settings):
    settings.REFRESH_MIN_INTERVAL_SECONDS = 60
    claim_refresh(owner)
    with pytest.raises(RefreshTooSoon) as caught:
        claim_refresh(owner)
    assert 55 <= caught.value.retry_after <= 60
    claim_refresh(owner, portfolio_id=7)  # another scope
    claim_refresh(outsider)  # another user
    later = time.time() + 61
    monkeypatch.setattr(time, "time", lambda: later)
    claim_refresh(owner)


def test_the_api_answers_too_soon_with_429_and_retry_after(owner, owner_client):
    from django.utils import timezone

    from portfolio.models import SyncRun

    first = owner_client.post("/api/v1/sync", content_type="application/json")
    assert first.status_code == 202
    # The run finished at once; a second click joining a moving run would be a 202 with that run.
    SyncRun.objects.update(status=SyncRun.OK, finished_at=timezone.now())
    response = owner_client.post("/api/v1/sync", content_type="application/json")
    assert response.status_code == 429 and 0 < int(response["Retry-After"]) <= 60
    assert response.json()["code"] == "rate_limited" and "Try again in" in response.json()["detail"]


def test_a_limit_error_is_a_validation_error_for_every_caller():
    assert issubclass(LimitReached, ValidationError)


# --------------------------------------------------------------------------- ids out of range

OUT_OF_RANGE = st.one_of(st.integers(min_value=2**63, max_value=2**80), st.integers(max_value=0, min_value=-(2**70)))


@pytest.fixture
def world(owner):
    wallet = do_add_wallet(owner, "evm", evm(1), label="w")
    portfolio = do_create_portfolio(owner, "p", [wallet])
    return wallet, portfolio


@hsettings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bad=OUT_OF_RANGE)
def test_ids_out_of_range_are_never_a_server_error(world, owner_client, bad):
    owner_client.raise_request_exception = False
    wallet, portfolio = world
    for name, route, ids in id_routes(with_allauth=True):
        url = "/" + re.sub(r"<int:\w+>", str(bad), route).lstrip("^").rstrip("$").replace("\\Z", "")
        for method in ("get", "post"):
            status = getattr(owner_client, method)(url).status_code
            # 302: allauth's security-key pages ask for the password again before looking anything up.
            assert status in (404, 405) or (status == 302 and name.startswith("mfa_")), (name, method, status)
    for url in (f"/api/v1/wallets/{bad}", f"/api/v1/portfolios/{bad}", f"/api/v1/sync/{bad}"):
        assert owner_client.get(url).status_code in (404, 422), url
    for params in ({"wallet": bad}, {"portfolio": bad}, {"chain": bad}):
        assert owner_client.get(reverse("holdings"), params).status_code in (200, 404), params
    assert owner_client.get(reverse("dashboard"), {"portfolio": bad}).status_code in (200, 404)
    assert owner_client.get("/api/v1/holdings", {"portfolio_id": bad}).status_code in (404, 422)
    for body in ({"family": "evm", "address": evm(9), "portfolio_ids": [bad]}, ):
        assert owner_client.post("/api/v1/wallets", body, content_type="application/json").status_code == 422
    for body in ({"portfolio_id": bad}, {"wallet_id": bad}):
        assert owner_client.post("/api/v1/sync", body, content_type="application/json").status_code in (404, 422)
    forms = [
        (reverse("wallets"), {"family": "evm", "address": evm(9), "gap_limit": "20", "portfolios": [str(bad)]}),
        (reverse("wallet_edit", args=[wallet.pk]), {"label": "x", "portfolios": [str(bad)]}),
        (reverse("portfolios"), {"name": "q", "wallets": [str(bad)]}),
        (reverse("portfolio_edit", args=[portfolio.pk]), {"name": "p", "wallets": [str(bad)]}),
        (reverse("refresh"), {"portfolio": str(bad)}),
        (reverse("refresh"), {"wallet": str(bad)}),
    ]
    for url, data in forms:
        status = owner_client.post(url, data).status_code
        assert status in (200, 302, 404, 422), (url, status)
    assert Wallet.objects.filter(owner=world[0].owner).count() == 1


def test_the_wallet_and_portfolio_lists_come_in_pages(owner, owner_client, settings):
    settings.MAX_WALLETS_PER_USER = 1000
    Wallet.objects.bulk_create([Wallet(owner=owner, family="evm", address=evm(i), label=f"w{i:03}") for i in range(120)])
    first = owner_client.get(reverse("wallets")).content.decode()
    assert first.count('class="wallet-rows"') == 1 and "120 wallets of at most 1000" in first and "page 1 of 3" in first
    assert first.count("/edit/") == 50
    last = owner_client.get(reverse("wallets"), {"page": 3}).content.decode()
    assert last.count("/edit/") == 20 and 'rel="prev"' in last and 'rel="next"' not in last
    assert owner_client.get(reverse("wallets"), {"page": "9999"}).status_code == 200  # past the end: the last page
    for i in range(3):
        do_create_portfolio(owner, f"p{i}")
    assert "3 portfolios of at most 20" in owner_client.get(reverse("portfolios")).content.decode()


@pytest.fixture
def refresh_braked(monkeypatch, settings):
    """The sync service as the lead wires it: claim_refresh() before a new run (a second one is too soon)."""
    import portfolio.views.sync as views
    from portfolio.api_routers import sync as api_sync

    def do_request_sync(owner, *, portfolio=None, wallet=None):
        claim_refresh(owner, portfolio_id=portfolio and portfolio.pk, wallet_id=wallet and wallet.pk)
        raise AssertionError("first call only")

    monkeypatch.setattr(views, "do_request_sync", do_request_sync)
    monkeypatch.setattr(api_sync, "do_request_sync", do_request_sync)
    settings.REFRESH_MIN_INTERVAL_SECONDS = 60


def test_a_second_refresh_too_soon_is_429_with_retry_after_or_a_message(owner, owner_client, refresh_braked):
    claim_refresh(owner)  # the first refresh of "all wallets"
    response = owner_client.post("/api/v1/sync", content_type="application/json")
    assert response.status_code == 429 and 55 <= int(response["Retry-After"]) <= 60
    response = owner_client.post(reverse("refresh"), HTTP_HX_REQUEST="true")
    assert response.status_code == 429 and "Try again in" in response.content.decode() and response["Retry-After"]
    response = owner_client.post(reverse("refresh"), follow=True)
    assert response.status_code == 200 and "Try again in" in response.content.decode()
