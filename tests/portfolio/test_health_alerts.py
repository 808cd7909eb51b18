"""Health-factor alerts: a lending position below the owner's threshold raises a banner and an event,
which clear when it recovers."""

from __future__ import annotations

import logging
from decimal import Decimal as D

import pytest
from django.urls import reverse

from portfolio.models import Chain, HealthAlert, Position, Wallet, WalletChain
from portfolio.services.accounts import ensure_profile
from portfolio.services.alerts import do_check_health

pytestmark = pytest.mark.django_db


@pytest.fixture
def loan(owner):
    w = Wallet.objects.create(owner=owner, family="evm", address="0x" + "21" * 20, label="borrower")
    wc = WalletChain.objects.create(wallet=w, chain=Chain.objects.get(slug="ethereum"))
    return Position.objects.create(wallet_chain=wc, protocol="aave-v3", kind="lending", ref="0xpool", label="Aave V3",
                                   health_factor=D("1.5"))


def test_an_alert_opens_below_the_threshold_and_clears_when_it_recovers(owner, owner_client, loan, caplog):
    assert do_check_health([loan.wallet_chain_id]) == (0, 0)  # 1.5 is above the default 1.2
    Position.objects.filter(pk=loan.pk).update(health_factor=D("1.08"))
    with caplog.at_level(logging.INFO, logger="portfolio.services.alerts"):
        assert do_check_health([loan.wallet_chain_id]) == (1, 0)
        assert do_check_health([loan.wallet_chain_id]) == (0, 0)  # still below: one alert, not two
    assert [r.event for r in caplog.records] == ["health_alert_opened"]
    page = owner_client.get(reverse("dashboard")).content.decode()
    assert 'data-testid="health-alert"' in page and "Aave V3" in page and "1.08" in page
    Position.objects.filter(pk=loan.pk).update(health_factor=D("1.31"))
    assert do_check_health([loan.wallet_chain_id]) == (0, 1)
    assert 'data-testid="health-alert"' not in owner_client.get(reverse("dashboard")).content.decode()


def test_each_user_sets_their_own_threshold(owner, owner_client, loan):
    response = owner_client.post(reverse("settings"), {"quote_currency": "USD", "dust_threshold": "1.00", "health_alert_below": "1.60"})
    assert response.status_code in (200, 302)
    assert ensure_profile(owner).health_alert_below == D("1.60")
    assert do_check_health([loan.wallet_chain_id]) == (1, 0)  # 1.5 < 1.6
    assert HealthAlert.objects.get().threshold == D("1.60")


def test_a_closed_position_clears_its_alert(owner, loan):
    Position.objects.filter(pk=loan.pk).update(health_factor=D("1.01"))
    do_check_health([loan.wallet_chain_id])
    loan.delete()
    assert do_check_health([loan.wallet_chain_id]) == (0, 1)
    assert HealthAlert.objects.get().cleared_at is not None


def test_a_sync_that_finds_the_loan_repaid_clears_its_alert_and_a_steady_one_does_not_ask(owner, monkeypatch):
    """Through the sync: the fetch with the loan below the threshold opens the alert; the next fetch
    without it (repaid) clears it; a fetch equal to the stored rows, with no loan, reads no alert."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from chains.base import FetchResult, PositionLeg as Leg, Position as Loan, TokenBalance
    from portfolio.sync import run as sync_run
    from tests.portfolio.test_sync_writes import NATIVE_REF, _token, _wallet_chains

    (wc,) = _wallet_chains(owner, 1)
    address = wc.wallet.address
    loan = Loan(owner=address, protocol="lend", kind="lending", ref="a", health_factor=D("1.05"),
                legs=(Leg(asset=_token(0), amount=5, role="supplied"), Leg(asset=_token(1), amount=2, role="borrowed")))
    ether = (TokenBalance(owner=address, asset=NATIVE_REF, amount=7),)
    fetches = iter([FetchResult(balances=ether, height=1, endpoint="node", positions=(loan,)), FetchResult(balances=ether, height=2, endpoint="node"),
                    FetchResult(balances=ether, height=3, endpoint="node")])
    monkeypatch.setattr(sync_run, "_fetcher", lambda wallet_chains: lambda: next(fetches))
    sync_run.do_sync_wallet_chains([wc.id])
    assert HealthAlert.objects.get(cleared_at__isnull=True).health_factor == D("1.05")
    sync_run.do_sync_wallet_chains([wc.id])  # repaid
    assert HealthAlert.objects.get().cleared_at is not None
    with CaptureQueriesContext(connection) as seen:
        sync_run.do_sync_wallet_chains([wc.id])  # nothing changed
    assert not [q for q in seen.captured_queries if "healthalert" in q["sql"]]
