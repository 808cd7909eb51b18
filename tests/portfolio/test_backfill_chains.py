"""Bitcoin (an extended key) and Solana wallets backfilled through the framework against the session
devnets' year of history, 400 days deep, in-process (steps called as the task would): every backfilled
day equals the scenario's own ledger, the transfers reconcile with the balance change, the wallet and
activity pages show them, and a re-run changes nothing; and the rule for the days a history page
leaves out."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time as dt_time, timedelta, timezone as dt_timezone

import pytest
from django.urls import reverse
from django.utils import timezone

from chains.history import daily_from_changes, days, utc_day
from portfolio.history.start import start_backfills
from portfolio.models import Asset, Backfill, NftItem, Transfer, ValuePoint, WalletChain, WalletValue
from portfolio.services.snapshots import do_snapshot
from portfolio.sync import run as sync_run
from tests.fixtures.celery import add_scenario_wallets, seed_chain
from tests.portfolio.test_backfill import _run, _stored

pytestmark = [pytest.mark.devnet, pytest.mark.django_db]


DEPTH = 400  # longer than the devnets' year: the days before the first transaction are zero, not gaps


@pytest.fixture
def backfills_on(settings):
    settings.BACKFILL_ENABLED = True
    settings.BACKFILL_DEPTH_DAYS = DEPTH


def _first_read(owner, scenario, url, label):
    """The scenario's wallet ``label`` synced for the first time today and snapshotted: a backfill is due."""
    chain = seed_chain(scenario, url)
    wallets = add_scenario_wallets(owner, {**scenario, "wallets": [w for w in scenario["wallets"] if w["label"] == label]}, chain)
    wc = WalletChain.objects.get(wallet=wallets[0])
    sync_run.do_sync_wallet_chain(wc.id)
    do_snapshot([wallets[0].id])
    return wallets[0], WalletChain.objects.get(pk=wc.pk)


def _day_end(day: date) -> datetime:
    return datetime.combine(day, dt_time(23, 59, 59), tzinfo=dt_timezone.utc)


def _backfilled(wallet, wc) -> dict[date, dict[str, int]]:
    """The stored day-end amounts by asset address ("native" for the coin), zero left out."""
    out: dict[date, dict[str, int]] = defaultdict(dict)
    for at, address, amount in ValuePoint.objects.filter(wallet=wallet, chain=wc.chain, backfilled=True).values_list(
            "at", "asset__address", "amount"):
        if amount:
            out[at.date()][address or "native"] = amount
    return out


def _check_backfill(owner_client, wallet, wc, changes, collection_of=lambda key: key):
    """Run the wallet's backfill and compare what a user sees with the ledger ``[(time, key, delta)]``."""
    backfill = _run(Backfill.objects.get(wallet_chain=wc).pk)
    until = timezone.now().date() - timedelta(days=1)
    since = until - timedelta(days=DEPTH - 1)
    assert backfill.status == Backfill.DONE and backfill.days_done == backfill.days_total == DEPTH, backfill.reason
    assert backfill.complete_from.date() == since

    # Every day of the year: the amounts the ledger gives (zero before the first transaction).
    ledger = daily_from_changes(((t, {collection_of(k): d}) for t, k, d in changes), since, until)
    stored = _backfilled(wallet, wc)
    for day in days(since, until):
        assert stored.get(day, {}) == ledger[day], day
    assert len({tuple(sorted(v.items())) for v in ledger.values()}) > 3  # the year really moved
    assert not ledger[since] and utc_day(min(t for t, _, _ in changes)) > since
    assert WalletValue.objects.filter(wallet=wallet, at__lte=_day_end(until)).count() >= len({d for d in ledger if ledger[d]})

    # The transfers of the year add up to the balance change: in - out - fees, per asset.
    moved: dict[str, int] = defaultdict(int)
    for t in Transfer.objects.filter(wallet_chain=wc).select_related("asset"):
        moved[t.asset.address or "native"] += t.amount if t.direction == Transfer.IN else -t.amount
        moved["native"] -= t.fee
    before = {k: v for k, v in daily_from_changes(((t, {collection_of(k): d}) for t, k, d in changes), since - timedelta(days=1),
                                                  since - timedelta(days=1))[since - timedelta(days=1)].items()}
    change = {k: ledger[until].get(k, 0) - before.get(k, 0) for k in set(ledger[until]) | set(before)}
    assert {k: v for k, v in moved.items() if v} == {k: v for k, v in change.items() if v}
    assert Transfer.objects.filter(wallet_chain=wc).count() >= 3

    page = owner_client.get(reverse("wallet_detail", args=[wallet.pk])).content.decode()
    assert f"History: {DEPTH} of {DEPTH} days" in page
    activity = owner_client.get("/activity/", {"wallet": wallet.pk}).content.decode()
    latest = Transfer.objects.filter(wallet_chain=wc).order_by("-at").first()
    assert activity.count('data-testid="activity-row"') >= min(3, Transfer.objects.filter(wallet_chain=wc).count())
    assert latest.tx[:8] in activity
    return backfill


def test_an_extended_key_backfills_a_year_equal_to_the_ledger(owner_client, owner, bitcoin_devnet, backfills_on):
    vpub = bitcoin_devnet.wallet("Demo BIP-84 account (vpub)")
    wallet, wc = _first_read(owner, bitcoin_devnet.scenario, bitcoin_devnet.url, vpub["label"])
    _check_backfill(owner_client, wallet, wc, [(t, "native", d) for t, d in vpub["ledger"]])

    before = _stored(wallet)
    (again,) = start_backfills([wc.id], restart=True)
    _run(again)
    assert _stored(wallet) == before


def test_a_solana_wallet_backfills_a_year_equal_to_the_ledger_with_nfts_under_their_collection(owner_client, owner, solana_devnet,
                                                                                             backfills_on):
    scenario = {**solana_devnet.scenario, "family": "solana"}
    w = max(scenario["wallets"], key=lambda w: len(w["ledger"]))
    wallet, wc = _first_read(owner, scenario, solana_devnet.url, w["label"])
    nfts = dict(NftItem.objects.filter(wallet_chain=wc).values_list("token_id", "collection__address"))
    assert nfts  # the wallet holds NFTs today, and minted them within the year
    _check_backfill(owner_client, wallet, wc, w["ledger"], lambda key: nfts.get(key, key))
    # No NFT mint became a fungible asset of the wallet: a held one counts under its collection.
    assert not ValuePoint.objects.filter(wallet=wallet, asset__address__in=list(nfts)).exists()
    assert not Asset.objects.filter(chain=wc.chain, address__in=list(nfts), kind=Asset.FUNGIBLE).exists()

    before = _stored(wallet)
    (again,) = start_backfills([wc.id], restart=True)
    _run(again)
    assert _stored(wallet) == before


def test_days_a_history_leaves_out_are_zero_before_its_first_day_and_carried_after_it(owner):
    """The rule of ``HistoryPage`` for days no page listed, on stored points (no chain needed)."""
    from portfolio.history.backfill import _fill_days, day_end
    from portfolio.models import Chain, Wallet

    chain = Chain.objects.get(slug="ethereum")
    eth = Asset.objects.get(chain=chain, address="")
    wc = WalletChain.objects.create(wallet=Wallet.objects.create(owner=owner, family="evm", address="0x" + "01" * 20), chain=chain)
    d = [date(2026, 3, 1) + timedelta(days=i) for i in range(7)]
    for day, amount in ((d[2], 5), (d[4], 7)):
        ValuePoint.objects.create(wallet=wc.wallet, chain=chain, asset=eth, at=day_end(day), resolution=ValuePoint.DAILY, amount=amount,
                                  backfilled=True)
    filled = _fill_days(wc, d[0], d[6], [d[2].isoformat(), d[4].isoformat()], complete_from=d[1])
    assert sorted(filled) == [d[1], d[3], d[5], d[6]]  # d[0] lies before the complete history: a gap, not a zero
    stored = {p.at.date(): p.amount for p in ValuePoint.objects.filter(wallet=wc.wallet, backfilled=True)}
    assert stored == {d[2]: 5, d[3]: 5, d[4]: 7, d[5]: 7, d[6]: 7}  # d[1] is zero: nothing stored
