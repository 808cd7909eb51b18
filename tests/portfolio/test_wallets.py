"""Adding, editing and deleting wallets and portfolios: every address kind of every family, duplicates,
chains chosen by family and network, and the pages that show them."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from chains.bitcoin.address import encode_address
from chains.bitcoin.codec import b58decode_check, b58encode_check
from chains.base58 import b58encode
from portfolio.models import Asset, Chain, Holding, Portfolio, Wallet, WalletChain
from portfolio.services.wallets import do_add_wallet, do_delete_wallet, do_update_wallet, ensure_wallet_chains
from portfolio.valuation import exact_text, to_units

pytestmark = pytest.mark.django_db

EIP55 = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
# secp256k1 generator point, compressed: a valid public key to build addresses of every type from
G = bytes.fromhex("0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")
XPUB = "xpub661MyMwAqRbcFtXgS5sYJABqqG9YLmC4Q1Rdap9gSE8NqtwybGhePY2gZ29ESFjqJoCu1Rupje8YtGqsefD265TMg7usUDFdp6W1EGMcet8"
ZPUB = "zpub6rFR7y4Q2AijBEqTUquhVz398htDFrtymD9xYYfG1m4wAcvPhXNfE3EfH1r1ADqtfSdVCToUG868RvUUkgDKf31mGDtKsAYz2oz2AGutZYs"


def reversion(key: str, version_hex: str) -> str:
    """The same extended public key with other version bytes (ypub, tpub, vpub...)."""
    return b58encode_check(bytes.fromhex(version_hex) + b58decode_check(key)[4:])


YPUB = reversion(XPUB, "049d7cb2")
TPUB = reversion(XPUB, "043587cf")
UPUB = reversion(XPUB, "044a5262")
VPUB = reversion(XPUB, "045f1cf6")

VALID = {
    "evm": [
        (EIP55, EIP55, "address"),
        (EIP55.lower(), EIP55, "address"),
        ("0X" + EIP55[2:].upper(), EIP55, "address"),
        ("  " + EIP55 + "\n", EIP55, "address"),
    ],
    "bitcoin": [
        ("1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2", "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2", "address"),
        ("3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy", "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy", "address"),
        ("bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq", "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq", "address"),
        ("BC1QAR0SRRR7XFKVY5L643LYDNW9RE59GTZZWF5MDQ", "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq", "address"),
        (encode_address(G, "p2tr", "mainnet"), encode_address(G, "p2tr", "mainnet"), "address"),
        (XPUB, XPUB, "extended_key"),
        (YPUB, YPUB, "extended_key"),
        (ZPUB, ZPUB, "extended_key"),
    ],
    "solana": [
        ("H1zxrQ5vTjGMSzdBCNS4ED9T8LsRujzRnQDXQfqxSLn8", "H1zxrQ5vTjGMSzdBCNS4ED9T8LsRujzRnQDXQfqxSLn8", "address"),
        ("11111111111111111111111111111111", "11111111111111111111111111111111", "address"),
        ("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA", "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA", "address"),
    ],
}
REGTEST_VALID = [
    encode_address(G, "p2wpkh", "regtest"),
    encode_address(G, "p2tr", "regtest"),
    encode_address(G, "p2pkh", "regtest"),
    encode_address(G, "p2sh-p2wpkh", "regtest"),
    TPUB,
    UPUB,
    VPUB,
]
INVALID = {
    "evm": [
        "",
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD",  # one letter's case flipped: bad EIP-55 checksum
        EIP55[:-1],
        EIP55 + "0",
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeg",
        EIP55[2:] + "00",  # no 0x
        "vitalik.eth",
        "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2",
    ],
    "bitcoin": [
        "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN3",  # base58 checksum
        "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdr",  # bech32 checksum
        "bc1zw508d6qejxtdg4y5r3zarvaryvaxxpcs",  # witness v2 with a bech32 (not bech32m) checksum
        "bc1Qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",  # mixed case
        XPUB[:-1] + "9",
        EIP55,
        "hello",
    ],
    "solana": [
        b58encode(bytes(range(100, 131))),  # 31 bytes
        b58encode(bytes(range(100, 133))),  # 33 bytes
        "0OIlH1zxrQ5vTjGMSzdBCNS4ED9T8LsRujzRnQDXQfq",  # not base58
        EIP55,
        "",
    ],
}


def add(client, **data):
    payload = {"family": "evm", "address": "", "label": "", "script_type": "", "gap_limit": "20", **data}
    return client.post(reverse("wallets"), payload)


@pytest.mark.parametrize("family,text,canonical,kind", [(f, t, c, k) for f, rows in VALID.items() for t, c, k in rows])
def test_it_accepts_every_valid_address_kind(owner, owner_client, family, text, canonical, kind):
    response = add(owner_client, family=family, address=text, label="mine")
    assert response.status_code == 302, response.content.decode()[:2000]
    wallet = Wallet.objects.get(owner=owner)
    assert (wallet.family, wallet.address, wallet.kind) == (family, canonical, kind)
    assert wallet.wallet_chains.exists()


@pytest.mark.parametrize("family,text", [(f, t) for f, rows in INVALID.items() for t in rows])
def test_it_refuses_invalid_addresses_with_a_form_error(owner, owner_client, family, text):
    response = add(owner_client, family=family, address=text)
    assert response.status_code == 200
    assert b"errorlist" in response.content
    assert not Wallet.objects.filter(owner=owner).exists()


def test_it_tracks_an_evm_address_on_every_enabled_evm_chain(owner):
    enabled = set(Chain.objects.filter(family="evm", enabled=True).values_list("slug", flat=True))
    assert len(enabled) >= 2
    wallet = do_add_wallet(owner, "evm", EIP55.lower())
    assert wallet.address == EIP55
    assert set(wallet.wallet_chains.values_list("chain__slug", flat=True)) == enabled


def test_enabling_a_chain_adds_it_to_existing_wallets_of_its_family(owner):
    evm = do_add_wallet(owner, "evm", EIP55)
    btc = do_add_wallet(owner, "bitcoin", "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq")
    anvil = Chain.objects.get(slug="anvil")
    assert not WalletChain.objects.filter(chain=anvil).exists()
    anvil.enabled = True
    anvil.save()
    assert ensure_wallet_chains(anvil) == 1
    assert list(WalletChain.objects.filter(chain=anvil).values_list("wallet", flat=True)) == [evm.pk]
    assert ensure_wallet_chains(anvil) == 0
    # a regtest chain never gets a mainnet Bitcoin wallet
    regtest = Chain.objects.get(slug="bitcoin-regtest")
    regtest.enabled = True
    regtest.save()
    assert ensure_wallet_chains(regtest) == 0
    assert not btc.wallet_chains.filter(chain=regtest).exists()


def test_a_bitcoin_address_is_tracked_only_on_the_chains_of_its_network(owner):
    Chain.objects.filter(slug="bitcoin-regtest").update(enabled=True)
    mainnet = do_add_wallet(owner, "bitcoin", "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq")
    assert list(mainnet.wallet_chains.values_list("chain__slug", flat=True)) == ["bitcoin"]
    for text in REGTEST_VALID:
        wallet = do_add_wallet(owner, "bitcoin", text)
        assert list(wallet.wallet_chains.values_list("chain__slug", flat=True)) == ["bitcoin-regtest"], text


def test_a_regtest_address_without_an_enabled_regtest_chain_is_a_clear_form_error(owner, owner_client):
    assert not Chain.objects.get(slug="bitcoin-regtest").enabled
    response = add(owner_client, family="bitcoin", address=REGTEST_VALID[0])
    assert response.status_code == 200
    assert b"No enabled bitcoin chain for regtest" in response.content
    assert not Wallet.objects.exists()


def test_the_script_type_and_gap_limit_of_an_extended_key_come_from_the_form(owner, owner_client):
    response = add(owner_client, family="bitcoin", address=XPUB, script_type="p2wpkh", gap_limit="40")
    assert response.status_code == 302
    wallet = Wallet.objects.get(owner=owner)
    assert (wallet.kind, wallet.script_type, wallet.gap_limit) == ("extended_key", "p2wpkh", 40)


def test_an_extended_key_without_a_chosen_script_type_uses_its_prefix(owner):
    assert do_add_wallet(owner, "bitcoin", ZPUB).script_type == "p2wpkh"
    assert do_add_wallet(owner, "bitcoin", YPUB).script_type == "p2sh-p2wpkh"
    assert do_add_wallet(owner, "bitcoin", XPUB).script_type == "p2pkh"


def test_a_single_address_keeps_the_script_type_its_encoding_says(owner):
    wallet = do_add_wallet(owner, "bitcoin", "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy", script_type="p2tr")
    assert wallet.script_type == "p2sh"


def test_an_out_of_range_gap_limit_is_a_form_error(owner, owner_client):
    response = add(owner_client, family="bitcoin", address=XPUB, gap_limit="0")
    assert response.status_code == 200 and b"errorlist" in response.content
    assert not Wallet.objects.exists()


def test_a_duplicate_wallet_is_a_form_error_not_a_500(owner, owner_client):
    assert add(owner_client, address=EIP55).status_code == 302
    response = add(owner_client, address=EIP55.lower())
    assert response.status_code == 200
    assert b"You already track this address." in response.content
    assert Wallet.objects.filter(owner=owner).count() == 1


def test_a_duplicate_that_slips_past_the_check_is_still_a_form_error(owner, monkeypatch):
    do_add_wallet(owner, "evm", EIP55)
    from django.db.models import QuerySet

    monkeypatch.setattr(QuerySet, "exists", lambda self: False)  # as if a concurrent request added it
    with pytest.raises(ValidationError) as info:
        do_add_wallet(owner, "evm", EIP55)
    assert info.value.code == "duplicate"


def test_two_users_may_watch_the_same_address(owner, outsider):
    do_add_wallet(owner, "evm", EIP55)
    do_add_wallet(outsider, "evm", EIP55)
    assert Wallet.objects.filter(address=EIP55).count() == 2


def test_the_add_form_works_with_htmx_and_returns_just_the_form_on_errors(owner_client):
    response = owner_client.post(
        reverse("wallets"), {"family": "evm", "address": "0x123", "gap_limit": "20"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith('<form id="wallet-form"') and "<html" not in body
    assert "errorlist" in body
    ok = owner_client.post(reverse("wallets"), {"family": "evm", "address": EIP55, "gap_limit": "20"}, HTTP_HX_REQUEST="true")
    assert ok.status_code == 204 and ok["HX-Redirect"] == reverse("wallets")


def test_a_wallet_can_join_several_portfolios_of_its_owner(owner, owner_client):
    a = Portfolio.objects.create(owner=owner, name="Long term")
    b = Portfolio.objects.create(owner=owner, name="Trading")
    response = add(owner_client, address=EIP55, portfolios=[a.pk, b.pk])
    assert response.status_code == 302
    assert set(Wallet.objects.get().portfolios.all()) == {a, b}


def test_a_wallet_cannot_join_someone_elses_portfolio(owner, outsider, owner_client):
    theirs = Portfolio.objects.create(owner=outsider, name="Theirs")
    Portfolio.objects.create(owner=owner, name="Mine")
    response = add(owner_client, address=EIP55, portfolios=[theirs.pk])
    assert response.status_code == 200 and b"errorlist" in response.content
    assert not Wallet.objects.exists()
    assert not theirs.wallets.exists()
    with pytest.raises(ValidationError):
        do_add_wallet(owner, "evm", EIP55, portfolios=[theirs])


def test_the_wallet_list_shows_the_users_wallets_and_chains(owner, owner_client, outsider):
    do_add_wallet(owner, "evm", EIP55, label="Cold storage")
    do_add_wallet(outsider, "evm", "0x" + "ab" * 20, label="Not yours")
    body = owner_client.get(reverse("wallets")).content.decode()
    assert "Cold storage" in body and "Ethereum" in body and "Arbitrum One" in body
    assert "Not yours" not in body


def test_editing_a_wallet_changes_its_label_and_portfolios(owner, owner_client):
    wallet = do_add_wallet(owner, "evm", EIP55, label="old")
    p = Portfolio.objects.create(owner=owner, name="P")
    response = owner_client.post(reverse("wallet_edit", args=[wallet.pk]), {"label": "new", "portfolios": [p.pk]})
    assert response.status_code == 302
    wallet.refresh_from_db()
    assert wallet.label == "new" and list(wallet.portfolios.all()) == [p]


def test_deleting_a_wallet_needs_a_post_and_removes_its_wallet_chains(owner, owner_client):
    wallet = do_add_wallet(owner, "evm", EIP55)
    url = reverse("wallet_delete", args=[wallet.pk])
    page = owner_client.get(url)
    assert page.status_code == 200 and b"Stop watching" in page.content
    assert Wallet.objects.filter(pk=wallet.pk).exists()
    assert owner_client.post(url).status_code == 302
    assert not Wallet.objects.filter(pk=wallet.pk).exists()
    assert not WalletChain.objects.filter(wallet_id=wallet.pk).exists()


def test_the_detail_page_shows_stored_holdings_with_exact_amounts_and_sync_state(owner, owner_client):
    wallet = do_add_wallet(owner, "evm", EIP55)
    eth = Chain.objects.get(slug="ethereum")
    wc = WalletChain.objects.get(wallet=wallet, chain=eth)
    wc.status, wc.height = WalletChain.FAILED, 21_000_000
    wc.last_error = "endpoint timed out (eth_call at https://ethereum-rpc.publicnode.com)"
    wc.save()
    native = Asset.objects.get(chain=eth, address="")
    usdc = Asset.objects.create(chain=eth, kind="fungible", standard="erc20", address="0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48", symbol="USDC", name="USD Coin", decimals=6)
    Holding.objects.create(wallet_chain=wc, asset=native, amount=123456789012345678901234567890, height=21_000_000)
    Holding.objects.create(wallet_chain=wc, asset=usdc, amount=1_500_000, height=21_000_000)
    body = owner_client.get(reverse("wallet_detail", args=[wallet.pk])).content.decode()
    assert "123456789012.34567890123456789" in body  # 30 digits, 18 decimals: no float rounding
    assert ">1.5" in body
    assert "block 21,000,000" in body
    assert "Failed" in body and "endpoint timed out" in body
    assert f"https://etherscan.io/address/{EIP55}" in body
    assert "https://etherscan.io/token/0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48" in body


@pytest.mark.parametrize("raw,decimals,text", [(0, 18, "0"), (1, 18, "0.000000000000000001"), (10**18, 18, "1"), (150_000_000, 8, "1.5"), (2**256 - 1, 0, str(2**256 - 1)), (-5, 1, "-0.5"), (2**256 - 1, 18, "115792089237316195423570985008687907853269984665640564039457.584007913129639935"), (7, -2, "700")])
def test_amounts_are_formatted_exactly_from_base_units(raw, decimals, text):
    assert exact_text(to_units(raw, decimals)) == text


def test_update_and_delete_services(owner):
    wallet = do_add_wallet(owner, "bitcoin", XPUB)
    do_update_wallet(wallet, label="savings", gap_limit=50)
    wallet.refresh_from_db()
    assert (wallet.label, wallet.gap_limit) == ("savings", 50)
    do_delete_wallet(wallet)
    assert not Wallet.objects.exists()


# --------------------------------------------------------------------------- portfolios


def test_portfolios_can_be_created_renamed_and_deleted_without_losing_wallets(owner, owner_client):
    wallet = do_add_wallet(owner, "evm", EIP55, label="hot")
    response = owner_client.post(reverse("portfolios"), {"name": "Main", "wallets": [wallet.pk]})
    assert response.status_code == 302
    portfolio = Portfolio.objects.get(owner=owner)
    assert list(portfolio.wallets.all()) == [wallet]
    assert b"hot" in owner_client.get(reverse("portfolio_detail", args=[portfolio.pk])).content
    assert owner_client.post(reverse("portfolio_edit", args=[portfolio.pk]), {"name": "Renamed"}).status_code == 302
    portfolio.refresh_from_db()
    assert portfolio.name == "Renamed" and not portfolio.wallets.exists()
    assert owner_client.get(reverse("portfolio_delete", args=[portfolio.pk])).status_code == 200
    assert owner_client.post(reverse("portfolio_delete", args=[portfolio.pk])).status_code == 302
    assert not Portfolio.objects.exists() and Wallet.objects.filter(pk=wallet.pk).exists()


def test_a_duplicate_portfolio_name_is_a_form_error(owner, owner_client):
    Portfolio.objects.create(owner=owner, name="Main")
    response = owner_client.post(reverse("portfolios"), {"name": "Main"})
    assert response.status_code == 200 and b"You already have a portfolio with this name." in response.content
    other = Portfolio.objects.create(owner=owner, name="Other")
    response = owner_client.post(reverse("portfolio_edit", args=[other.pk]), {"name": "Main"})
    assert response.status_code == 200 and b"You already have a portfolio with this name." in response.content


def test_a_portfolio_cannot_hold_someone_elses_wallet(owner, outsider, owner_client):
    theirs = do_add_wallet(outsider, "evm", EIP55)
    response = owner_client.post(reverse("portfolios"), {"name": "Sneaky", "wallets": [theirs.pk]})
    assert response.status_code == 200 and b"errorlist" in response.content
    assert not Portfolio.objects.exists()


@pytest.mark.parametrize("family,address,shows_gap", [
    ("evm", EIP55, False),
    ("solana", "H1zxrQ5vTjGMSzdBCNS4ED9T8LsRujzRnQDXQfqxSLn8", False),
    ("bitcoin", "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq", False),
    ("bitcoin", XPUB, True),
])
def test_the_edit_form_asks_for_a_gap_limit_only_for_an_extended_key(owner, owner_client, family, address, shows_gap):
    wallet = do_add_wallet(owner, family, address, label="w")
    page = owner_client.get(reverse("wallet_edit", args=[wallet.pk])).content.decode()
    assert ("Gap limit" in page) is shows_gap and ('name="gap_limit"' in page) is shows_gap
    posted = {"label": "renamed", **({"gap_limit": "35"} if shows_gap else {})}
    assert owner_client.post(reverse("wallet_edit", args=[wallet.pk]), posted).status_code == 302
    wallet.refresh_from_db()
    assert wallet.label == "renamed" and wallet.gap_limit == (35 if shows_gap else 20)


def test_a_chain_read_seconds_ago_says_just_now_not_zero_minutes(owner, owner_client):
    from django.utils import timezone

    wallet = do_add_wallet(owner, "evm", EIP55)
    wallet.wallet_chains.update(status=WalletChain.OK, last_ok_at=timezone.now())
    page = owner_client.get(reverse("wallets")).content.decode()
    assert "just now" in page and "0 min" not in page and "0 minutes" not in page
