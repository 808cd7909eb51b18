"""The pages a user reads (dashboard, holdings + CSV, NFTs, positions, settings) without a browser: each loads
for its owner, hides other users' data, teaches when empty, and serves a partial to htmx."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from portfolio.models import Asset, Chain, Holding, NftItem, Portfolio, PricePoint, Wallet, WalletChain

XSS = "<img src=x onerror=alert(1)>"


def make_wallet(owner, *, label="Main", chain_slug=None, address="0x" + "ab" * 20):
    chain = Chain.objects.get(slug=chain_slug) if chain_slug else Chain.objects.filter(family="evm").first()
    wallet = Wallet.objects.create(owner=owner, family=chain.family, address=address, label=label)
    wc = WalletChain.objects.create(wallet=wallet, chain=chain, status=WalletChain.OK, last_ok_at=timezone.now(), height=1234567)
    return wallet, wc


def hold(wc, asset, amount, *, price=None, height=1234567):
    Holding.objects.create(wallet_chain=wc, asset=asset, amount=amount, height=height, fetched_at=timezone.now())
    if price is not None:
        PricePoint.objects.create(asset=asset, price=Decimal(price), currency="USD", source="manual")


@pytest.fixture
def holdings_world(owner):
    wallet, wc = make_wallet(owner)
    chain = wc.chain
    native, _ = Asset.objects.update_or_create(
        chain=chain, address="", defaults={"kind": Asset.NATIVE, "symbol": "ETH", "name": "Ether", "decimals": 18}
    )
    usdc = Asset.objects.create(chain=chain, kind=Asset.FUNGIBLE, address="0x" + "11" * 20, symbol="USDC", name="USD Coin", decimals=6, standard="erc20")
    evil = Asset.objects.create(chain=chain, kind=Asset.FUNGIBLE, address="0x" + "22" * 20, symbol="EVIL", name=XSS, decimals=0, standard="erc20")
    spam = Asset.objects.create(chain=chain, kind=Asset.FUNGIBLE, address="0x" + "33" * 20, symbol="FREE", name="Claim at scam.example", decimals=0, is_spam=True)
    hold(wc, native, 1_500_000_000_000_000_123, price="2000")
    hold(wc, usdc, 250_000_000, price="1")
    hold(wc, evil, 5)
    hold(wc, spam, 1000)
    return {"wallet": wallet, "wc": wc, "native": native, "usdc": usdc, "evil": evil, "spam": spam}


@pytest.mark.django_db
class TestDashboard:
    def test_a_new_user_is_shown_how_to_add_a_first_wallet(self, owner_client):
        page = owner_client.get(reverse("dashboard")).content.decode()
        assert "Add your first wallet" in page
        assert reverse("wallets") in page

    def test_a_wallet_never_synced_shows_progress_not_zeros(self, owner, owner_client):
        wallet, wc = make_wallet(owner)
        WalletChain.objects.filter(pk=wc.pk).update(status=WalletChain.QUEUED, last_ok_at=None)
        page = owner_client.get(reverse("dashboard")).content.decode()
        assert "Reading your wallets" in page
        assert "$0.00" not in page

    def test_it_shows_net_worth_allocation_and_freshness(self, owner_client, holdings_world):
        page = owner_client.get(reverse("dashboard")).content.decode()
        assert "$3,250.00" in page  # 1.5 ETH x 2000 + 250 USDC
        assert "By chain" in page and "Data freshness" in page
        assert "1,234,567" in page  # the block the balances were read at

    def test_a_range_switch_from_htmx_returns_only_the_performance_partial(self, owner_client, holdings_world):
        response = owner_client.get(reverse("dashboard") + "?range=7d", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="performance")
        body = response.content.decode()
        assert response.status_code == 200
        assert 'id="performance"' in body and "<html" not in body
        assert 'aria-current="true">7D' in body

    def test_the_range_link_works_as_a_plain_page(self, owner_client, holdings_world):
        body = owner_client.get(reverse("dashboard") + "?range=1y").content.decode()
        assert "<html" in body and 'aria-current="true">1Y' in body

    def test_another_users_portfolio_is_a_404(self, owner, outsider_client):
        portfolio = Portfolio.objects.create(owner=owner, name="Secret")
        assert outsider_client.get(reverse("portfolio_dashboard", args=[portfolio.pk])).status_code == 404
        assert outsider_client.get(reverse("holdings") + f"?portfolio={portfolio.pk}").status_code == 404

    def test_the_switcher_form_redirects_to_the_portfolio_url(self, owner, owner_client):
        portfolio = Portfolio.objects.create(owner=owner, name="Cold")
        response = owner_client.get(reverse("dashboard") + f"?portfolio={portfolio.pk}&range=7d")
        assert response.status_code == 302
        assert response["Location"] == reverse("portfolio_dashboard", args=[portfolio.pk]) + "?range=7d"

    def test_anonymous_visitors_are_sent_to_sign_in(self, client, db):
        for name in ("dashboard", "holdings", "holdings_csv", "nfts", "positions", "settings"):
            response = client.get(reverse(name))
            assert response.status_code == 302 and reverse("login") in response["Location"], name


@pytest.mark.django_db
class TestHoldings:
    def test_an_oracle_price_names_its_feed_briefly_and_in_full_on_hover(self, owner_client, holdings_world):
        feed = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
        PricePoint.objects.create(asset=holdings_world["usdc"], price=Decimal("1.0001"), currency="USD", source=f"oracle:chainlink:{feed}")
        page = owner_client.get(reverse("holdings")).content.decode()
        assert "chainlink 0x5FbD…0aa3" in page and f'title="oracle:chainlink:{feed}"' in page

    def test_rows_show_exact_amounts_prices_and_values(self, owner_client, holdings_world):
        page = owner_client.get(reverse("holdings")).content.decode()
        assert "1.5" in page and "1.500000000000000123" in page  # shown rounded, exact in the title
        assert "$3,000.00" in page and "$250.00" in page
        assert "unpriced" in page

    def test_an_on_chain_name_is_escaped(self, owner_client, holdings_world):
        page = owner_client.get(reverse("holdings")).content.decode()
        assert XSS not in page
        assert "&lt;img src=x onerror=alert(1)&gt;" in page

    def test_spam_is_hidden_by_default_and_shown_on_request(self, owner_client, holdings_world):
        assert "FREE" not in owner_client.get(reverse("holdings")).content.decode()
        assert "FREE" in owner_client.get(reverse("holdings") + "?hide_spam=0").content.decode()

    def test_hide_dust_uses_the_users_threshold(self, owner, owner_client, holdings_world):
        owner.profile.dust_threshold = Decimal("500")
        owner.profile.save()
        page = owner_client.get(reverse("holdings") + "?hide_dust=0&hide_dust=1").content.decode()
        assert "USDC" not in page and "$3,000.00" in page

    def test_search_and_chain_filter_and_sort(self, owner_client, holdings_world):
        page = owner_client.get(reverse("holdings") + "?q=usd").content.decode()
        assert "USD Coin" in page and page.count('data-testid="holding-row"') == 1
        page = owner_client.get(reverse("holdings") + "?sort=value").content.decode()
        assert page.index("USDC") < page.index("$3,000.00")
        page = owner_client.get(reverse("holdings") + "?chain=no-such-chain").content.decode()
        assert "USDC" in page  # an unknown filter value is ignored, not an error

    def test_htmx_gets_the_table_partial(self, owner_client, holdings_world):
        body = owner_client.get(reverse("holdings") + "?q=usd", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="holdings-table").content.decode()
        assert 'id="holdings-table"' in body and "<html" not in body and "USDC" in body

    def test_expanding_a_row_lists_the_wallets_and_blocks_with_or_without_javascript(self, owner_client, holdings_world):
        page = owner_client.get(reverse("holdings")).content.decode()
        url = reverse("holding_wallets", args=[holdings_world["usdc"].pk])
        assert f'href="{url}?' in page and f'hx-get="{url}?' in page  # the breakdown is not in the page itself
        assert "block 1,234,567" not in page
        fragment = owner_client.get(url, HTTP_HX_REQUEST="true").content.decode()
        assert "<html" not in fragment and "block 1,234,567" in fragment and "Main" in fragment and "250" in fragment
        plain = owner_client.get(url).content.decode()
        assert "<html" in plain and "block 1,234,567" in plain and "Back to holdings" in plain

    def test_an_asset_not_in_the_scope_has_no_breakdown(self, outsider_client, holdings_world):
        assert outsider_client.get(reverse("holding_wallets", args=[holdings_world["usdc"].pk])).status_code == 404

    def test_csv_exports_exactly_the_filtered_rows_with_exact_amounts(self, owner_client, holdings_world):
        response = owner_client.get(reverse("holdings_csv") + "?q=eth")
        assert response["Content-Type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(response.content.decode())))
        assert [r["asset"] for r in rows] == ["ETH"]
        assert rows[0]["amount"] == "1.500000000000000123"
        assert rows[0]["value_USD"] == "3000.00"

    def test_csv_defuses_formulas_in_token_names(self, owner_client, holdings_world):
        holdings_world["evil"].name = "=HYPERLINK(\"http://x\")"
        holdings_world["evil"].save()
        text = owner_client.get(reverse("holdings_csv") + "?q=evil").content.decode()
        assert "'=HYPERLINK" in text

    def test_other_users_holdings_never_show(self, outsider_client, holdings_world):
        assert "USDC" not in outsider_client.get(reverse("holdings")).content.decode()
        assert "USDC" not in outsider_client.get(reverse("holdings_csv")).content.decode()
        wallet = holdings_world["wallet"]
        assert "USDC" not in outsider_client.get(reverse("holdings") + f"?wallet={wallet.pk}").content.decode()


@pytest.mark.django_db
class TestNfts:
    @pytest.fixture
    def nft_world(self, owner):
        wallet, wc = make_wallet(owner)
        coll = Asset.objects.create(chain=wc.chain, kind=Asset.NFT_COLLECTION, address="0x" + "44" * 20, symbol="APE", name="Apes", standard="erc721")
        spam = Asset.objects.create(chain=wc.chain, kind=Asset.NFT_COLLECTION, address="0x" + "55" * 20, symbol="AIR", name="Airdrop", standard="erc721", is_spam=True)
        NftItem.objects.create(wallet_chain=wc, collection=coll, token_id="1", name=XSS, image_url="https://img.example/1.png")
        NftItem.objects.create(wallet_chain=wc, collection=coll, token_id="2", name="Svg", image_url="data:image/svg+xml;base64,PHN2Zz4=")
        NftItem.objects.create(wallet_chain=wc, collection=coll, token_id="3", name="Js", image_url="javascript:alert(1)")
        NftItem.objects.create(wallet_chain=wc, collection=spam, token_id="9", name="Claim now")
        return wc

    def test_gallery_escapes_names_and_only_renders_safe_images(self, owner_client, nft_world):
        page = owner_client.get(reverse("nfts")).content.decode()
        assert XSS not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
        assert 'src="https://img.example/1.png"' in page and 'referrerpolicy="no-referrer"' in page and 'loading="lazy"' in page
        assert "svg+xml" not in page and "javascript:" not in page

    def test_spam_is_hidden_unless_asked(self, owner_client, nft_world):
        assert "Claim now" not in owner_client.get(reverse("nfts")).content.decode()
        page = owner_client.get(reverse("nfts") + "?spam=1").content.decode()
        assert "Claim now" in page and "badge-spam" in page

    def test_htmx_gets_the_gallery_partial(self, owner_client, nft_world):
        body = owner_client.get(reverse("nfts"), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="nft-gallery").content.decode()
        assert 'id="nft-gallery"' in body and "<html" not in body

    def test_empty_gallery_teaches(self, owner_client):
        assert "No wallets yet" in owner_client.get(reverse("nfts")).content.decode()


@pytest.mark.django_db
class TestPositionsAndSettings:
    def test_positions_empty_state_explains_what_is_supported(self, owner, owner_client):
        make_wallet(owner)
        page = owner_client.get(reverse("positions")).content.decode()
        assert "No positions" in page and "Solana stake accounts" in page

    def test_settings_change_the_quote_currency_and_dust_threshold(self, owner, owner_client):
        response = owner_client.post(reverse("settings"), {"quote_currency": "EUR", "dust_threshold": "2.50"})
        assert response.status_code == 302
        owner.profile.refresh_from_db()
        assert owner.profile.quote_currency == "EUR" and owner.profile.dust_threshold == Decimal("2.50")

    def test_settings_refuse_an_unknown_currency(self, owner, owner_client):
        response = owner_client.post(reverse("settings"), {"quote_currency": "XXX", "dust_threshold": "1"})
        assert response.status_code == 200 and "XXX" not in str(owner.profile.quote_currency)

    def test_staff_see_the_admin_link_and_others_do_not(self, owner_client, staff_client):
        assert reverse("admin:index") not in owner_client.get(reverse("settings")).content.decode()
        assert reverse("admin:index") in staff_client.get(reverse("settings")).content.decode()

    def test_pages_send_a_strict_content_security_policy(self, owner_client, settings):
        settings.MIDDLEWARE = [*settings.MIDDLEWARE, "portfolio.middleware.ContentSecurityPolicyMiddleware"]
        csp = owner_client.get(reverse("dashboard"))["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "object-src 'none'" in csp
