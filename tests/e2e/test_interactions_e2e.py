"""What a user does with the pages, in a real browser: expands a holding in place, uses the phone menu (with
and without JavaScript), and works the add-wallet form, the holdings filters, the range switch and Refresh
with the keyboard alone."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from portfolio.models import SyncRun, Wallet
from tests.e2e.demo_world import build_demo_world
from tests.e2e.test_layout_e2e import LAPTOP, PHONE, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]


@pytest.fixture
def demo(transactional_db):
    return build_demo_world()


def test_a_holdings_row_expands_in_place_after_a_search(page, live_server, demo):
    """The search box's change event (on losing focus to the click) once reloaded the table and wiped the
    expanded rows out: the click "inserted nothing"."""
    page.set_viewport_size(LAPTOP)
    sign_in(page, live_server)
    page.goto(live_server.url + reverse("holdings"))
    page.evaluate("window.__sameDocument = true")
    page.fill("#holdings-q", "usd")
    expect(page.get_by_test_id("holding-row")).to_have_count(1)
    row = page.get_by_test_id("holding-row").filter(has_text="USDC")
    link = row.get_by_test_id("holding-expand")
    link.click()
    parts = page.get_by_test_id("holding-wallets")
    expect(parts).to_be_visible()
    expect(parts).to_contain_text("Hot wallet")
    expect(parts).to_contain_text("block 1,234,567")
    page.wait_for_timeout(600)  # longer than the search's 300 ms debounce: nothing reloads the table
    expect(parts).to_be_visible()
    expect(link).to_have_attribute("aria-expanded", "true")
    link.click()  # folds it
    expect(parts).to_be_hidden()
    expect(link).to_have_attribute("aria-expanded", "false")
    link.click()
    expect(parts).to_be_visible()
    expect(page.get_by_test_id("holding-wallets")).to_have_count(1)  # loaded once
    assert page.evaluate("window.__sameDocument") is True  # all in place, never a page load


def tab_to(page, selector: str, *, limit: int = 80) -> None:
    """Press Tab until the focused element matches ``selector``: reachable by keyboard, in tab order."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("s => document.activeElement && document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"{selector} is not reachable with Tab")


def test_the_phone_menu_opens_by_keyboard_and_without_javascript(page, browser, live_server, demo, screenshot):
    page.set_viewport_size(PHONE)
    sign_in(page, live_server)
    holdings = page.get_by_role("navigation", name="Main").get_by_role("link", name="Holdings")
    expect(holdings).to_be_hidden()
    tab_to(page, "#nav-toggle")
    page.keyboard.press("Space")
    expect(holdings).to_be_visible()
    expect(page.locator("#nav-toggle")).to_have_attribute("aria-expanded", "true")
    for name in ("Settings", "Portfolios"):
        expect(page.get_by_role("navigation", name="Main").get_by_role("link", name=name)).to_be_visible()
    expect(page.get_by_role("link", name="API docs")).to_be_visible()
    screenshot("menu-open-390")
    tab_to(page, "a[href='/holdings/']")
    page.keyboard.press("Enter")
    page.wait_for_url("**/holdings/")

    # Without JavaScript the menu is the same checkbox and label.
    context = browser.new_context(java_script_enabled=False, viewport=PHONE)
    try:
        plain = context.new_page()
        sign_in(plain, live_server)
        plain.get_by_text("Menu").click()
        plain.get_by_role("navigation", name="Main").get_by_role("link", name="Settings").click()
        plain.wait_for_url("**/settings/")
    finally:
        context.close()


def test_a_wallet_is_added_with_the_keyboard_alone_and_the_form_shows_its_familys_fields(page, live_server, demo):
    page.set_viewport_size(LAPTOP)
    sign_in(page, live_server)
    page.goto(live_server.url + reverse("wallets"))
    form = page.locator("#wallet-form")
    script_type = form.locator("select[name=script_type]")
    expect(script_type).to_be_hidden()  # EVM is chosen: no Bitcoin-only fields
    tab_to(page, "#wallet-form select[name=family]")
    page.keyboard.press("ArrowDown")  # Bitcoin
    expect(form.locator("select[name=family]")).to_have_value("bitcoin")
    expect(script_type).to_be_visible()
    expect(form.locator("input[name=gap_limit]")).to_be_visible()
    page.keyboard.press("ArrowUp")  # back to EVM
    expect(script_type).to_be_hidden()
    tab_to(page, "#wallet-form input[name=address]")
    page.keyboard.type("0x70997970C51812dc3A010C7d01b50e0d17dc79C8")
    tab_to(page, "#wallet-form input[name=label]")
    page.keyboard.type("Typed by keyboard")
    tab_to(page, "#wallet-form button[type=submit]")
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_contain_text("Typed by keyboard")
    assert Wallet.objects.filter(label="Typed by keyboard", family="evm").exists()


def test_filters_range_and_refresh_work_from_the_keyboard(page, live_server, demo):
    page.set_viewport_size(LAPTOP)
    sign_in(page, live_server)

    # The range switch on the dashboard.
    tab_to(page, "#performance a[href='?range=7d']")
    page.keyboard.press("Enter")
    page.wait_for_url("**range=7d")
    expect(page.locator('#performance [aria-current="true"]')).to_have_text("7D")
    # The swapped-in chart is drawn again (its data once sat in a <script> that htmx drops).
    page.wait_for_function("() => window.Chart && Chart.getChart(document.querySelector('canvas[data-chart=line]'))")

    # Refresh: the button turns busy at once and the progress line appears.
    tab_to(page, "[data-testid=refresh-form] button")
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("sync-status")).to_be_visible()
    expect(page.locator(".refresh-btn .refresh-busy")).to_be_visible()
    assert SyncRun.objects.filter(owner=demo["user"], status=SyncRun.QUEUED).exists()
    # A second press while it runs joins the same run; once it has ended, another within the minute is
    # refused, and the page says so above the progress line (htmx alone would drop a 429 silently).
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("sync-status")).to_be_visible()
    assert SyncRun.objects.filter(owner=demo["user"]).count() == 2  # the demo's finished run and this one
    SyncRun.objects.filter(owner=demo["user"], status=SyncRun.QUEUED).update(status=SyncRun.OK, finished_at=timezone.now())
    expect(page.get_by_test_id("sync-status")).to_have_attribute("data-status", "ok")
    page.keyboard.press("Enter")
    expect(page.locator("#refresh-note")).to_contain_text("Try again in")
    expect(page.get_by_test_id("sync-status")).to_have_attribute("data-status", "ok")  # the last run stays in view

    # The holdings filters: search, chain, hide spam.
    page.goto(live_server.url + reverse("holdings"))
    rows = page.get_by_test_id("holding-row")
    tab_to(page, "#holdings-q")
    page.keyboard.type("eth")
    expect(rows.first).to_contain_text("ETH")
    for i in range(rows.count()):
        assert "eth" in rows.nth(i).inner_text().lower()
    page.keyboard.press("Control+a")
    page.keyboard.press("Backspace")
    expect(rows.filter(has_text="Chainlink Token")).to_have_count(1)
    tab_to(page, "#holdings-chain")
    page.keyboard.press("ArrowDown")  # the first chain in the list
    expect(page).to_have_url(re.compile(r"chain=[a-z]"))
    page.keyboard.press("Home")  # "All chains" again
    expect(rows.filter(has_text="SOL")).to_have_count(1)
    expect(page.get_by_test_id("holdings-table")).not_to_contain_text("FREE")
    tab_to(page, "input[name=hide_spam][type=checkbox]")
    page.keyboard.press("Space")
    expect(page.get_by_test_id("holdings-table")).to_contain_text("FREE")


def test_the_figures_change_without_a_click_when_a_run_ends(page, live_server, demo):
    """The polling progress line sees the run end and the page swaps its figures in (no reload). The same
    with a real worker and devnets: test_sync_flow_e2e."""
    from portfolio.models import Holding, SyncRunItem
    from portfolio.services.snapshots import do_snapshot

    page.set_viewport_size(LAPTOP)
    sign_in(page, live_server)
    run = SyncRun.objects.create(owner=demo["user"], status=SyncRun.RUNNING, started_at=timezone.now())
    item = SyncRunItem.objects.create(run=run, wallet_chain=demo["hot"].wallet_chains.get(chain__slug="ethereum"), status=SyncRun.RUNNING)
    page.goto(live_server.url + reverse("dashboard"))
    page.evaluate("window.__sameDocument = true")
    net_worth = page.get_by_test_id("net-worth")
    before = net_worth.inner_text()
    expect(page.get_by_test_id("sync-summary")).to_contain_text("0 of 1")
    expect(page.locator(".refresh-btn .refresh-busy")).to_be_visible()

    # The worker's part, done here: one more ETH read, the run closed.
    Holding.objects.filter(wallet_chain=item.wallet_chain, asset=demo["assets"]["native"]).update(amount=4_250_000_000_000_000_000)
    do_snapshot()
    SyncRunItem.objects.filter(pk=item.pk).update(status=SyncRun.OK, finished_at=timezone.now(), height=1234568)
    SyncRun.objects.filter(pk=run.pk).update(status=SyncRun.OK, finished_at=timezone.now())

    expect(page.get_by_test_id("sync-status")).to_have_attribute("data-status", "ok")
    expect(net_worth).not_to_have_text(before)
    assert page.evaluate("window.__sameDocument") is True
    page.wait_for_function("() => [...document.querySelectorAll('canvas[data-chart]')].every(c => window.Chart.getChart(c))")
    expect(page.locator(".refresh-btn .refresh-idle")).to_be_visible()
