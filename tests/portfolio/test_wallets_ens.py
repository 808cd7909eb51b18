"""ENS names as wallet input and verified reverse names next to addresses, against the devnet's real
ENS contracts: the page, the API, an unknown name, a spoofed reverse record and an RPC that is down."""

from __future__ import annotations

import pytest
from django.urls import reverse
from ens.utils import normal_name_to_hash

from devnet.common import free_port
from devnet.evm.ens import SPOOFER
from devnet.evm.scenario import DEPLOYER, call
from portfolio.models import Chain, Wallet
from portfolio.services.ens import do_refresh_primary_names
from portfolio.services.wallets import do_add_wallet
from tests.fixtures.celery import seed_chain

pytestmark = [pytest.mark.devnet, pytest.mark.django_db]
API = "/api/v1"


@pytest.fixture
def anvil(evm_devnet):
    """The devnet chain as `make run` sets it up: the only enabled chain with an ENS registry (the
    seeded Ethereum mainnet has one too, but no internet here)."""
    Chain.objects.exclude(network="devnet").update(enabled=False)
    return seed_chain(evm_devnet.scenario)


def add_by_form(client, text: str):
    return client.post(reverse("wallets"), {"family": "evm", "address": text, "label": "", "gap_limit": 20})


def test_a_name_typed_as_a_wallet_is_stored_as_the_address_it_resolves_to(owner_client, owner, anvil, evm_devnet):
    response = add_by_form(owner_client, "Demo.ETH")

    assert response.status_code == 302, response.content
    wallet = Wallet.objects.get(owner=owner)
    assert wallet.address == evm_devnet.wallet("Alice")["address"] == evm_devnet.scenario["ens"]["names"]["demo.eth"]
    assert wallet.ens_name == "demo.eth"  # normalised, kept next to the stored address
    assert [wc.chain for wc in wallet.wallet_chains.all()] == [anvil]
    page = owner_client.get(reverse("wallets")).content.decode()
    assert "demo.eth" in page and "Now watching demo.eth" in page


def test_a_name_of_an_address_already_tracked_is_a_duplicate(owner, anvil, evm_devnet):
    do_add_wallet(owner, "evm", evm_devnet.wallet("Alice")["address"])
    with pytest.raises(Exception, match="You already track this address"):
        do_add_wallet(owner, "evm", "demo.eth")


def test_an_unknown_name_is_a_clear_form_error_and_nothing_is_stored(owner_client, anvil):
    response = add_by_form(owner_client, "nobody.eth")

    assert response.status_code == 200
    assert "Nobody.eth is not a registered ENS name (it has no resolver)." in response.content.decode()
    assert not Wallet.objects.exists()


def test_a_malformed_name_is_refused_by_the_form_without_asking_the_chain(owner_client, evm_devnet, rpc_proxy):
    Chain.objects.exclude(network="devnet").update(enabled=False)
    seed_chain(evm_devnet.scenario, url=rpc_proxy.url)

    response = add_by_form(owner_client, "demo..eth")

    assert "Not a valid ENS name: Labels cannot be empty." in response.content.decode()
    assert rpc_proxy.payloads == [] and not Wallet.objects.exists()


def test_an_rpc_that_is_down_gives_a_clear_error_and_stores_nothing(owner_client, evm_devnet):
    Chain.objects.exclude(network="devnet").update(enabled=False)
    seed_chain(evm_devnet.scenario, url=f"http://127.0.0.1:{free_port()}")

    response = add_by_form(owner_client, "demo.eth")

    page = response.content.decode()
    assert response.status_code == 200
    assert "Could not look up demo.eth: Anvil (local)&#x27;s RPC endpoint did not answer. Nothing was saved" in page
    assert not Wallet.objects.exists()


def test_without_a_chain_that_has_an_ens_registry_a_name_is_refused_with_the_reason(owner_client, anvil):
    Chain.objects.update(ens_registry="")

    response = add_by_form(owner_client, "demo.eth")

    assert "ENS names need an enabled EVM chain with an ENS registry" in response.content.decode()
    assert not Wallet.objects.exists()


def test_verified_reverse_names_are_shown_next_to_addresses_and_spoofed_ones_are_not(owner_client, owner, anvil, evm_devnet):
    alice, bob = evm_devnet.wallet("Alice")["address"], evm_devnet.wallet("Bob")["address"]
    for address, label in ((alice, "A"), (bob, "B"), (SPOOFER, "Spoofer")):
        do_add_wallet(owner, "evm", address, label=label)

    # What the sync does after reading the ENS chain (see do_refresh_primary_names).
    assert do_refresh_primary_names(Wallet.objects.filter(owner=owner)) == 2

    names = dict(Wallet.objects.values_list("address", "primary_name"))
    assert names == {alice: "demo.eth", bob: "bob.eth", SPOOFER: ""}
    page = owner_client.get(reverse("wallets")).content.decode()
    # The spoofer's reverse record says demo.eth too, but demo.eth resolves to Alice: shown once.
    assert page.count(">demo.eth</span>") == 1 and page.count(">bob.eth</span>") == 1
    detail = owner_client.get(reverse("wallet_detail", kwargs={"wallet_id": Wallet.objects.get(address=bob).pk}))
    assert ">bob.eth</span>" in detail.content.decode()
    listed = {w["address"]: w["primary_name"] for w in owner_client.get(API + "/wallets").json()["items"]}
    assert listed == names


def test_a_refresh_drops_a_name_that_no_longer_resolves_back(owner, anvil, evm_devnet, evm_snapshot):
    alice, bob = evm_devnet.wallet("Alice")["address"], evm_devnet.wallet("Bob")["address"]
    wallet = do_add_wallet(owner, "evm", alice)
    do_refresh_primary_names([wallet])
    assert wallet.primary_name == "demo.eth"

    ens = evm_devnet.scenario["ens"]
    call(evm_devnet.url, DEPLOYER, ens["resolver"], "setAddr(bytes32,address)", ["bytes32", "address"],
         [bytes(normal_name_to_hash("demo.eth")), bob])

    assert do_refresh_primary_names(Wallet.objects.filter(pk=wallet.pk)) == 1
    assert Wallet.objects.get(pk=wallet.pk).primary_name == ""


def test_the_api_takes_a_name_and_answers_with_the_stored_address(owner_client, anvil, evm_devnet):
    response = owner_client.post(API + "/wallets", {"family": "evm", "address": "bob.eth"}, content_type="application/json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["address"], body["ens_name"]) == (evm_devnet.wallet("Bob")["address"], "bob.eth")

    unknown = owner_client.post(API + "/wallets", {"family": "evm", "address": "nobody.eth"}, content_type="application/json")
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["type"] == "invalid"


def test_the_api_says_when_the_ens_chain_cannot_be_reached(owner_client, evm_devnet):
    Chain.objects.exclude(network="devnet").update(enabled=False)
    seed_chain(evm_devnet.scenario, url=f"http://127.0.0.1:{free_port()}")

    response = owner_client.post(API + "/wallets", {"family": "evm", "address": "demo.eth"}, content_type="application/json")

    assert response.status_code == 422 and response.json()["detail"][0]["type"] == "ens_unavailable"
    assert not Wallet.objects.exists()


def test_a_slow_rpc_is_given_up_on_after_the_short_lookup_timeout(owner_client, evm_devnet, rpc_proxy, monkeypatch):
    """A web request does not wait the endpoint's own (sync) timeout: an answer slower than the lookup
    bound is a clear error, even though it would have been a good answer."""
    import time

    from portfolio.services import ens

    Chain.objects.exclude(network="devnet").update(enabled=False)
    seed_chain(evm_devnet.scenario, url=rpc_proxy.url)  # the endpoint's own timeout: 10 s
    monkeypatch.setattr(ens, "LOOKUP_TIMEOUT_S", 0.2)
    rpc_proxy.handler = lambda payload: time.sleep(1.0)  # then forwarded: a correct, late answer

    response = add_by_form(owner_client, "demo.eth")

    assert "Could not look up demo.eth" in response.content.decode()
    assert not Wallet.objects.exists()
    assert len(rpc_proxy.payloads) == 1  # one endpoint, tried once: no retry loop in a web request


def test_the_sync_hook_refreshes_names_on_the_ens_chain_only_and_never_fails_the_sync(owner, anvil, evm_devnet):
    from portfolio.models import WalletChain
    from portfolio.services.ens import refresh_after_sync

    wallet = do_add_wallet(owner, "evm", evm_devnet.wallet("Alice")["address"])
    group = list(WalletChain.objects.filter(wallet=wallet).select_related("chain", "wallet"))
    other = Chain.objects.create(slug="other-evm", name="Other", family="evm", chain_id=999, native_symbol="ETH")
    elsewhere = [WalletChain.objects.create(wallet=wallet, chain=other)]

    assert refresh_after_sync(elsewhere) == 0  # not the ENS chain: no lookup
    assert refresh_after_sync(group) == 1
    assert Wallet.objects.get(pk=wallet.pk).primary_name == "demo.eth"

    anvil.endpoints.update(url=f"http://127.0.0.1:{free_port()}")  # the ENS chain goes down
    group = list(WalletChain.objects.filter(wallet=wallet, chain=anvil).select_related("chain", "wallet"))
    assert refresh_after_sync(group) == 0
    assert Wallet.objects.get(pk=wallet.pk).primary_name == "demo.eth"  # kept, not cleared
