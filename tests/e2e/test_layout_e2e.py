"""Every page on a phone (390 px) and a laptop (1366 px), light and dark, with demo-like data: nothing scrolls
sideways, axe-core finds no serious or critical accessibility violation, and a screenshot of each lands in
var/screenshots/ for a reviewer. Plus keyboard-only use of the forms and controls a user touches most."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from tests.e2e.demo_world import build_demo_world
from tests.fixtures.users import PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]

PHONE = {"width": 390, "height": 844}
SMALL_PHONE = {"width": 360, "height": 740}
LAPTOP = {"width": 1366, "height": 800}
AXE = Path(__file__).resolve().parents[2] / "devnet" / "node_modules" / "axe-core" / "axe.min.js"


@pytest.fixture
def demo(transactional_db):
    return build_demo_world()


def sign_in(page, live_server) -> None:
    page.goto(live_server.url + reverse("login"))
    page.fill("input[name=login]", "alice")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(live_server.url + reverse("dashboard"))


def signed_in_pages(demo) -> list[tuple[str, str]]:
    hot, cold, portfolio = demo["hot"], demo["cold"], demo["portfolio"]
    return [
        ("dashboard", reverse("dashboard")),
        ("portfolio-dashboard", reverse("portfolio_dashboard", args=[portfolio.pk])),
        ("holdings", reverse("holdings")),
        ("holding-wallets", reverse("holding_wallets", args=[demo["assets"]["usdc"].pk])),
        ("nfts", reverse("nfts")),
        ("positions", reverse("positions")),
        ("wallets", reverse("wallets")),
        ("wallet-evm", reverse("wallet_detail", args=[hot.pk])),
        ("wallet-xpub", reverse("wallet_detail", args=[cold.pk])),
        ("wallet-edit", reverse("wallet_edit", args=[hot.pk])),
        ("wallet-delete", reverse("wallet_delete", args=[hot.pk])),
        ("portfolios", reverse("portfolios")),
        ("portfolio", reverse("portfolio_detail", args=[portfolio.pk])),
        ("portfolio-edit", reverse("portfolio_edit", args=[portfolio.pk])),
        ("settings", reverse("settings")),
        ("sync-run", reverse("sync_status", args=[demo["run"].pk])),
    ]


# Django's admin and django-ninja's Swagger UI: their accessibility is upstream's; they must still fit.
ADMIN_PAGES = [("admin", "/admin/"), ("admin-chains", "/admin/portfolio/chain/"), ("admin-endpoints", "/admin/portfolio/rpcendpoint/"),
               ("admin-assets", "/admin/portfolio/asset/"), ("admin-wallet-chains", "/admin/portfolio/walletchain/"),
               ("admin-sync-runs", "/admin/portfolio/syncrun/"), ("admin-tokens", "/admin/portfolio/apitoken/"), ("api-docs", "/api/v1/docs")]
UPSTREAM = {name for name, _ in ADMIN_PAGES}


def overflow(page) -> tuple[int, list[str]]:
    """How far the document scrolls sideways, and the elements sticking out of the viewport."""
    width = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    culprits = page.evaluate("""() => [...document.querySelectorAll('body *')]
        .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1 && e.getClientRects().length)
        .map(e => e.tagName.toLowerCase() + '.' + [...e.classList].join('.') + (e.id ? '#' + e.id : '')).slice(0, 6)""")
    return width, culprits


@lru_cache(maxsize=1)
def _axe_source() -> str:
    return AXE.read_text()


def axe_violations(page) -> list[str]:
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(_axe_source())  # evaluated through the DevTools protocol: the page's CSP forbids inline scripts
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
            .map(v => v.id + ' (' + v.impact + '): ' + v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(' | '));
    }""")
    return result


def check(page, name: str, problems: list[str], *, axe: bool) -> None:
    page.wait_for_load_state("networkidle")
    width, culprits = overflow(page)
    if width > 0:
        problems.append(f"{name}: scrolls sideways by {width}px: {culprits}")
    if page.viewport_size["width"] <= PHONE["width"]:
        # A table may not hide columns off to the side either: on a phone it stacks or drops columns.
        hidden = page.evaluate("""() => [...document.querySelectorAll('main .table-wrap')]
            .filter(w => w.scrollWidth > w.clientWidth + 1)
            .map(w => (w.querySelector('table').className || w.closest('[data-testid]')?.dataset.testid || 'table') + ' +' + (w.scrollWidth - w.clientWidth) + 'px')""")
        if hidden:
            problems.append(f"{name}: tables scroll inside their box: {hidden}")
    if axe:
        problems.extend(f"{name}: {v}" for v in axe_violations(page))
    page.screenshot(path=str(SCREENS / f"{name}.png"), full_page=True)


SCREENS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("viewport", [PHONE, LAPTOP], ids=["390", "1366"])
def test_no_page_scrolls_sideways_and_every_page_passes_axe(page, live_server, demo, viewport, scheme):
    # devnet/package.json has axe-core; `make test` installs it (npm ci) whenever that file changes.
    assert AXE.exists(), f"axe-core is not installed ({AXE}): make setup (or cd devnet && npm ci)"
    SCREENS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size(viewport)
    page.emulate_media(color_scheme=scheme)
    suffix = f"{viewport['width']}-{scheme}"
    problems: list[str] = []
    for name, url in [("login", reverse("login")), ("signup", reverse("signup"))]:
        page.goto(live_server.url + url)
        check(page, f"{name}-{suffix}", problems, axe=True)
    sign_in(page, live_server)
    nav = page.get_by_role("navigation", name="Main")
    if viewport == PHONE:  # the links fold into the menu
        expect(nav.get_by_role("link", name="Portfolios")).to_be_hidden()
        expect(page.locator(".nav-toggle-label")).to_be_visible()
    else:  # all in the top bar, no menu button
        expect(page.locator(".nav-toggle-label")).to_be_hidden()
        for link in ("Dashboard", "Holdings", "NFTs", "Positions", "Wallets", "Portfolios", "Settings"):
            expect(nav.get_by_role("link", name=link)).to_be_visible()
        expect(page.get_by_role("link", name="API docs")).to_be_visible()
    # Every chart gives each slice its own colour.
    page.wait_for_function("() => document.querySelectorAll('canvas[data-chart=doughnut]').length === 4 && window.Chart")
    colours = page.evaluate("""() => [...document.querySelectorAll('canvas[data-chart=doughnut]')].map(c => {
        const d = Chart.getChart(c).data; return [d.labels.length, new Set(d.datasets[0].backgroundColor).size]; })""")
    assert all(labels == distinct for labels, distinct in colours), colours
    for name, url in signed_in_pages(demo) + ADMIN_PAGES:
        response = page.goto(live_server.url + url)
        assert response.ok, f"{name}: {response.status}"
        check(page, f"{name}-{suffix}", problems, axe=name not in UPSTREAM)
        if name.startswith("admin") and viewport == LAPTOP:
            clipped = page.evaluate("[...document.querySelectorAll('#changelist .results')].map(r => r.scrollWidth - r.clientWidth)")
            if any(c > 0 for c in clipped):
                problems.append(f"{name}: the list is clipped by {clipped}px")
    assert not problems, "\n".join(problems)


def test_nothing_scrolls_sideways_on_a_360_px_phone(page, live_server, demo):
    """The smallest common phone width: layout only (axe and both schemes run at 390 px above)."""
    page.set_viewport_size(SMALL_PHONE)
    problems: list[str] = []
    sign_in(page, live_server)
    for name, url in signed_in_pages(demo):
        page.goto(live_server.url + url)
        check(page, f"{name}-360", problems, axe=False)
    assert not problems, "\n".join(problems)
