"""The activity feed and the holdings' cost-basis column in a real browser: the transfers newest first,
internal ones marked, a filter applied by choosing it; screenshots of both pages."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from playwright.sync_api import expect

from tests.e2e.test_pages_e2e import DESKTOP, PHONE, sign_in
from tests.fixtures.users import PASSWORD
from tests.portfolio.test_costbasis import make_book

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def book(transactional_db):
    from portfolio.models import Asset, Chain, RpcEndpoint
    from portfolio.seed import seed_chains

    if not Chain.objects.exists():  # a transactional test's flush removes the migration's seed
        seed_chains(Chain, RpcEndpoint, Asset)
    users = get_user_model().objects
    return make_book(users.create_user("alice", "alice@example.com", PASSWORD),
                     users.create_user("mallory", "mallory@example.com", PASSWORD))


def test_a_user_reads_the_activity_and_the_cost_basis(page, live_server, book, screenshot):
    page.set_viewport_size(DESKTOP)
    sign_in(page, live_server)
    page.get_by_role("link", name="Activity").click()
    rows = page.get_by_test_id("activity-row")
    expect(rows).to_have_count(6)
    expect(rows.first).to_contain_text("AIR")
    expect(page.get_by_text("internal out")).to_be_visible()
    screenshot("activity-desktop")
    page.select_option("#activity-direction", "out")
    expect(rows).to_have_count(2)
    page.get_by_role("link", name="Holdings").click()
    expect(page.get_by_test_id("cost-basis").first).to_contain_text("avg $150.00")
    screenshot("holdings-cost-basis-desktop")


def test_the_activity_fits_a_phone(page, live_server, book, screenshot):
    page.set_viewport_size(PHONE)
    sign_in(page, live_server)
    page.goto(live_server.url + reverse("activity"))
    expect(page.get_by_test_id("activity-row")).to_have_count(6)
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the activity page scrolls sideways by {overflow}px"
    screenshot("activity-phone")
