"""Bitcoin adapter against the bcoin devnet: scenario amounts, confirmed/pending split, gap limit, cursors."""

from __future__ import annotations

import json

import pytest

from chains.base import FetchRequest, InvalidAddress, SecretRefused, WalletRef
from chains.bitcoin.adapter import BitcoinAdapter
from chains.registry import adapter_for


def fetch(config, endpoints, wallets, cursors=None):
    adapter = adapter_for(config, endpoints)
    assert isinstance(adapter, BitcoinAdapter)
    return adapter.fetch(FetchRequest(wallets=tuple(wallets), cursors=cursors or {}))


def test_it_reads_every_scenario_wallet(bitcoin_devnet, bitcoin_chain_config, bitcoin_endpoints):
    scenario = bitcoin_devnet.scenario
    wallets = [WalletRef(w["address"], w["script_type"] if w["script_type"] != "p2sh" else None, w["gap_limit"]) for w in scenario["wallets"]]
    result = fetch(bitcoin_chain_config, bitcoin_endpoints, wallets)
    assert result.height == scenario["height"]
    assert result.complete and not result.problems
    by_owner = {b.owner: b for b in result.balances}
    assert len(by_owner) == len(scenario["wallets"])
    for w in scenario["wallets"]:
        b = by_owner[w["address"]]
        assert (b.asset.kind, b.asset.symbol, b.asset.decimals, b.asset.address) == ("native", "BTC", 8, None)
        assert isinstance(b.amount, int) and isinstance(b.unconfirmed, int)
        got = (str(b.amount), str(b.unconfirmed), b.details["utxo_count"], b.details["tx_count"])
        assert got == (w["balances"]["native"], w["unconfirmed"]["native"], w["utxo_count"], w["tx_count"]), w["label"]
    json.dumps(result.cursors)  # stored as JSON by the caller


@pytest.mark.parametrize("index", range(4))
def test_each_single_address_wallet_reads_right_when_fetched_alone(bitcoin_devnet, bitcoin_chain_config, bitcoin_endpoints, index):
    # One wallet per fetch is what a manual refresh does; a 64-character bcrt1p/bcrt1q address once
    # looked like a hex hash to bcoin and came back empty when it had no batch-mate sharing its tx.
    singles = [w for w in bitcoin_devnet.scenario["wallets"] if not w["address"][1:4] == "pub"]
    w = singles[index]
    (balance,) = fetch(bitcoin_chain_config, bitcoin_endpoints, [WalletRef(w["address"])]).balances
    assert (str(balance.amount), str(balance.unconfirmed)) == (w["balances"]["native"], w["unconfirmed"]["native"]), w["label"]


def test_a_spend_with_change_and_a_gap_inside_the_limit_are_found(bitcoin_devnet, bitcoin_chain_config, bitcoin_endpoints):
    w = bitcoin_devnet.wallet("Demo BIP-84")
    result = fetch(bitcoin_chain_config, bitcoin_endpoints, [WalletRef(w["address"], None, 20)])
    (balance,) = result.balances
    found = balance.details["addresses"]
    assert w["notes"]["receive_15"] in found and found[w["notes"]["receive_15"]]["path"] == "0/15"
    assert found[w["notes"]["change_0"]]["path"] == "1/0" and found[w["notes"]["change_0"]]["confirmed"] > 0
    assert w["notes"]["past_gap_40"] not in found
    assert balance.details["receive_used_max"] == 15
    assert balance.details["change_used_max"] == w["notes"]["change_used_max"] > 0  # later spends moved the change on
    cursor = result.cursors[w["address"]]
    assert cursor["receive"]["used_max"] == 15 and len(cursor["receive"]["addresses"]) == 36
    assert set(cursor["with_history"]) == set(found)


def test_a_wider_gap_limit_finds_the_address_past_the_default_gap(bitcoin_devnet, bitcoin_chain_config, bitcoin_endpoints):
    w = bitcoin_devnet.wallet("Demo BIP-84")
    result = fetch(bitcoin_chain_config, bitcoin_endpoints, [WalletRef(w["address"], None, 30)])
    assert w["notes"]["past_gap_40"] in result.balances[0].details["addresses"]
    assert result.balances[0].amount == int(w["balances"]["native"]) + 90_000_000


def test_an_xpub_with_an_explicit_segwit_script_type_matches_the_vpub(bitcoin_devnet, bitcoin_chain_config, bitcoin_endpoints):
    tpub = bitcoin_devnet.wallet("Same account as tpub")
    as_legacy = fetch(bitcoin_chain_config, bitcoin_endpoints, [WalletRef(tpub["address"], None, 20)]).balances[0]
    as_segwit = fetch(bitcoin_chain_config, bitcoin_endpoints, [WalletRef(tpub["address"], "p2wpkh", 20)]).balances[0]
    assert as_legacy.amount == 0 and as_legacy.details["script_type"] == "p2pkh"
    assert str(as_segwit.amount) == tpub["balances"]["native"]


def test_an_incremental_scan_uses_the_cursor_and_fewer_requests(bitcoin_devnet, bitcoin_chain_config, bitcoin_endpoints):
    w = bitcoin_devnet.wallet("Demo BIP-84")
    wallet = WalletRef(w["address"], None, 20)
    full = fetch(bitcoin_chain_config, bitcoin_endpoints, [wallet])
    again = fetch(bitcoin_chain_config, bitcoin_endpoints, [wallet], cursors=json.loads(json.dumps(full.cursors)))
    assert full.balances[0].details["scan"] == "full" and again.balances[0].details["scan"] == "incremental"
    assert again.request_count < full.request_count
    assert (again.balances[0].amount, again.balances[0].unconfirmed) == (full.balances[0].amount, full.balances[0].unconfirmed)
    assert again.balances[0].details["addresses"] == full.balances[0].details["addresses"]
    assert again.cursors[w["address"]]["with_history"] == full.cursors[w["address"]]["with_history"]


def test_a_cursor_of_another_key_is_ignored(bitcoin_devnet, bitcoin_chain_config, bitcoin_endpoints):
    w = bitcoin_devnet.wallet("Demo BIP-84")
    bogus = {w["address"]: {"v": 1, "script_type": "p2wpkh", "gap_limit": 20, "receive": {"used_max": 0, "addresses": ["bcrt1qxlllmsjy83hm756ly78gpvzyn5mwmsy68gwhy0"]}, "change": {"used_max": -1, "addresses": []}, "with_history": []}}
    result = fetch(bitcoin_chain_config, bitcoin_endpoints, [WalletRef(w["address"], None, 20)], cursors=bogus)
    assert result.balances[0].details["scan"] == "full"
    assert str(result.balances[0].amount) == w["balances"]["native"]


def test_it_refuses_private_keys_and_other_networks(bitcoin_chain_config, bitcoin_endpoints):
    xprv = "tprv8ZgxMBicQKsPd7Uf69XL1XwhmjHopUGep8GuEiJDZmbQz6o58LninorQAfcKZWARbtRtfnLcJ5MQ2AtHcQJCCRUcMRvmDUjyEmNUWwx8UbK"
    adapter = BitcoinAdapter(bitcoin_chain_config, bitcoin_endpoints)
    with pytest.raises(SecretRefused) as err:
        adapter.fetch(FetchRequest(wallets=(WalletRef(xprv),)))
    assert xprv[4:30] not in str(err.value)
    with pytest.raises(InvalidAddress, match="not regtest"):
        adapter.normalize_address("bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu")
    assert adapter.normalize_address("BCRT1QXLLLMSJY83HM756LY78GPVZYN5MWMSY68GWHY0").address == "bcrt1qxlllmsjy83hm756ly78gpvzyn5mwmsy68gwhy0"
