"""Demo-like data written straight to the database for the layout and accessibility tests: wallets of every
family (an xpub among them), many assets on several chains, NFTs, positions, a portfolio, a history, a failed
chain with its error and a finished refresh. The devnet + worker flow is covered by test_sync_flow_e2e."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.utils import timezone

from portfolio.models import (
    Asset,
    Chain,
    NftItem,
    Portfolio,
    Position,
    PositionLeg,
    RpcEndpoint,
    SyncRun,
    SyncRunItem,
    WalletChain,
)
from portfolio.services.snapshots import do_snapshot
from tests.fixtures.users import PASSWORD
from tests.portfolio.test_pages import XSS, hold, make_wallet

XPUB = "vpub5Y6cjg78GGuNLsaPhmYsiw4gYX3HoQiRBiSwDaBXKUafCt9bNwWQiitDk5VZ5BVxYnQdwoTyXSs2JHRPAgjAvtbBrf8ZhDYe2jWAqvZVnsc"


def build_demo_world() -> dict:
    from portfolio.seed import seed_chains

    if not Chain.objects.exists():  # a transactional test's flush removes the migration's seed
        seed_chains(Chain, RpcEndpoint, Asset)
    Chain.objects.filter(slug__in=["ethereum", "base", "bitcoin-regtest", "solana"]).update(enabled=True)
    user = get_user_model().objects.create_user("alice", "alice@example.com", PASSWORD, is_staff=True, is_superuser=True)
    eth = Chain.objects.get(slug="ethereum")
    base = Chain.objects.get(slug="base")

    hot, wc = make_wallet(user, label="Hot wallet", chain_slug="ethereum")
    wc_base = WalletChain.objects.create(wallet=hot, chain=base, status=WalletChain.FAILED, last_ok_at=timezone.now() - timedelta(hours=3),
                                         height=99_000_123, last_error="The endpoint did not answer in 10 s (timeout).")
    native, _ = Asset.objects.update_or_create(chain=eth, address="", defaults={"kind": Asset.NATIVE, "symbol": "ETH", "name": "Ether", "decimals": 18})
    base_native, _ = Asset.objects.update_or_create(chain=base, address="", defaults={"kind": Asset.NATIVE, "symbol": "ETH", "name": "Ether", "decimals": 18})
    hold(wc, native, 3_250_000_000_000_000_000, price="2000")
    hold(wc_base, base_native, 420_000_000_000_000_000, price="2000")
    tokens = [("USDC", "USD Coin", 6, 1_250_500_000, "1"), ("DAI", "Dai Stablecoin", 18, 3 * 10**15, "1"),
              ("WBTC", "Wrapped Bitcoin", 8, 12_345_678, "60000"), ("LINK", "Chainlink Token", 18, 150 * 10**18, "14.2"),
              ("UNI", "Uniswap", 18, 75 * 10**18, "7.5"), ("AAVE", "Aave Token", 18, 4 * 10**18, "95"),
              ("LDO", "Lido DAO Token", 18, 900 * 10**18, "1.9"), ("MKR", "Maker", 18, 10**17, "1500"),
              ("CRV", "Curve DAO Token", 18, 2222 * 10**18, "0.45"), ("SUPERLONGTOKENSYMBOL", "A token with a very long name that goes on and on", 18, 10**22, "0.0001")]
    for i, (symbol, name, decimals, amount, price) in enumerate(tokens):
        asset = Asset.objects.create(chain=eth, kind=Asset.FUNGIBLE, address="0x" + f"{i + 16:02x}" * 20, symbol=symbol, name=name, decimals=decimals, standard="erc20")
        hold(wc, asset, amount, price=price)
    evil = Asset.objects.create(chain=eth, kind=Asset.FUNGIBLE, address="0x" + "aa" * 20, symbol="EVIL", name=XSS, decimals=0, standard="erc20")
    hold(wc, evil, 5)
    spam = Asset.objects.create(chain=eth, kind=Asset.FUNGIBLE, address="0x" + "33" * 20, symbol="FREE", name="Visit scam.example", decimals=0, is_spam=True)
    hold(wc, spam, 1000)

    btc_chain = Chain.objects.get(slug="bitcoin-regtest")
    cold, wc_btc = make_wallet(user, label="", chain_slug="bitcoin-regtest", address=XPUB)
    cold.kind, cold.script_type = "extended_key", "p2wpkh"
    cold.save()
    btc = Asset.objects.filter(chain=btc_chain, address="").first()
    hold(wc_btc, btc, 123_456_789, price="60000")

    sol_chain = Chain.objects.get(slug="solana")
    staker, wc_sol = make_wallet(user, label="Staking", chain_slug="solana", address="7" + "x" * 43)
    sol = Asset.objects.filter(chain=sol_chain, address="").first()
    hold(wc_sol, sol, 42 * 10**9, price="150")
    stake = Position.objects.create(wallet_chain=wc_sol, protocol="solana-stake", kind="staking", ref="Stake" + "1" * 39,
                                    label="Stake account Stake111…1111", height=wc_sol.height, fetched_at=timezone.now())
    PositionLeg.objects.create(position=stake, asset=sol, amount=25 * 10**9, role=PositionLeg.STAKED)
    PositionLeg.objects.create(position=stake, asset=sol, amount=2_282_880, role=PositionLeg.REWARD)
    usdc = Asset.objects.get(chain=eth, symbol="USDC")
    lending = Position.objects.create(wallet_chain=wc, protocol="aave_v3", kind="lending", ref="0xpool", label="Aave V3 Pool",
                                      height=wc.height, fetched_at=timezone.now(), health_factor=Decimal("1.83"))
    PositionLeg.objects.create(position=lending, asset=native, amount=10**18, role=PositionLeg.SUPPLIED)
    PositionLeg.objects.create(position=lending, asset=usdc, amount=400 * 10**6, role=PositionLeg.BORROWED)

    coll = Asset.objects.create(chain=eth, kind=Asset.NFT_COLLECTION, address="0x" + "44" * 20, symbol="APE", name="Apes", standard="erc721")
    NftItem.objects.create(wallet_chain=wc, collection=coll, token_id="1", name=XSS, image_url="data:image/svg+xml;base64,PHN2Zz4=")
    NftItem.objects.create(wallet_chain=wc, collection=coll, token_id="2" * 40, name="Ape with a token id longer than any screen")

    long_term = Portfolio.objects.create(owner=user, name="Long term")
    long_term.wallets.set([cold, staker])

    # A history: snapshots a day and an hour ago and now, so the chart and the change have points.
    now = timezone.now()
    for hours in (48, 24, 1):
        do_snapshot(at=now - timedelta(hours=hours))
    do_snapshot(at=now)

    run = SyncRun.objects.create(owner=user, status=SyncRun.PARTIAL, started_at=now, finished_at=now, error="1 of 4 chains failed")
    for item_wc, status in ((wc, SyncRun.OK), (wc_base, SyncRun.FAILED), (wc_btc, SyncRun.OK), (wc_sol, SyncRun.OK)):
        SyncRunItem.objects.create(run=run, wallet_chain=item_wc, status=status, attempts=1, finished_at=now, height=item_wc.height,
                                   endpoint="https://mainnet.base.org/v2/***" if status == SyncRun.OK else "",
                                   error="" if status == SyncRun.OK else item_wc.last_error)
    return {"user": user, "hot": hot, "cold": cold, "staker": staker, "portfolio": long_term, "run": run,
            "assets": {"usdc": usdc, "native": native}}
