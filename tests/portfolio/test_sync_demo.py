"""`manage.py demo`: the local chains from var/devnet.json, the demo user and wallets, a first sync."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from portfolio.models import Asset, Chain, Portfolio, PricePoint, SyncRun, Wallet, WalletChain
from portfolio.sync.run import do_expand_run

pytestmark = [pytest.mark.devnet, pytest.mark.django_db]


@pytest.fixture
def devnet_state(tmp_path, settings, evm_devnet, bitcoin_devnet, solana_devnet):
    path = tmp_path / "devnet.json"
    path.write_text(json.dumps({"evm": evm_devnet.scenario, "bitcoin": bitcoin_devnet.scenario,
                                "solana": solana_devnet.scenario, "errors": {}}))
    settings.DEVNET_STATE_FILE = path
    settings.VAR_DIR = tmp_path
    return {"evm": evm_devnet.scenario, "bitcoin": bitcoin_devnet.scenario, "solana": solana_devnet.scenario}


def demo_wallets(scenario: dict) -> list[dict]:
    """The scenario's wallets the demo adds: its own and its DeFi ones."""
    return scenario["wallets"] + (scenario.get("defi") or {}).get("wallets", [])


def _demo() -> str:
    out = StringIO()
    call_command("demo", stdout=out, stderr=StringIO())
    return out.getvalue()


def test_demo_sets_up_local_chains_user_wallets_and_a_first_sync(devnet_state):
    output = _demo()
    for scenario in devnet_state.values():
        chain = Chain.objects.get(slug=scenario["chain"]["slug"])
        assert chain.enabled
        assert list(chain.endpoints.values_list("url", flat=True)) == [scenario["url"]]
    assert not Chain.objects.filter(network="mainnet", enabled=True).exists()
    assert "disabled the mainnet chains" in output

    user = get_user_model().objects.get(username="demo")
    password = re.search(r"password '([^']+)'", output).group(1)
    assert user.check_password(password)
    wallets = Wallet.objects.filter(owner=user)
    assert wallets.count() == sum(len(demo_wallets(s)) for s in devnet_state.values())
    assert set(Portfolio.objects.get(owner=user, name="Demo").wallets.all()) == set(wallets)
    # The devnet's ENS names are read at once, so the demo shows them next to the addresses.
    assert dict(wallets.exclude(primary_name="").values_list("address", "primary_name")) == {
        a: n for a, n in devnet_state["evm"]["ens"]["primary_names"].items() if n}
    # Only the devnet chains: the EVM addresses are not tracked on the (disabled) mainnets.
    assert set(WalletChain.objects.filter(wallet__owner=user).values_list("chain__network", flat=True)) <= {"devnet", "regtest"}

    demo_token = next(a for a in devnet_state["evm"]["assets"] if a["symbol"] == "DEMO")
    asset = Asset.objects.get(address=demo_token["address"])
    assert asset.listed and asset.oracle_address == demo_token["oracle"]
    run = SyncRun.objects.get(owner=user)
    do_expand_run(run.pk)  # what the worker does with the demo's first refresh
    assert run.items.count() == WalletChain.objects.filter(wallet__owner=user).count()
    assert "http://127.0.0.1:" in output
    # The chains without an oracle get an admin-style manual price, so the demo shows values.
    btc = Asset.objects.get(chain__slug="bitcoin-regtest", address="")
    # Today's manual price, and the day before's (so the demo's 24h change has something to compare).
    assert list(PricePoint.objects.filter(asset=btc).values_list("source", "price")) == [("manual", Decimal("60000")),
                                                                                         ("manual", Decimal("57600"))]


def test_demo_can_run_again_without_duplicates(devnet_state):
    first = _demo()
    second = _demo()
    user = get_user_model().objects.get(username="demo")
    assert Wallet.objects.filter(owner=user).count() == sum(len(demo_wallets(s)) for s in devnet_state.values())
    assert re.search(r"password '([^']+)'", first).group(1) == re.search(r"password '([^']+)'", second).group(1)
    assert get_user_model().objects.filter(username="demo").count() == 1
    assert PricePoint.objects.filter(asset__chain__slug="solana-local", asset__address="", source="manual").count() == 2


def test_demo_without_chains_says_how_to_start_them(tmp_path, settings):
    settings.DEVNET_STATE_FILE = tmp_path / "missing.json"
    with pytest.raises(CommandError, match="devnet"):
        call_command("demo", stdout=StringIO())


def test_the_demos_two_wallets_of_one_bitcoin_account_count_once(devnet_state):
    from portfolio import queries
    from portfolio.sync.run import do_sync_wallet_chains

    _demo()
    user = get_user_model().objects.get(username="demo")
    run = SyncRun.objects.get(owner=user)
    for job in do_expand_run(run.pk):  # as the workers would, in-process
        do_sync_wallet_chains(job.wallet_chain_ids, run.pk)
    run.refresh_from_db()
    assert run.status == SyncRun.OK  # closing the run took the snapshot
    wallets = devnet_state["bitcoin"]["wallets"]
    duplicate = next(w for w in wallets if w["label"].startswith("Same account as tpub"))
    sats = sum(int(w["balances"]["native"]) for w in wallets if w is not duplicate)
    summary = queries.dashboard_summary(user, queries.scope_wallet_ids(user), "USD", "all")
    btc = next(s for s in summary.allocation["chain"] if s.key == Chain.objects.get(slug="bitcoin-regtest").pk)
    assert btc.value == Decimal(sats) / 10**8 * 60000  # the vpub and the same key as tpub: one account
