"""Backfills against the EVM devnet's year of daily blocks, in-process (steps called as the task would):
what a user sees stored and shown, a re-run that changes nothing, an interrupted run that resumes, an
endpoint without archive state, and a live series that never counts a backfilled day twice."""

from __future__ import annotations

import json
from datetime import date, datetime, time as dt_time, timedelta, timezone as dt_timezone
from decimal import Decimal

import httpx
import pytest
from django.urls import reverse
from django.utils import timezone

from chains.base import ChainError
from portfolio.history.backfill import do_backfill_step
from portfolio.history.start import start_backfills
from portfolio.models import Backfill, PricePoint, ScopeValue, Transfer, ValuePoint, WalletChain, WalletValue
from portfolio.services.snapshots import do_snapshot
from portfolio.sync import run as sync_run
from tests.chains.test_evm_history import _balances_at
from tests.fixtures.celery import add_scenario_wallets, seed_chain

pytestmark = [pytest.mark.devnet, pytest.mark.django_db]


@pytest.fixture
def backfills_on(settings):
    settings.BACKFILL_ENABLED = True


def _first_read(owner, scenario, url=None):
    """Alice's wallet synced for the first time today and snapshotted: a backfill is due."""
    chain = seed_chain(scenario, url)
    wallets = add_scenario_wallets(owner, scenario, chain)
    alice = wallets[0]
    wc = WalletChain.objects.get(wallet=alice)
    sync_run.do_sync_wallet_chain(wc.id)
    do_snapshot([alice.id])
    return alice, WalletChain.objects.get(pk=wc.pk)


def _run(backfill_id: int, max_steps: int = 100) -> Backfill:
    for _ in range(max_steps):
        backfill = do_backfill_step(backfill_id)
        if backfill.status in (Backfill.DONE, Backfill.PARTIAL, Backfill.FAILED):
            return Backfill.objects.get(pk=backfill_id)
    raise AssertionError("the backfill did not finish")


def _history_days(scenario) -> dict[date, int]:
    return {date.fromisoformat(d): b for d, b in scenario["history"]["days"].items()}


def _day_end(day: date) -> datetime:
    return datetime.combine(day, dt_time(23, 59, 59), tzinfo=dt_timezone.utc)


def _close(a: Decimal, b: Decimal) -> bool:
    """Equal to 15 places: every stored point is rounded to 18, and a total adds a few of them."""
    return abs(a - b) < Decimal("1e-15")


def _stored(wallet) -> dict:
    """Everything a backfill writes for the wallet, comparable across runs."""
    return {
        "points": sorted((p.chain_id, p.asset_id, p.at, p.amount, p.price, p.value, p.flow_value, p.market_value, p.opening_value)
                         for p in ValuePoint.objects.filter(wallet=wallet)),
        "totals": sorted((w.at, w.value, w.flow_value, w.market_value, w.opening_value, w.unpriced)
                         for w in WalletValue.objects.filter(wallet=wallet)),
        "scopes": sorted((s.scope_key, s.at, s.value, s.flow_value, s.market_value, s.opening_value) for s in ScopeValue.objects.all()),
        "transfers": sorted((t.asset_id, t.tx, t.key, t.direction, t.amount, t.at) for t in Transfer.objects.filter(wallet_chain__wallet=wallet)),
        "prices": PricePoint.objects.count(),
    }


def test_a_first_sync_starts_a_backfill_that_rebuilds_a_year_exactly(owner_client, owner, evm_devnet, backfills_on,
                                                                    django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as sent:
        alice, wc = _first_read(owner, evm_devnet.scenario)
    backfill = Backfill.objects.get(wallet_chain=wc)
    assert backfill.status == Backfill.QUEUED and len(sent) >= 1  # its first step went to the "history" queue
    backfill = _run(backfill.pk)
    days = _history_days(evm_devnet.scenario)
    until = timezone.now().date() - timedelta(days=1)
    assert backfill.status == Backfill.DONE and backfill.days_done == backfill.days_total == 365
    assert backfill.complete_from.date() == until - timedelta(days=364) and backfill.reason == ""
    assert backfill.requests <= 2 * 365

    # Every day's stored amounts are the balances read at that day's block.
    assets = {p.asset_id: (p.asset.address or "native") for p in ValuePoint.objects.filter(wallet=alice, backfilled=True).select_related("asset")}
    tokens = sorted({a for a in assets.values() if a != "native"})
    stored: dict[datetime, dict[str, int]] = {}
    for p in ValuePoint.objects.filter(wallet=alice, backfilled=True):
        if p.amount:
            stored.setdefault(p.at, {})[assets[p.asset_id]] = p.amount
    with httpx.Client(timeout=30) as http:
        for day, block in days.items():
            if day <= until:
                assert stored.get(_day_end(day), {}) == _balances_at(http, evm_devnet.url, alice.address, tokens, block), day

    # A day's value is its amounts at that day's oracle prices (the native coin here).
    first = until - timedelta(days=364)
    native = ValuePoint.objects.get(wallet=alice, at=_day_end(first), asset__address="")
    assert native.price is not None and native.price < Decimal(evm_devnet.scenario["prices"]["native"])
    assert native.value == Decimal(native.amount) / 10**18 * native.price
    assert native.price_source.startswith("oracle:chainlink:")

    # Transfers: the scenario's token movements of Alice, one row each, the one to Bob among them.
    moves = [m for m in evm_devnet.scenario["history"]["transfers"] if alice.address in (m["from"], m["to"])]
    assert Transfer.objects.filter(wallet_chain=wc).count() == len(moves)
    bob = evm_devnet.wallet("Bob")["address"]
    assert Transfer.objects.filter(wallet_chain=wc, direction=Transfer.OUT, counterparty=bob).count() == 1

    # One series: value change = flow + market + opening between every two points, the account opened
    # once (on the backfill's first day), and the dashboard has a year of points.
    series = list(WalletValue.objects.filter(wallet=alice).order_by("at"))
    assert len(series) >= 366 and series[0].at == _day_end(first)
    assert series[0].opening_value == series[0].value and all(p.opening_value == 0 for p in series[1:])
    for before, after in zip(series, series[1:]):
        assert _close(after.value - before.value, after.flow_value + after.market_value + after.opening_value), after.at
    assert ScopeValue.objects.filter(owner=owner).values("at").distinct().count() >= 366

    page = owner_client.get(reverse("wallet_detail", args=[alice.pk]))
    assert "History: 365 of 365 days" in page.content.decode()


def test_running_a_backfill_again_changes_nothing(owner, evm_devnet, backfills_on):
    alice, wc = _first_read(owner, evm_devnet.scenario)
    _run(Backfill.objects.get(wallet_chain=wc).pk)
    before = _stored(alice)
    (again,) = start_backfills([wc.id], restart=True)
    assert Backfill.objects.get(pk=again).days_done == 0
    _run(again)
    assert _stored(alice) == before


def test_an_interrupted_backfill_resumes_where_it_stopped(owner_client, owner, evm_devnet, rpc_proxy, backfills_on):
    alice, wc = _first_read(owner, evm_devnet.scenario, rpc_proxy.url)
    backfill = Backfill.objects.get(wallet_chain=wc)
    do_backfill_step(backfill.pk)
    backfill.refresh_from_db()
    assert backfill.status == Backfill.RUNNING and backfill.days_done == 30
    assert "History: 30 of 365 days" in owner_client.get(reverse("wallet_detail", args=[alice.pk])).content.decode()
    rpc_proxy.fail_next = 10_000  # the node goes away mid-backfill
    with pytest.raises(ChainError):
        do_backfill_step(backfill.pk)
    assert Backfill.objects.get(pk=backfill.pk).days_done == 30
    rpc_proxy.fail_next = 0
    asked = rpc_proxy.requests
    backfill = _run(backfill.pk)
    assert backfill.status == Backfill.DONE and backfill.days_done == 365
    assert rpc_proxy.requests - asked <= 2 * 335  # the 30 days already stored are not read again
    interrupted = _stored(alice)
    (again,) = start_backfills([wc.id], restart=True)
    _run(again)
    assert _stored(alice) == interrupted  # the same as a run that was never interrupted


def test_an_endpoint_without_archive_state_gives_a_partial_history_from_a_known_day(owner_client, owner, evm_devnet, rpc_proxy, backfills_on):
    days = _history_days(evm_devnet.scenario)
    until = timezone.now().date() - timedelta(days=1)
    oldest_kept = until - timedelta(days=44)
    cutoff = days[oldest_kept]

    def pruned(payload):
        calls = payload if isinstance(payload, list) else [payload]
        if any(c.get("method") == "eth_call" and c["params"][1] != "latest" and int(c["params"][1], 16) < cutoff for c in calls):
            body = [{"jsonrpc": "2.0", "id": c["id"], "error": {"code": -32000, "message": "missing trie node 9f1c (path )"}} for c in calls]
            return 200, {"content-type": "application/json"}, json.dumps(body if isinstance(payload, list) else body[0]).encode()
        return None

    rpc_proxy.handler = pruned
    alice, wc = _first_read(owner, evm_devnet.scenario, rpc_proxy.url)
    backfill = _run(Backfill.objects.get(wallet_chain=wc).pk)
    assert backfill.status == Backfill.PARTIAL and backfill.days_done == 45
    assert backfill.complete_from.date() == oldest_kept and "archive" in backfill.reason
    assert WalletValue.objects.filter(wallet=alice, at__lt=_day_end(oldest_kept)).count() == 0
    page = owner_client.get(reverse("wallet_detail", args=[alice.pk])).content.decode()
    assert "History: 45 of 365 days" in page and f"complete from {oldest_kept.isoformat()}" in page


def test_live_snapshots_after_a_backfill_never_count_a_backfilled_day_twice(owner, evm_devnet, backfills_on):
    alice, wc = _first_read(owner, evm_devnet.scenario)
    live_at = WalletValue.objects.get(wallet=alice).at
    _run(Backfill.objects.get(wallet_chain=wc).pk)
    do_snapshot([alice.id], at=timezone.now() + timedelta(hours=1))
    series = list(WalletValue.objects.filter(wallet=alice).order_by("at"))
    assert all(p.at < live_at for p in series if ValuePoint.objects.filter(wallet=alice, at=p.at, backfilled=True).exists())
    assert sum(p.opening_value for p in series) == series[0].value  # opened once, on the first backfilled day
    assert sum(1 for p in series if p.at >= live_at) == 2
    for before, after in zip(series, series[1:]):
        assert _close(after.value - before.value, after.flow_value + after.market_value + after.opening_value), after.at


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(300)
def test_a_refresh_through_a_real_worker_backfills_on_the_history_queue(owner, evm_devnet, start_worker):
    from portfolio.sync.run import do_request_sync
    from tests.fixtures.celery import wait_for

    chain = seed_chain(evm_devnet.scenario)
    alice = add_scenario_wallets(owner, evm_devnet.scenario, chain)[0]
    worker = start_worker(concurrency=2, env={"BACKFILL_ENABLED": "1"})
    do_request_sync(owner, wallet=alice)

    def finished():
        backfill = Backfill.objects.filter(wallet_chain__wallet=alice).first()
        return backfill if backfill is not None and backfill.status in (Backfill.DONE, Backfill.PARTIAL, Backfill.FAILED) else None

    backfill = wait_for(finished, 240, "the backfill to finish", worker)
    assert backfill.status == Backfill.DONE and backfill.days_done == 365
    assert WalletValue.objects.filter(wallet=alice).count() >= 366  # a year of days and the live point(s)


def test_days_without_an_oracle_take_the_coingecko_daily_range_and_stay_unpriced_without_one(owner, evm_devnet, settings, backfills_on):
    from portfolio.models import Asset
    from tests.fakes.coingecko import FakeCoinGecko

    alice, wc = _first_read(owner, evm_devnet.scenario)
    disc = Asset.objects.get(chain=wc.chain, symbol="DISC")  # found by the log scan: no oracle
    disc.coingecko_id = "disc-coin"
    disc.save(update_fields=["coingecko_id"])
    until = timezone.now().date() - timedelta(days=1)
    priced_from = until - timedelta(days=99)  # the price API knows the last 100 days only
    chart = [(int(datetime.combine(priced_from + timedelta(days=i), dt_time.min, tzinfo=dt_timezone.utc).timestamp()) * 1000, f"{i + 1}.25")
             for i in range(100)]
    with FakeCoinGecko(charts={"disc-coin": chart}) as cg:
        settings.COINGECKO_API_URL = cg.url
        _run(Backfill.objects.get(wallet_chain=wc).pk)
        assert any(path.endswith("/coins/disc-coin/market_chart/range") for path, _q, _h in cg.requests)
    points = {p.at.date(): p for p in ValuePoint.objects.filter(wallet=alice, asset=disc, backfilled=True)}
    assert len(points) == 365
    assert points[priced_from].price == Decimal("1.25") and points[priced_from].price_source == "coingecko"
    assert points[until].price == Decimal("100.25") and points[until].value == Decimal(777) * Decimal("100.25")
    earlier = points[priced_from - timedelta(days=1)]
    assert earlier.price is None and earlier.value is None  # no price that day: unpriced, as today
    assert WalletValue.objects.get(wallet=alice, at=_day_end(priced_from - timedelta(days=1))).unpriced >= 1
