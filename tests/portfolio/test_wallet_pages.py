"""The wallet page and the lists of wallets and portfolios: values as on Holdings (exact on hover),
24h change, price age, positions with their health factor, freshness, explorer links and copy, the
used addresses of an extended key, NFTs, ENS; values, shares and freshness on the lists; a number of
queries that does not grow with the number of wallets, chains or holdings."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

import pytest
from django.urls import reverse
from django.utils import timezone

from portfolio.holdings import pair_values, scope_holdings
from portfolio.models import Asset, Chain, Holding, NftItem, Portfolio, Position, PositionLeg, PricePoint, Wallet, WalletChain
from portfolio.services.wallets import do_add_wallet
from tests.portfolio.test_pages import hold, make_wallet
from tests.portfolio.test_pages_at_scale import build, queries_of
from tests.portfolio.test_wallets import EIP55, XPUB

pytestmark = pytest.mark.django_db


@pytest.fixture
def evm_wallet(owner):
    wallet = do_add_wallet(owner, "evm", EIP55, label="Main")
    Wallet.objects.filter(pk=wallet.pk).update(primary_name="alice.eth")
    eth = Chain.objects.get(slug="ethereum")
    wc = WalletChain.objects.get(wallet=wallet, chain=eth)
    WalletChain.objects.filter(pk=wc.pk).update(status=WalletChain.OK, last_ok_at=timezone.now() - timedelta(minutes=4), height=21_000_000)
    native = Asset.objects.get(chain=eth, address="")
    usdc = Asset.objects.create(chain=eth, kind="fungible", standard="erc20", address="0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48",
                                symbol="USDC", name="USD Coin", decimals=6)
    hold(wc, native, 1_500_000_000_000_000_123)
    hold(wc, usdc, 250_000_000)
    PricePoint.objects.create(asset=native, price=D(1900), source="coingecko", at=timezone.now() - timedelta(hours=24, minutes=5))
    PricePoint.objects.create(asset=native, price=D(2000), source="coingecko", at=timezone.now() - timedelta(minutes=3))
    PricePoint.objects.create(asset=usdc, price=D(1), source="oracle:chainlink:0x" + "66" * 20, at=timezone.now() - timedelta(seconds=5))
    position = Position.objects.create(wallet_chain=wc, protocol="aave-v3", kind="lending", ref="0xpool", label="Aave v3",
                                       health_factor=D("1.42"))
    PositionLeg.objects.create(position=position, asset=usdc, amount=100_000_000, role="supplied")
    PositionLeg.objects.create(position=position, asset=native, amount=10**16, role="borrowed")
    punks = Asset.objects.create(chain=eth, kind=Asset.NFT_COLLECTION, standard="erc721", address="0x" + "77" * 20, symbol="PNK", name="Punks")
    NftItem.objects.create(wallet_chain=wc, collection=punks, token_id="42", name="Punk #42")
    return wallet


def test_the_wallet_page_shows_value_change_and_each_holding_valued(owner_client, evm_wallet):
    page = owner_client.get(reverse("wallet_detail", args=[evm_wallet.pk])).content.decode()
    # 1.5 ETH x 2000 + 250 USDC = 3250; the position: 100 USDC - 0.01 ETH x 2000 = 80. Net 3330.
    assert 'data-testid="wallet-value">$3,330.00' in page
    assert ">$3,000.00<" in page and ">$250.00<" in page
    assert 'title="1.500000000000000123 ETH"' in page and ">1.5<" in page  # 8 places shown, exact on hover
    # 24h: ETH 1900 -> 2000 on 1.5 ETH = +150 (USDC has no price 24 h ago: left out, said on hover).
    assert "+$150.00" in page and "+5.26%" in page and "1 asset without a price 24 hours ago" in page
    assert "coingecko, <time" in page and "3 min ago" in page and "oracle, <time" in page and "just now" in page


def test_the_wallet_page_shows_positions_nfts_freshness_links_and_ens(owner_client, evm_wallet):
    page = owner_client.get(reverse("wallet_detail", args=[evm_wallet.pk])).content.decode()
    assert "Aave v3" in page and 'data-testid="health-factor"><span class="badge-warn">1.42</span>' in page
    assert "Punk #42" in page
    assert "read <time" in page and "4 min ago" in page and "block 21,000,000" in page
    assert f'href="https://etherscan.io/address/{EIP55}"' in page
    assert f'data-copy="{EIP55}"' in page and "/static/js/copy.js" in page
    assert "alice.eth" in page


def test_an_extended_key_lists_its_used_addresses_with_balances(owner, owner_client):
    wallet = do_add_wallet(owner, "bitcoin", XPUB, label="Cold")
    wc = wallet.wallet_chains.select_related("chain").first()
    WalletChain.objects.filter(pk=wc.pk).update(status=WalletChain.OK, last_ok_at=timezone.now(), height=800_000)
    btc = Asset.objects.get(chain=wc.chain, address="")
    PricePoint.objects.create(asset=btc, price=D(50_000), source="manual")
    addresses = {
        "1LqBGSKuX5yYUonjxT5qGfpUsXKYYWeabA": {"path": "0/0", "confirmed": 10_000_000, "unconfirmed": 0, "utxo_count": 1},
        "1J3J6EvPrv8m6DsSBpV36wsFKjXbvSs5C2": {"path": "1/3", "confirmed": 5_000_000, "unconfirmed": 2_500, "utxo_count": 2},
    }
    Holding.objects.create(wallet_chain=wc, asset=btc, amount=15_000_000, unconfirmed=2_500,
                           details={"script_type": "p2pkh", "addresses": addresses})
    page = owner_client.get(reverse("wallet_detail", args=[wallet.pk])).content.decode()
    assert XPUB in page and f'data-copy="{XPUB}"' in page
    assert "Used addresses of this key (2)" in page
    assert "1LqBGSKuX5yYUonjxT5qGfpUsXKYYWeabA" in page and ">0.1<" in page and ">$5,000.00<" in page
    assert "1/3" in page and "0.000025 pending" in page and ">$2,500.00<" in page  # pending in no value
    assert 'data-testid="wallet-value">$7,500.00' in page  # 0.15 BTC x 50,000 (pending not counted)


def test_the_lists_show_value_share_and_freshness(owner, owner_client, evm_wallet):
    other, wc = make_wallet(owner, label="Side", address="0x" + "cd" * 20)
    usdc = Asset.objects.get(symbol="USDC")
    hold(wc, usdc, 1_000_000_000)  # 1000 USDC
    WalletChain.objects.filter(pk=wc.pk).update(status=WalletChain.FAILED)
    portfolio = Portfolio.objects.create(owner=owner, name="Everything")
    portfolio.wallets.set([evm_wallet, other])
    page = owner_client.get(reverse("wallets")).content.decode()
    # The lists' total is the net worth of Holdings, to the last digit (123 wei x 2000 included).
    assert pair_values(owner, "USD").total == scope_holdings(owner, [evm_wallet.pk, other.pk], "USD").net_worth == D("4330.000000000000246")
    assert ">$3,330.00<" in page and ">$1,000.00<" in page and "$4,330.00" in page
    assert "76.91%" in page and "23.09%" in page  # 3330 / 4330, 1000 / 4330
    assert "1 failed" in page and "4 min ago" in page
    page = owner_client.get(reverse("portfolios")).content.decode()
    assert 'data-testid="portfolio-value">$4,330.00' in page and "100.00%" in page


@pytest.fixture
def small_and_large(owner, outsider):
    build(owner, wallets=2, assets=2, base=1, failed=1)
    build(outsider, wallets=12, assets=30, base=2, failed=3)
    for user in (owner, outsider):
        wallets = list(Wallet.objects.filter(owner=user))
        for n in range(1 if user == owner else 6):
            Portfolio.objects.create(owner=user, name=f"p{n}").wallets.set(wallets[n:])


@pytest.mark.parametrize("url", [reverse("wallets"), reverse("portfolios")])
def test_the_lists_run_as_many_queries_for_many_wallets_as_for_few(owner_client, outsider_client, small_and_large, url):
    assert queries_of(owner_client, url)[0] == queries_of(outsider_client, url)[0]


def test_the_wallet_page_runs_as_many_queries_for_many_holdings_as_for_few(owner, outsider, owner_client, outsider_client, small_and_large):
    mine = Wallet.objects.filter(owner=owner).order_by("pk").first()
    theirs = Wallet.objects.filter(owner=outsider).order_by("pk").first()
    few = queries_of(owner_client, reverse("wallet_detail", args=[mine.pk]))[0]
    many = queries_of(outsider_client, reverse("wallet_detail", args=[theirs.pk]))[0]
    assert few == many


def test_another_users_wallet_page_is_a_404(outsider_client, evm_wallet):
    assert outsider_client.get(reverse("wallet_detail", args=[evm_wallet.pk])).status_code == 404


def test_a_portfolio_page_shows_its_value_and_each_wallets_share(owner, owner_client, evm_wallet):
    other, wc = make_wallet(owner, label="Side", address="0x" + "cd" * 20)
    hold(wc, Asset.objects.get(symbol="USDC"), 670_000_000)  # 670 USDC
    portfolio = Portfolio.objects.create(owner=owner, name="Both")
    portfolio.wallets.set([evm_wallet, other])
    page = owner_client.get(reverse("portfolio_detail", args=[portfolio.pk])).content.decode()
    assert 'data-testid="portfolio-value">$4,000.00' in page  # 3330 + 670
    assert "83.25%" in page and "16.75%" in page
