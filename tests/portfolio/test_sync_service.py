"""The sync service against the EVM devnet, in-process (no Celery): what a user would see stored."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from chains.base import ChainError
from portfolio.models import Asset, Holding, NftItem, PricePoint, SyncRun, SyncRunItem, WalletChain
from portfolio.sync import plan, schedule, spam
from portfolio.sync import run as sync_run
from tests.fixtures.celery import add_scenario_wallets, expected_state, seed_chain, stored_state

pytestmark = [pytest.mark.devnet, pytest.mark.django_db]


@pytest.fixture
def evm_wallets(owner, evm_devnet):
    chain = seed_chain(evm_devnet.scenario)
    return chain, add_scenario_wallets(owner, evm_devnet.scenario, chain)


def _wc(wallet):
    return WalletChain.objects.get(wallet=wallet)


def test_a_sync_stores_exactly_what_the_scenario_put_on_chain(evm_devnet, evm_wallets):
    chain, wallets = evm_wallets
    for wallet, expected in zip(wallets, evm_devnet.scenario["wallets"]):
        outcome = sync_run.do_sync_wallet_chain(_wc(wallet).id)
        assert outcome.status == SyncRun.OK
        assert stored_state(wallet) == expected_state(expected), wallet.label
        wc = _wc(wallet)
        assert wc.status == WalletChain.OK and wc.last_error == ""
        assert wc.height >= evm_devnet.scenario["height"]
        assert wc.endpoint.startswith("http://127.0.0.1:")
        assert wc.cursors  # the log-scan position is kept for the next sync
    assert all(h.read_height and h.read_at for h in Holding.objects.select_related("wallet_chain"))


def test_oracle_prices_read_during_the_sync_are_stored(evm_devnet, evm_wallets):
    _chain, wallets = evm_wallets
    sync_run.do_sync_wallet_chain(_wc(wallets[0]).id)
    demo = Asset.objects.get(symbol="DEMO")
    latest = PricePoint.objects.filter(asset=demo).first()
    assert latest is not None and str(latest.price).startswith("12.34")
    native = Asset.objects.get(chain__slug="anvil", address="")
    assert PricePoint.objects.filter(asset=native).first().price == 2500


def test_a_second_sync_replaces_the_first_without_duplicates(evm_wallets):
    _chain, wallets = evm_wallets
    alice = wallets[0]
    sync_run.do_sync_wallet_chain(_wc(alice).id)
    first = stored_state(alice)
    count = Holding.objects.count(), NftItem.objects.count()
    sync_run.do_sync_wallet_chain(_wc(alice).id)
    assert stored_state(alice) == first
    assert (Holding.objects.count(), NftItem.objects.count()) == count


def test_discovered_tokens_are_added_and_bait_tokens_marked_as_spam(evm_devnet, evm_wallets):
    _chain, wallets = evm_wallets
    sync_run.do_sync_wallet_chain(_wc(wallets[0]).id)
    disc = Asset.objects.get(symbol="DISC")
    claim = Asset.objects.get(symbol="CLAIM")
    assert not disc.listed and not disc.is_spam
    assert claim.is_spam and "web address" in claim.spam_reason


def test_a_failed_sync_keeps_the_last_good_holdings_and_a_redacted_error(evm_wallets):
    chain, wallets = evm_wallets
    alice = wallets[0]
    sync_run.do_sync_wallet_chain(_wc(alice).id)
    before = stored_state(alice)
    secret = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"
    chain.endpoints.update(url=f"http://127.0.0.1:9/v2/{secret}", timeout_s=1)
    with pytest.raises(ChainError):
        sync_run.do_sync_wallet_chain(_wc(alice).id)
    wc = _wc(alice)
    assert wc.status == WalletChain.FAILED
    assert wc.last_error and secret not in wc.last_error
    assert wc.last_ok_at is not None
    assert stored_state(alice) == before


def test_a_finished_run_item_is_not_synced_again(evm_wallets, owner):
    _chain, wallets = evm_wallets
    run = sync_run.do_request_sync(owner, wallet=wallets[0])
    assert not SyncRunItem.objects.filter(run=run).exists()  # the request only records the run
    jobs = sync_run.do_expand_run(run.id)  # what the worker's expand task does
    item = SyncRunItem.objects.get(run=run)
    assert [(j.wallet_chain_ids, j.run_id) for j in jobs] == [([item.wallet_chain_id], run.id)]
    sync_run.do_sync_wallet_chains([item.wallet_chain_id], run.id)
    item.refresh_from_db()
    run.refresh_from_db()
    assert item.status == SyncRun.OK and item.counts["balances"] >= 1
    assert run.status == SyncRun.OK and run.finished_at
    again = sync_run.do_sync_wallet_chain(item.wallet_chain_id, item.id)
    assert again.skipped
    item.refresh_from_db()
    assert item.attempts == 1


def test_many_wallets_of_one_chain_sync_in_one_fetch(evm_devnet, evm_wallets):
    _chain, wallets = evm_wallets
    outcomes = sync_run.do_sync_wallet_chains([_wc(w).id for w in wallets])
    assert {o.status for o in outcomes} == {SyncRun.OK}
    for wallet, expected in zip(wallets, evm_devnet.scenario["wallets"]):
        assert stored_state(wallet) == expected_state(expected)


def test_a_due_wallet_is_claimed_by_only_one_of_two_fanouts(evm_wallets):
    _chain, wallets = evm_wallets
    WalletChain.objects.update(next_due_at=timezone.now() - timedelta(seconds=1))
    first = plan.claim_due_wallet_chains()
    second = plan.claim_due_wallet_chains()
    assert len(first) == len(wallets) and second == []
    assert all(wc.next_due_at > timezone.now() for wc in WalletChain.objects.all())


@pytest.mark.parametrize(
    "symbol,name",
    [
        ("CLAIM", "Claim your reward"),
        ("USDC", "Visit usdc-bonus.com"),
        ("US\u200bDC", "USD Coin"),
        ("USDС", "USD Coin"),  # Cyrillic Es
        ("ETH", "www.free-eth.io"),
    ],
)
def test_bait_names_are_spam(symbol, name):
    assert spam.spam_reason(symbol, name)


@pytest.mark.parametrize("symbol,name", [("DISC", "Discovered Coin"), ("USDC", "USD Coin"), ("stETH", "Liquid staked Ether 2.0")])
def test_ordinary_names_are_not_spam(symbol, name):
    assert spam.spam_reason(symbol, name) == ""


def test_a_second_refresh_while_one_is_running_joins_it(evm_wallets, owner):
    _chain, wallets = evm_wallets
    first = sync_run.do_request_sync(owner, wallet=wallets[0])
    assert sync_run.do_request_sync(owner, wallet=wallets[0]) == first
    assert sync_run.do_request_sync(owner, wallet=wallets[1]) != first


def test_the_beat_schedule_exists_once_after_migrate():
    from django_celery_beat.models import PeriodicTask

    assert schedule.ensure_periodic_tasks() == 0  # post_migrate already created them
    tasks = dict(PeriodicTask.objects.values_list("task", "interval__every"))
    assert tasks["portfolio.tasks.fanout_due_task"] == 60
    assert {"portfolio.tasks.snapshot_task", "portfolio.tasks.downsample_task", "portfolio.tasks.refresh_prices_task",
            "portfolio.tasks.prune_runs_task"} <= set(tasks)


def test_a_token_that_cannot_be_read_keeps_its_last_known_amount(evm_devnet, evm_wallets):
    _chain, wallets = evm_wallets
    alice = wallets[0]
    sync_run.do_sync_wallet_chain(_wc(alice).id)
    broken = Asset.objects.get(symbol="BRKN")  # listed, but its balanceOf reverts
    Holding.objects.create(wallet_chain=_wc(alice), asset=broken, amount=5 * 10**18, height=1)
    sync_run.do_sync_wallet_chain(_wc(alice).id)
    kept = Holding.objects.get(wallet_chain=_wc(alice), asset=broken)
    assert kept.amount == 5 * 10**18 and kept.details.get("stale") is True and kept.height == 1
    assert any(p["code"] == "balance_call_failed" for p in _wc(alice).problems)


def _statements(fn) -> list[str]:
    from django.db import connection

    seen: list[str] = []

    def record(execute, sql, params, many, context):
        seen.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        fn()
    return seen


@pytest.mark.parametrize("items_first", [True, False], ids=["refresh-items-written-first", "scheduled-items-written-at-the-end"])
def test_a_group_sync_runs_as_many_statements_for_eight_wallets_as_for_two(evm_devnet, evm_wallets, owner, items_first):
    """A sync reads and writes its group set-wise: no statement per wallet (e.g. a field left out of
    what it loads, read back one row at a time), in the first sync or in the steady state, whether its
    run items were written before it (a Refresh) or are written by it (a scheduled run)."""
    from portfolio.models import Wallet

    chain, wallets = evm_wallets
    for i in range(8 - len(wallets)):  # addresses holding nothing on the devnet
        wallet = Wallet.objects.create(owner=owner, family="evm", address=f"0x{i + 1:040x}", label=f"empty {i}")
        WalletChain.objects.create(wallet=wallet, chain=chain)
    ids = list(WalletChain.objects.filter(chain=chain).order_by("id").values_list("id", flat=True))
    assert len(ids) == 8

    def sync(group):
        run = SyncRun.objects.create(trigger=SyncRun.SCHEDULE, status=SyncRun.QUEUED, planned=None if items_first else len(group))
        if items_first:
            plan.create_items(run, group)
        return _statements(lambda: sync_run.do_sync_wallet_chains(group, run.id))

    first_two, steady_two = sync(ids[:2]), sync(ids[:2])
    first_eight, steady_eight = sync(ids), sync(ids)  # six of them synced for the first time
    steady_again = sync(ids)
    assert {i.status for i in SyncRunItem.objects.all()} == {SyncRun.OK}
    assert len(steady_eight) == len(steady_two) == len(steady_again), (steady_two, steady_eight)
    assert len(first_eight) <= len(first_two) + 8  # the first read of each wallet starts its backfill (one row each)
