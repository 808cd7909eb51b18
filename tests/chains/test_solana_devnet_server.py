"""The LiteSVM devnet server answers in Solana's wire format: solders' own response parsers accept it."""

from __future__ import annotations

import base64
import json

import httpx
import pytest
from solders.pubkey import Pubkey
from solders.rpc import responses as R

pytestmark = pytest.mark.devnet

TOKEN = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
TOKEN_2022 = "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb"
STAKE = "Stake11111111111111111111111111111111111111"


def raw(url: str, method: str, params: list | None = None) -> str:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}
    return httpx.post(url, json=body, timeout=10).text


def wallet(scenario, index):
    return scenario["wallets"][index]


def asset(scenario, symbol):
    return next(a for a in scenario["assets"] if a["symbol"] == symbol)


def test_it_answers_balance_and_slot_in_solana_envelopes(solana_devnet):
    alice = wallet(solana_devnet.scenario, 0)
    resp = R.GetBalanceResp.from_json(raw(solana_devnet.url, "getBalance", [alice["address"]]))
    assert isinstance(resp, R.GetBalanceResp)
    assert resp.value == int(alice["balances"]["native"])
    assert resp.context.slot >= solana_devnet.scenario["height"]
    assert R.GetSlotResp.from_json(raw(solana_devnet.url, "getSlot")).value >= solana_devnet.scenario["height"]
    assert isinstance(R.GetLatestBlockhashResp.from_json(raw(solana_devnet.url, "getLatestBlockhash")), R.GetLatestBlockhashResp)
    assert isinstance(R.GetEpochInfoResp.from_json(raw(solana_devnet.url, "getEpochInfo")), R.GetEpochInfoResp)
    assert isinstance(R.GetVersionResp.from_json(raw(solana_devnet.url, "getVersion")), R.GetVersionResp)


def test_token_accounts_by_owner_parse_as_json_parsed(solana_devnet):
    bob = wallet(solana_devnet.scenario, 1)
    text = raw(solana_devnet.url, "getTokenAccountsByOwner", [bob["address"], {"programId": TOKEN}, {"encoding": "jsonParsed"}])
    resp = R.GetTokenAccountsByOwnerJsonParsedResp.from_json(text)
    assert isinstance(resp, R.GetTokenAccountsByOwnerJsonParsedResp), text[:300]
    dusd = asset(solana_devnet.scenario, "DUSD")["address"]
    total = 0
    for item in json.loads(text)["result"]["value"]:
        info = item["account"]["data"]["parsed"]["info"]
        assert item["account"]["data"]["program"] == "spl-token"
        assert info["owner"] == bob["address"]
        assert isinstance(info["tokenAmount"]["amount"], str)
        if info["mint"] == dusd:
            assert info["tokenAmount"]["decimals"] == 6
            total += int(info["tokenAmount"]["amount"])
    assert str(total) == bob["balances"][dusd]


def test_token_2022_accounts_and_mint_extensions(solana_devnet):
    alice = wallet(solana_devnet.scenario, 0)
    d22 = asset(solana_devnet.scenario, "D22")["address"]
    text = raw(solana_devnet.url, "getTokenAccountsByOwner", [alice["address"], {"programId": TOKEN_2022}, {"encoding": "jsonParsed"}])
    assert isinstance(R.GetTokenAccountsByOwnerJsonParsedResp.from_json(text), R.GetTokenAccountsByOwnerJsonParsedResp)
    (item,) = json.loads(text)["result"]["value"]
    assert item["account"]["data"]["program"] == "spl-token-2022"
    assert item["account"]["data"]["parsed"]["info"]["tokenAmount"]["amount"] == alice["balances"][d22]
    by_mint = raw(solana_devnet.url, "getTokenAccountsByOwner", [alice["address"], {"mint": d22}, {"encoding": "jsonParsed"}])
    assert len(json.loads(by_mint)["result"]["value"]) == 1

    mint_text = raw(solana_devnet.url, "getAccountInfo", [d22, {"encoding": "jsonParsed"}])
    assert isinstance(R.GetAccountInfoMaybeJsonParsedResp.from_json(mint_text), R.GetAccountInfoMaybeJsonParsedResp)
    info = json.loads(mint_text)["result"]["value"]["data"]["parsed"]["info"]
    meta = next(e for e in info["extensions"] if e["extension"] == "tokenMetadata")["state"]
    assert (meta["name"], meta["symbol"], info["decimals"]) == ("Demo Twenty-Two", "D22", 9)


def test_multiple_accounts_base64_and_the_100_key_limit(solana_devnet):
    mints = [a["address"] for a in solana_devnet.scenario["assets"]]
    missing = "11111111111111111111111111111112"
    text = raw(solana_devnet.url, "getMultipleAccounts", [mints + [missing], {"encoding": "base64"}])
    resp = R.GetMultipleAccountsResp.from_json(text)
    assert isinstance(resp, R.GetMultipleAccountsResp), text[:300]
    assert all(acc is not None for acc in resp.value[:-1]) and resp.value[-1] is None
    assert str(resp.value[0].owner) == TOKEN
    too_many = json.loads(raw(solana_devnet.url, "getMultipleAccounts", [[missing] * 101, {"encoding": "base64"}]))
    assert too_many["error"]["code"] == -32602


def test_program_accounts_with_memcmp_filters(solana_devnet):
    alice = wallet(solana_devnet.scenario, 0)
    for offset in (12, 44):
        params = [STAKE, {"encoding": "base64", "filters": [{"memcmp": {"offset": offset, "bytes": alice["address"]}}]}]
        text = raw(solana_devnet.url, "getProgramAccounts", params)
        resp = R.GetProgramAccountsResp.from_json(text)
        assert isinstance(resp, R.GetProgramAccountsResp), text[:300]
        assert sorted(str(a.pubkey) for a in resp.value) == sorted(p["ref"] for p in alice["positions"])
        assert len(resp.value[0].account.data) == 200
    sized = json.loads(raw(solana_devnet.url, "getProgramAccounts", [STAKE, {"encoding": "base64", "filters": [{"dataSize": 199}]}]))
    assert sized["result"] == []
    with_context = raw(solana_devnet.url, "getProgramAccounts", [STAKE, {"encoding": "base64", "withContext": True}])
    assert isinstance(R.GetProgramAccountsWithContextResp.from_json(with_context), R.GetProgramAccountsWithContextResp)


def test_signatures_for_address_are_indexed_by_the_server(solana_devnet):
    alice = wallet(solana_devnet.scenario, 0)
    text = raw(solana_devnet.url, "getSignaturesForAddress", [alice["address"], {"limit": 2}])
    resp = R.GetSignaturesForAddressResp.from_json(text)
    assert isinstance(resp, R.GetSignaturesForAddressResp), text[:300]
    assert len(resp.value) == 2 and resp.value[0].slot >= resp.value[1].slot


def test_airdrop_and_transfer_are_real_transactions(solana_devnet):
    from solders.hash import Hash
    from solders.keypair import Keypair
    from solders.message import Message
    from solders.system_program import TransferParams, transfer
    from solders.transaction import Transaction

    url = solana_devnet.url
    payer, dest = Keypair.from_seed(bytes([7] * 32)), Keypair.from_seed(bytes([8] * 32)).pubkey()
    airdrop = raw(url, "requestAirdrop", [str(payer.pubkey()), 2_000_000_000])
    assert isinstance(R.RequestAirdropResp.from_json(airdrop), R.RequestAirdropResp)
    slot_before = json.loads(raw(url, "getSlot"))["result"]
    blockhash = Hash.from_string(json.loads(raw(url, "getLatestBlockhash"))["result"]["value"]["blockhash"])
    tx = Transaction([payer], Message.new_with_blockhash(
        [transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=dest, lamports=1_000_000))], payer.pubkey(), blockhash), blockhash)
    sent = raw(url, "sendTransaction", [base64.b64encode(bytes(tx)).decode(), {"encoding": "base64"}])
    assert isinstance(R.SendTransactionResp.from_json(sent), R.SendTransactionResp), sent
    assert json.loads(raw(url, "getBalance", [str(dest)]))["result"]["value"] == 1_000_000
    assert json.loads(raw(url, "getSlot"))["result"] == slot_before + 1
    again = json.loads(raw(url, "sendTransaction", [base64.b64encode(bytes(tx)).decode(), {"encoding": "base64"}]))
    assert again["error"]["code"] == -32002  # replay refused (blockhash expired / already processed)
    poor = Keypair.from_seed(bytes([9] * 32))
    raw(url, "requestAirdrop", [str(poor.pubkey()), 1_000_000])
    blockhash = Hash.from_string(json.loads(raw(url, "getLatestBlockhash"))["result"]["value"]["blockhash"])
    tx = Transaction([poor], Message.new_with_blockhash(
        [transfer(TransferParams(from_pubkey=poor.pubkey(), to_pubkey=dest, lamports=5_000_000))], poor.pubkey(), blockhash), blockhash)
    failed = raw(url, "sendTransaction", [base64.b64encode(bytes(tx)).decode(), {"encoding": "base64"}])
    parsed = R.SendTransactionResp.from_json(failed)
    assert isinstance(parsed, R.SendTransactionPreflightFailureMessage), failed


def test_unknown_methods_bad_params_and_batches(solana_devnet):
    url = solana_devnet.url
    assert json.loads(raw(url, "getBlockProduction"))["error"]["code"] == -32601
    assert json.loads(raw(url, "getBalance", ["not-a-key"]))["error"]["code"] == -32602
    batch = httpx.post(url, json=[
        {"jsonrpc": "2.0", "id": 1, "method": "getSlot", "params": []},
        {"jsonrpc": "2.0", "id": 2, "method": "nope", "params": []},
    ], timeout=10).json()
    assert [r["id"] for r in batch] == [1, 2] and "result" in batch[0] and batch[1]["error"]["code"] == -32601
    assert httpx.post(url, content=b"{nope", timeout=10).json()["error"]["code"] == -32700


def test_cluster_identity_and_epoch(solana_devnet):
    """The devnet has its own genesis hash (no public cluster's) and runs in the scenario's epoch."""
    from chains.solana.adapter import GENESIS_HASHES

    genesis = R.GetGenesisHashResp.from_json(raw(solana_devnet.url, "getGenesisHash")).value
    assert str(genesis) == solana_devnet.scenario["chain"]["genesis_hash"] and str(genesis) not in GENESIS_HASHES.values()
    info = R.GetEpochInfoResp.from_json(raw(solana_devnet.url, "getEpochInfo")).value
    assert info.epoch == 10 and info.slots_in_epoch == 432_000 and info.absolute_slot // 432_000 == 10


def test_stake_pool_discovery_with_a_data_slice(solana_devnet):
    """getProgramAccounts on the stake-pool program: memcmp on the account type, only the pool mint back."""
    from chains.solana.protocols.stake_pool import POOL_MINT_OFFSET, STAKE_POOL_PROGRAM_ID

    params = [STAKE_POOL_PROGRAM_ID, {"encoding": "base64", "filters": [{"memcmp": {"offset": 0, "bytes": "2"}}],
                                      "dataSlice": {"offset": POOL_MINT_OFFSET, "length": 32}}]
    text = raw(solana_devnet.url, "getProgramAccounts", params)
    resp = R.GetProgramAccountsResp.from_json(text)
    assert isinstance(resp, R.GetProgramAccountsResp), text[:300]
    dsol = asset(solana_devnet.scenario, "dSOL")["address"]
    assert [(bytes(a.account.data), a.account.data and len(a.account.data)) for a in resp.value] == [
        (bytes(Pubkey.from_string(dsol)), 32)]


def test_warp_only_moves_forward(solana_devnet):
    slot = json.loads(raw(solana_devnet.url, "getSlot"))["result"]
    assert json.loads(raw(solana_devnet.url, "devnet_warpToSlot", [slot - 1]))["error"]["code"] == -32602


def test_signatures_page_with_before_until_and_limit(solana_devnet):
    alice = wallet(solana_devnet.scenario, 0)["address"]
    everything = json.loads(raw(solana_devnet.url, "getSignaturesForAddress", [alice]))["result"]
    assert len(everything) >= 4 and [e["slot"] for e in everything] == sorted((e["slot"] for e in everything), reverse=True)
    pages, before = [], None
    while True:
        config = {"limit": 2, **({"before": before} if before else {})}
        page = R.GetSignaturesForAddressResp.from_json(raw(solana_devnet.url, "getSignaturesForAddress", [alice, config])).value
        if not page:
            break
        pages += [str(s.signature) for s in page]
        before = str(page[-1].signature)
    assert pages == [e["signature"] for e in everything]
    until = everything[2]["signature"]
    newest = json.loads(raw(solana_devnet.url, "getSignaturesForAddress", [alice, {"until": until}]))["result"]
    assert [e["signature"] for e in newest] == [e["signature"] for e in everything[:2]]
    assert all(isinstance(e["blockTime"], int) for e in everything)


def test_transactions_carry_sol_and_token_balances_before_and_after(solana_devnet):
    """The history a backfill reads: every transaction of alice, with pre/post balances that solders'
    own parser accepts, replays her DUSD and SOL amounts."""
    from solders.transaction_status import EncodedConfirmedTransactionWithStatusMeta

    alice = wallet(solana_devnet.scenario, 0)
    dusd = asset(solana_devnet.scenario, "DUSD")["address"]
    sigs = [e["signature"] for e in json.loads(raw(solana_devnet.url, "getSignaturesForAddress", [alice["address"]]))["result"]]
    dusd_after, sol_changes = [], 0
    for sig in sigs:
        text = raw(solana_devnet.url, "getTransaction", [sig, {"encoding": "json", "maxSupportedTransactionVersion": 0}])
        resp = R.GetTransactionResp.from_json(text)
        assert isinstance(resp, R.GetTransactionResp) and isinstance(resp.value, EncodedConfirmedTransactionWithStatusMeta), text[:300]
        meta = resp.value.transaction.meta
        keys = json.loads(text)["result"]["transaction"]["message"]["accountKeys"]
        i = keys.index(alice["address"])
        sol_changes += meta.post_balances[i] - meta.pre_balances[i]
        for tb in meta.post_token_balances or []:
            if str(tb.owner) == alice["address"] and str(tb.mint) == dusd:
                dusd_after.append(int(tb.ui_token_amount.amount))
        b64 = raw(solana_devnet.url, "getTransaction", [sig, "base64"])
        assert isinstance(R.GetTransactionResp.from_json(b64), R.GetTransactionResp), b64[:300]
    assert dusd_after == [int(alice["balances"][dusd])]
    assert sol_changes == int(alice["balances"]["native"])  # every change of her SOL, from her airdrop on
    unknown = "1" * 64
    assert json.loads(raw(solana_devnet.url, "getTransaction", [unknown]))["result"] is None
