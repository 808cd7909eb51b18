"""DeFi positions through the whole pipeline: the sync stores them with their legs and health factor,
the tokens they account for are not holdings too, net worth counts them once, and a loan near
liquidation raises the owner's alert."""

from __future__ import annotations

from decimal import Decimal

import pytest

from portfolio import queries
from portfolio.models import HealthAlert, Holding, NftItem, Position, WalletChain
from portfolio.services.snapshots import do_snapshot
from portfolio.sync.run import do_sync_wallet_chains
from tests.fixtures.celery import add_scenario_wallets, seed_chain

pytestmark = [pytest.mark.devnet, pytest.mark.django_db]


@pytest.fixture
def defi_wallets(owner, evm_devnet):
    chain = seed_chain(evm_devnet.scenario)
    scenario = {**evm_devnet.scenario, "wallets": evm_devnet.scenario["defi"]["wallets"]}
    wallets = add_scenario_wallets(owner, scenario, chain)
    do_sync_wallet_chains([wc.pk for wc in WalletChain.objects.filter(wallet__in=wallets)])
    return wallets


def test_a_sync_stores_every_protocols_positions_with_legs_and_health_factor(defi_wallets):
    carol, dave = defi_wallets
    protocols = set(Position.objects.filter(wallet_chain__wallet=carol).values_list("protocol", flat=True))
    assert protocols == {"uniswap_v2", "uniswap_v3", "aave_v3", "erc4626", "liquid_staking"}
    aave = Position.objects.get(wallet_chain__wallet=dave, protocol="aave_v3")
    assert Decimal(1) < aave.health_factor < Decimal("1.1")
    assert set(aave.legs.values_list("role", flat=True)) == {"supplied", "borrowed"}
    # A position's own tokens (LP, aToken, debt token, vault share, LST, V3 NFT) are not holdings too.
    position_tokens = {leg.asset_id for p in Position.objects.all() for leg in p.legs.all()}
    lp_like = Holding.objects.filter(wallet_chain__wallet=carol, asset__symbol__in=["UNI-V2", "aWETHx", "aUSDCx"])
    assert not lp_like.exists() and position_tokens
    assert not NftItem.objects.filter(collection__symbol="UNI-V3-POS").exists()


def test_a_loan_near_liquidation_raises_the_owners_alert(defi_wallets):
    carol, dave = defi_wallets
    alert = HealthAlert.objects.get(cleared_at__isnull=True)
    assert alert.wallet_chain.wallet == dave and alert.protocol == "aave_v3" and alert.threshold == Decimal("1.20")


def test_net_worth_is_holdings_outside_positions_plus_positions_net(owner, defi_wallets):
    do_snapshot(None)
    ids = queries.scope_wallet_ids(owner)
    summary = queries.dashboard_summary(owner, ids, "USD", "all")
    holdings = sum((r.value for r in queries.holdings_rows(owner, ids, "USD") if r.value is not None), Decimal(0))
    positions = queries.positions(owner, ids, "USD")
    assert positions and all(p.unpriced_legs == 0 for p in positions if p.protocol == "aave_v3")
    net = sum((p.value for p in positions if p.value is not None), Decimal(0))
    assert summary.net_worth == holdings + net
    kinds = {s.key: s.value for s in summary.allocation["kind"]}
    assert kinds["defi"] == net and "DeFi and staking" in [s.label for s in summary.allocation["kind"]]
    # An Aave debt leg counts negative.
    dave_loan = next(p for p in positions if p.protocol == "aave_v3" and p.wallet == defi_wallets[1])
    assert dave_loan.borrowed and all(leg.value < 0 for leg in dave_loan.borrowed)
    assert dave_loan.value < sum(leg.value for leg in dave_loan.supplied)
