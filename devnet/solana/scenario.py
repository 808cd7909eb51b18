"""Demo state on the LiteSVM devnet: wallets with SOL, SPL and Token-2022 tokens, NFTs, stake and a stake pool.

Everything is created over JSON-RPC: real transactions (airdrop, create mint, create ATA, mint_to,
set_authority, Token-2022 mint with the metadata extension) where LiteSVM has the program, and the
devnet-only ``devnet_setAccount`` for Metaplex metadata, stake accounts and the spl-stake-pool
``StakePool`` account (those programs are not loaded), in the programs' own on-chain layouts.
Keys come from fixed seeds so every run yields the same addresses; secret keys never leave here.

History: the clock is set a year back before the first transaction (``devnet_setClock``); SOL and
token payments between the demo wallets and an outside "dave" follow on days spread over the year,
each paid back later so the final balances stay what they were. Each wallet's ``ledger`` lists its
balance changes as ``[unix time, asset key, base units]`` (times are the day's clock setting; the
transactions land within seconds of it).
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import time
from typing import Any

from solders.hash import Hash
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.system_program import ID as SYSTEM_PROGRAM
from solders.system_program import CreateAccountParams, TransferParams, create_account, transfer
from solders.token.associated import get_associated_token_address
from solders.transaction import Transaction

import httpx

from devnet.common import rpc as _one_shot_rpc

TOKEN_PROGRAM = Pubkey.from_string("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA")
TOKEN_2022_PROGRAM = Pubkey.from_string("TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb")
ATA_PROGRAM = Pubkey.from_string("ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL")
METADATA_PROGRAM = Pubkey.from_string("metaqbxxUerdq28cj1RbAWkYQm3ybzjb6a8bt518x1s")
STAKE_PROGRAM = Pubkey.from_string("Stake11111111111111111111111111111111111111")
STAKE_POOL_PROGRAM = Pubkey.from_string("SPoo1Ku8WFXoNDMHPsrGSTSG1Y47rzgn41SLUNakuHy")
SLOTS_PER_EPOCH = 432_000
DEMO_EPOCH = 10  # the scenario runs in this epoch, so stake can be active, activating or deactivating
STAKE_POOL_ACCOUNT_SIZE = 611  # what spl-stake-pool allocates (get_packed_len::<StakePool>)
LAMPORTS_PER_SOL = 1_000_000_000
U64_MAX = 2**64 - 1
METADATA_ACCOUNT_SIZE = 679  # Metaplex allocates the maximum size and zero-pads
STAKE_ACCOUNT_SIZE = 200
TOKEN_METADATA_INITIALIZE = hashlib.sha256(b"spl_token_metadata_interface:initialize_account").digest()[:8]
DAY = 86_400
LAMPORTS_PER_SIGNATURE = 5_000  # LiteSVM's (and the clusters') base fee
PIXEL_PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="

CHAIN = {"slug": "solana-local", "name": "Solana (local)", "network": "devnet", "native_symbol": "SOL",
         "native_name": "Solana", "native_decimals": 9}  # + "genesis_hash", read from the devnet by run_scenario


def keypair(name: str) -> Keypair:
    """A fixed keypair for ``name`` (devnet only: the seed is public)."""
    return Keypair.from_seed(hashlib.sha256(f"chainfolio-solana-devnet:{name}".encode()).digest())


def borsh_string(text: str, pad_to: int | None = None) -> bytes:
    raw = text.encode()
    if pad_to is not None:
        raw = raw.ljust(pad_to, b"\0")  # Metaplex pads name/symbol/uri with NULs
    return struct.pack("<I", len(raw)) + raw


def metadata_pda(mint: Pubkey) -> Pubkey:
    return Pubkey.find_program_address([b"metadata", bytes(METADATA_PROGRAM), bytes(mint)], METADATA_PROGRAM)[0]


def metaplex_metadata(*, update_authority: Pubkey, mint: Pubkey, name: str, symbol: str, uri: str,
                      token_standard: int, collection: Pubkey | None = None, creator: Pubkey | None = None) -> bytes:
    """A Metaplex Token Metadata account (MetadataV1, Borsh), as the program writes it."""
    out = bytes([4]) + bytes(update_authority) + bytes(mint)
    out += borsh_string(name, 32) + borsh_string(symbol, 10) + borsh_string(uri, 200)
    out += struct.pack("<H", 500)
    out += (bytes([1]) + struct.pack("<I", 1) + bytes(creator) + bytes([1, 100])) if creator else bytes([0])
    out += bytes([0, 1])  # primary_sale_happened, is_mutable
    out += bytes([1, 255])  # edition_nonce Some(255)
    out += bytes([1, token_standard])
    out += (bytes([1, 1]) + bytes(collection)) if collection else bytes([0])
    out += bytes([0, 0, 0])  # uses, collection_details, programmable_config: None
    return out.ljust(METADATA_ACCOUNT_SIZE, b"\0")


def stake_account(*, staker: Pubkey, withdrawer: Pubkey, rent_reserve: int, vote: Pubkey | None = None,
                  delegated: int = 0, activation_epoch: int = 0, deactivation_epoch: int = U64_MAX) -> bytes:
    """StakeStateV2 (bincode): Initialized(Meta) or Stake(Meta, Stake, StakeFlags), 200 bytes."""
    meta = struct.pack("<Q", rent_reserve) + bytes(staker) + bytes(withdrawer) + struct.pack("<qQ", 0, 0) + bytes(32)
    if vote is None:
        return (struct.pack("<I", 1) + meta).ljust(STAKE_ACCOUNT_SIZE, b"\0")
    stake = bytes(vote) + struct.pack("<QQQd", delegated, activation_epoch, deactivation_epoch, 0.25) + struct.pack("<Q", 0)
    return (struct.pack("<I", 2) + meta + stake + bytes([0])).ljust(STAKE_ACCOUNT_SIZE, b"\0")


def stake_pool_account(*, address: Pubkey, manager: Pubkey, validator_list: Pubkey, reserve: Pubkey, pool_mint: Pubkey,
                       fee_account: Pubkey, total_lamports: int, pool_token_supply: int, last_update_epoch: int,
                       withdraw_bump: int) -> bytes:
    """spl-stake-pool's ``StakePool`` (Borsh, field by field as in the program's state.rs), zero-padded."""
    def fee(numerator: int, denominator: int) -> bytes:
        return struct.pack("<QQ", denominator, numerator)  # Fee { denominator, numerator }

    deposit_authority = Pubkey.find_program_address([bytes(address), b"deposit"], STAKE_POOL_PROGRAM)[0]
    out = bytes([1]) + bytes(manager) + bytes(manager) + bytes(deposit_authority) + bytes([withdraw_bump])
    out += bytes(validator_list) + bytes(reserve) + bytes(pool_mint) + bytes(fee_account) + bytes(TOKEN_PROGRAM)
    out += struct.pack("<QQQ", total_lamports, pool_token_supply, last_update_epoch)
    out += struct.pack("<qQ", 0, 0) + bytes(32)  # lockup
    out += fee(4, 100)  # epoch_fee: 4% of rewards
    out += bytes([0])  # next_epoch_fee: None
    out += bytes([0]) + bytes([0])  # preferred deposit / withdraw validator: None
    out += fee(0, 0) + fee(1, 1000)  # stake_deposit_fee, stake_withdrawal_fee
    out += bytes([0]) + bytes([0])  # next_stake_withdrawal_fee: None, stake_referral_fee
    out += bytes([0]) + fee(0, 0) + bytes([0])  # sol_deposit_authority: None, sol_deposit_fee, sol_referral_fee
    out += bytes([0]) + fee(1, 1000) + bytes([0])  # sol_withdraw_authority: None, sol_withdrawal_fee, next: None
    out += struct.pack("<QQ", pool_token_supply, total_lamports)  # last_epoch_pool_token_supply, _total_lamports
    return out.ljust(STAKE_POOL_ACCOUNT_SIZE, b"\0")


_SESSIONS: dict[str, httpx.Client] = {}


def rpc(url: str, method: str, params: list | None = None) -> Any:
    """One JSON-RPC call over a kept-alive connection (a new httpx client per call costs ~50 ms).
    Raises ``RuntimeError`` when the devnet answers an error object."""
    client = _SESSIONS.get(url)
    if client is None:
        client = _SESSIONS[url] = httpx.Client(timeout=30)
    try:
        reply = client.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}).json()
    except httpx.HTTPError:
        _SESSIONS.pop(url, None)
        return _one_shot_rpc(url, method, params)
    if reply.get("error"):
        raise RuntimeError(f"{method}: {reply['error']}")
    return reply["result"]


class _Builder:
    """Sends transactions paid and signed by one authority keypair."""

    def __init__(self, url: str, payer: Keypair) -> None:
        self.url, self.payer = url, payer

    def send(self, instructions: list[Instruction], extra_signers: tuple[Keypair, ...] = ()) -> str:
        blockhash = Hash.from_string(rpc(self.url, "getLatestBlockhash")["value"]["blockhash"])
        message = Message.new_with_blockhash(instructions, self.payer.pubkey(), blockhash)
        tx = Transaction([self.payer, *extra_signers], message, blockhash)
        return rpc(self.url, "sendTransaction", [base64.b64encode(bytes(tx)).decode(), {"encoding": "base64"}])

    def rent(self, size: int) -> int:
        return rpc(self.url, "getMinimumBalanceForRentExemption", [size])

    def set_account(self, key: Pubkey, data: bytes, owner: Pubkey, lamports: int | None = None) -> None:
        rpc(self.url, "devnet_setAccount", [str(key), {
            "lamports": lamports if lamports is not None else self.rent(len(data)),
            "data": [base64.b64encode(data).decode(), "base64"], "owner": str(owner)}])

    def create_mint(self, mint: Keypair, decimals: int, program: Pubkey = TOKEN_PROGRAM) -> None:
        self.send([
            create_account(CreateAccountParams(from_pubkey=self.payer.pubkey(), to_pubkey=mint.pubkey(),
                                               lamports=self.rent(82), space=82, owner=program)),
            initialize_mint2(mint.pubkey(), decimals, self.payer.pubkey(), program),
        ], (mint,))

    def create_token2022_with_metadata(self, mint: Keypair, decimals: int, name: str, symbol: str, uri: str) -> None:
        base_len = 165 + 1 + 4 + 64  # base, account type, MetadataPointer TLV
        fields = borsh_string(name) + borsh_string(symbol) + borsh_string(uri)
        full_len = base_len + 4 + 64 + len(fields) + 4
        authority = self.payer.pubkey()
        self.send([
            create_account(CreateAccountParams(from_pubkey=authority, to_pubkey=mint.pubkey(),
                                               lamports=self.rent(full_len), space=base_len, owner=TOKEN_2022_PROGRAM)),
            # InitializeMetadataPointer(authority, metadata address = the mint itself)
            Instruction(TOKEN_2022_PROGRAM, bytes([39, 0]) + bytes(authority) + bytes(mint.pubkey()),
                        [AccountMeta(mint.pubkey(), False, True)]),
            initialize_mint2(mint.pubkey(), decimals, authority, TOKEN_2022_PROGRAM),
            Instruction(TOKEN_2022_PROGRAM, TOKEN_METADATA_INITIALIZE + fields, [
                AccountMeta(mint.pubkey(), False, True), AccountMeta(authority, False, False),
                AccountMeta(mint.pubkey(), False, False), AccountMeta(authority, True, False)]),
        ], (mint,))

    def mint_to_ata(self, mint: Pubkey, owner: Pubkey, amount: int, program: Pubkey = TOKEN_PROGRAM) -> Pubkey:
        ata = get_associated_token_address(owner, mint, program)
        self.send([
            Instruction(ATA_PROGRAM, bytes([1]), [  # CreateIdempotent
                AccountMeta(self.payer.pubkey(), True, True), AccountMeta(ata, False, True),
                AccountMeta(owner, False, False), AccountMeta(mint, False, False),
                AccountMeta(SYSTEM_PROGRAM, False, False), AccountMeta(program, False, False)]),
            mint_to(mint, ata, self.payer.pubkey(), amount, program),
        ])
        return ata

    def set_mint_authority(self, mint: Pubkey, new_authority: Pubkey, program: Pubkey = TOKEN_PROGRAM) -> None:
        """SetAuthority(MintTokens) from the payer to ``new_authority`` (e.g. a pool's withdraw PDA)."""
        self.send([Instruction(program, bytes([6, 0, 1]) + bytes(new_authority), [
            AccountMeta(mint, False, True), AccountMeta(self.payer.pubkey(), True, False)])])

    def mint_to_new_account(self, mint: Pubkey, owner: Pubkey, amount: int, account: Keypair,
                            program: Pubkey = TOKEN_PROGRAM) -> None:
        """A second, non-associated token account of the same mint (balances must sum per mint)."""
        self.send([
            create_account(CreateAccountParams(from_pubkey=self.payer.pubkey(), to_pubkey=account.pubkey(),
                                               lamports=self.rent(165), space=165, owner=program)),
            Instruction(program, bytes([18]) + bytes(owner), [  # InitializeAccount3
                AccountMeta(account.pubkey(), False, True), AccountMeta(mint, False, False)]),
            mint_to(mint, account.pubkey(), self.payer.pubkey(), amount, program),
        ], (account,))


def initialize_mint2(mint: Pubkey, decimals: int, authority: Pubkey, program: Pubkey) -> Instruction:
    return Instruction(program, bytes([20, decimals]) + bytes(authority) + bytes([0]), [AccountMeta(mint, False, True)])


def mint_to(mint: Pubkey, dest: Pubkey, authority: Pubkey, amount: int, program: Pubkey) -> Instruction:
    return Instruction(program, bytes([7]) + struct.pack("<Q", amount), [
        AccountMeta(mint, False, True), AccountMeta(dest, False, True), AccountMeta(authority, True, False)])


def data_uri(obj: dict[str, Any]) -> str:
    return "data:application/json;base64," + base64.b64encode(json.dumps(obj).encode()).decode()


def run_scenario(url: str) -> dict[str, Any]:
    """Create the demo state on the devnet at ``url`` and return what a correct adapter must read.

    Raises ``RuntimeError`` if the devnet rejects a call (see ``devnet.common.rpc``).
    """
    b = _Builder(url, keypair("authority"))
    authority = b.payer.pubkey()
    alice, bob, carol = (keypair(n).pubkey() for n in ("alice", "bob", "carol"))
    if rpc(url, "getEpochInfo")["epoch"] < DEMO_EPOCH:
        rpc(url, "devnet_warpToSlot", [DEMO_EPOCH * SLOTS_PER_EPOCH])
    now = int(time.time())
    start = (now - 365 * DAY) // DAY * DAY + 9 * 3600  # 09:00 UTC a year ago: the demo wallets' first day
    clock = rpc(url, "devnet_setClock", [max(start, rpc(url, "getBlockTime", [rpc(url, "getSlot")]) + 1)])
    ledgers: dict[Pubkey, list[list[Any]]] = {alice: [], bob: [], carol: []}
    rpc(url, "requestAirdrop", [str(authority), 1_000 * LAMPORTS_PER_SOL])
    native = {alice: 12_500_000_000, bob: 3_000_000_000, carol: 750_000_000}
    for who, lamports in native.items():
        rpc(url, "requestAirdrop", [str(who), lamports])
        ledgers[who].append([clock, "native", lamports])

    assets: list[dict[str, Any]] = []
    balances: dict[Pubkey, dict[str, str]] = {w: {"native": str(v)} for w, v in native.items()}

    def add_balance(who: Pubkey, mint: Pubkey, amount: int) -> None:
        key = str(mint)
        balances[who][key] = str(int(balances[who].get(key, "0")) + amount)
        ledgers[who].append([clock, key, amount])

    # Two SPL tokens with Metaplex metadata (6 and 9 decimals).
    for seed, decimals, name, symbol in (("dusd", 6, "Demo Dollar", "DUSD"), ("dnine", 9, "Demo Nine", "DNINE")):
        mint = keypair(f"mint:{seed}")
        b.create_mint(mint, decimals)
        b.set_account(metadata_pda(mint.pubkey()), metaplex_metadata(
            update_authority=authority, mint=mint.pubkey(), name=name, symbol=symbol,
            uri=data_uri({"name": name, "symbol": symbol}), token_standard=2), METADATA_PROGRAM)
        assets.append({"address": str(mint.pubkey()), "symbol": symbol, "name": name, "decimals": decimals,
                       "kind": "fungible", "standard": "spl", "listed": True})
    dusd, dnine = keypair("mint:dusd").pubkey(), keypair("mint:dnine").pubkey()
    for who, mint, amount in ((alice, dusd, 1_234_567_890), (bob, dusd, 5_000_000), (alice, dnine, 42_000_000_001)):
        b.mint_to_ata(mint, who, amount)
        add_balance(who, mint, amount)
    b.mint_to_new_account(dusd, bob, 250_000, keypair("bob:dusd-extra"))
    add_balance(bob, dusd, 250_000)

    # An SPL token without any metadata: the adapter falls back to the first 6 characters of the mint.
    bare = keypair("mint:bare")
    b.create_mint(bare, 2)
    assets.append({"address": str(bare.pubkey()), "symbol": str(bare.pubkey())[:6], "name": "", "decimals": 2,
                   "kind": "fungible", "standard": "spl", "listed": True})
    b.mint_to_ata(bare.pubkey(), bob, 12_345)
    add_balance(bob, bare.pubkey(), 12_345)

    # A Token-2022 token whose metadata lives in the mint (metadata pointer + TokenMetadata extensions).
    t22 = keypair("mint:d22")
    b.create_token2022_with_metadata(t22, 9, "Demo Twenty-Two", "D22", "https://example.invalid/d22.json")
    assets.append({"address": str(t22.pubkey()), "symbol": "D22", "name": "Demo Twenty-Two", "decimals": 9,
                   "kind": "fungible", "standard": "token2022", "listed": True})
    for who, amount in ((alice, 7_000_000_000), (bob, 1)):
        b.mint_to_ata(t22.pubkey(), who, amount, TOKEN_2022_PROGRAM)
        add_balance(who, t22.pubkey(), amount)

    # NFTs: one in a verified collection (alice), one standalone (bob).
    nfts: dict[Pubkey, list[dict[str, str]]] = {alice: [], bob: [], carol: []}
    collection = keypair("mint:collection")
    b.create_mint(collection, 0)
    b.mint_to_ata(collection.pubkey(), authority, 1)
    b.set_account(metadata_pda(collection.pubkey()), metaplex_metadata(
        update_authority=authority, mint=collection.pubkey(), name="Demo Collection", symbol="DEMO",
        uri=data_uri({"name": "Demo Collection"}), token_standard=0), METADATA_PROGRAM)
    assets.append({"address": str(collection.pubkey()), "symbol": "DEMO", "name": "Demo Collection", "decimals": 0,
                   "kind": "nft_collection", "standard": "spl", "listed": True})
    for seed, who, name, symbol, in_collection in (("nft:demo-1", alice, "Demo Collectible #1", "DEMO", True),
                                                   ("nft:kitten", bob, "Lonely Kitten", "KIT", False)):
        mint = keypair(seed)
        b.create_mint(mint, 0)
        b.mint_to_ata(mint.pubkey(), who, 1)
        ledgers[who].append([clock, str(mint.pubkey()), 1])
        uri = data_uri({"name": name, "description": f"{name} on the devnet", "image": f"data:image/png;base64,{PIXEL_PNG}"})
        b.set_account(metadata_pda(mint.pubkey()), metaplex_metadata(
            update_authority=authority, mint=mint.pubkey(), name=name, symbol=symbol, uri=uri, token_standard=0,
            collection=collection.pubkey() if in_collection else None, creator=authority), METADATA_PROGRAM)
        collection_mint = str(collection.pubkey()) if in_collection else str(mint.pubkey())
        if not in_collection:
            assets.append({"address": collection_mint, "symbol": symbol, "name": name, "decimals": 0,
                           "kind": "nft_collection", "standard": "spl", "listed": True})
        nfts[who].append({"collection": collection_mint, "token_id": str(mint.pubkey()), "amount": "1", "name": name})

    # Native stake (legs named for what the lamports are, at epoch DEMO_EPOCH): alice delegates 5 SOL
    # (active since epoch 3, plus 0.1 SOL above the delegation) and 1 SOL activating this epoch; bob
    # withdraws an undelegated account and one deactivating this epoch.
    rent_reserve = b.rent(STAKE_ACCOUNT_SIZE)
    vote = keypair("vote").pubkey()
    positions: dict[Pubkey, list[dict[str, Any]]] = {alice: [], bob: [], carol: []}

    def stake(name: str, owner: Pubkey, lamports: int, legs: list[tuple[int, str]], **layout: Any) -> None:
        key = keypair(name).pubkey()
        b.set_account(key, stake_account(rent_reserve=rent_reserve, **layout), STAKE_PROGRAM, lamports=lamports)
        positions[owner].append({"protocol": "solana-stake", "ref": str(key), "accounts_for": [],
                                 "vote_account": str(layout["vote"]) if layout.get("vote") else None,
                                 "legs": [{"asset": "native", "amount": str(a), "role": r} for a, r in legs if a]})

    delegated, spare = 5 * LAMPORTS_PER_SOL, 100_000_000
    stake("stake:alice", alice, rent_reserve + delegated + spare,
          [(delegated, "staked"), (spare, "inactive"), (rent_reserve, "rent_reserve")],
          staker=alice, withdrawer=alice, vote=vote, delegated=delegated, activation_epoch=3)
    stake("stake:alice-new", alice, rent_reserve + LAMPORTS_PER_SOL,
          [(LAMPORTS_PER_SOL, "activating"), (rent_reserve, "rent_reserve")],
          staker=alice, withdrawer=alice, vote=vote, delegated=LAMPORTS_PER_SOL, activation_epoch=DEMO_EPOCH)
    stake("stake:bob", bob, rent_reserve + 2 * LAMPORTS_PER_SOL,
          [(2 * LAMPORTS_PER_SOL, "inactive"), (rent_reserve, "rent_reserve")], staker=authority, withdrawer=bob)
    stake("stake:bob-leaving", bob, rent_reserve + 3 * LAMPORTS_PER_SOL,
          [(3 * LAMPORTS_PER_SOL, "deactivating"), (rent_reserve, "rent_reserve")], staker=bob, withdrawer=bob,
          vote=vote, delegated=3 * LAMPORTS_PER_SOL, activation_epoch=2, deactivation_epoch=DEMO_EPOCH)

    # An SPL stake pool (jitoSOL-style): its pool mint is minted to bob and to the authority, then handed
    # to the pool's withdraw PDA as the program does; the pool account holds the exchange rate.
    pool_key, lst = keypair("stake-pool").pubkey(), keypair("mint:dsol")
    withdraw_pda, bump = Pubkey.find_program_address([bytes(pool_key), b"withdraw"], STAKE_POOL_PROGRAM)
    b.create_mint(lst, 9)
    b.set_account(metadata_pda(lst.pubkey()), metaplex_metadata(
        update_authority=authority, mint=lst.pubkey(), name="Demo Staked SOL", symbol="dSOL",
        uri=data_uri({"name": "Demo Staked SOL", "symbol": "dSOL"}), token_standard=2), METADATA_PROGRAM)
    assets.append({"address": str(lst.pubkey()), "symbol": "dSOL", "name": "Demo Staked SOL", "decimals": 9,
                   "kind": "fungible", "standard": "spl", "listed": True})
    held, rest = 12_345_678_901, 987_654_321_099
    b.mint_to_ata(lst.pubkey(), bob, held)
    add_balance(bob, lst.pubkey(), held)
    fee_account = b.mint_to_ata(lst.pubkey(), authority, rest)
    b.set_mint_authority(lst.pubkey(), withdraw_pda)
    supply, total_lamports = held + rest, 1_073_500_000_123
    b.set_account(pool_key, stake_pool_account(
        address=pool_key, manager=authority, validator_list=keypair("stake-pool:list").pubkey(), reserve=keypair("stake-pool:reserve").pubkey(),
        pool_mint=lst.pubkey(), fee_account=fee_account, total_lamports=total_lamports, pool_token_supply=supply,
        last_update_epoch=DEMO_EPOCH, withdraw_bump=bump), STAKE_POOL_PROGRAM)
    # calc_lamports_withdraw_amount: floor(pool tokens * total_lamports / pool_token_supply)
    positions[bob].append({"protocol": "spl-stake-pool", "ref": str(pool_key), "accounts_for": [str(lst.pubkey())],
                           "vote_account": None,
                           "legs": [{"asset": "native", "amount": str(held * total_lamports // supply), "role": "staked"}]})

    _history(url, b, start, ledgers, {"alice": alice, "bob": bob, "carol": carol, "dusd": dusd, "dnine": dnine,
                                      "d22": t22.pubkey()})
    rpc(url, "devnet_setClock", [max(now, int(time.time()))])  # back to the real clock
    for who in (alice, bob, carol):  # the payments in and out leave every balance as it was
        on_chain = rpc(url, "getBalance", [str(who)])["value"]
        if not sum(d for _, k, d in ledgers[who] if k == "native") == on_chain == int(balances[who]["native"]):
            raise RuntimeError("the history changed a demo wallet's SOL balance")

    labels = {alice: "Alice (tokens, NFT, active and activating stake)",
              bob: "Bob (2 DUSD accounts, NFT, inactive stake, dSOL)",
              carol: "Carol (SOL only)"}
    return {
        "family": "solana",
        "url": url,
        "chain": {**CHAIN, "genesis_hash": rpc(url, "getGenesisHash")},
        "assets": assets,
        "wallets": [{"address": str(w), "label": labels[w], "balances": balances[w], "nfts": nfts[w],
                     "positions": sorted(positions[w], key=_position_order), "ledger": ledgers[w]} for w in (alice, bob, carol)],
        "height": rpc(url, "getSlot"),
    }


def transfer_checked(source: Pubkey, mint: Pubkey, dest: Pubkey, owner: Pubkey, amount: int, decimals: int,
                     program: Pubkey = TOKEN_PROGRAM) -> Instruction:
    return Instruction(program, bytes([12]) + struct.pack("<QB", amount, decimals), [
        AccountMeta(source, False, True), AccountMeta(mint, False, False), AccountMeta(dest, False, True),
        AccountMeta(owner, True, False)])


# Slots skipped before each payment of the history: gaps as on a real cluster, yet within DEMO_EPOCH
# (a day is 216,000 slots on a cluster; the stake demo needs the epoch to stay put).
HISTORY_SLOT_GAP = 2_000
# (day, from, to, asset, amount, who pays the fee): every payment has its way back later on.
HISTORY = (
    (30, "alice", "dave", "native", 1_500_000_000, "alice"),
    (45, "dave", "alice", "d22", 500_000_000, "authority"),
    (60, "dave", "carol", "native", 250_000_000, "authority"),
    (90, "bob", "dave", "dusd", 2_000_000, "authority"),
    (120, "alice", "dave", "dnine", 1_000_000_000, "authority"),
    (150, "carol", "dave", "native", 250_000_000, "authority"),
    (200, "dave", "alice", "native", 1_500_000_000 + LAMPORTS_PER_SIGNATURE, "authority"),
    (250, "alice", "dave", "d22", 500_000_000, "alice"),
    (251, "dave", "alice", "native", LAMPORTS_PER_SIGNATURE, "authority"),
    (300, "dave", "bob", "dusd", 2_000_000, "dave"),
    (330, "dave", "alice", "dnine", 1_000_000_000, "dave"),
)


def _history(url: str, b: "_Builder", start: int, ledgers: dict[Pubkey, list[list[Any]]], named: dict[str, Pubkey]) -> None:
    """The payments of ``HISTORY``, each on its day (the clock set first), recorded in the ledgers."""
    dave = keypair("dave")
    signers = {"alice": keypair("alice"), "bob": keypair("bob"), "carol": keypair("carol"), "dave": dave, "authority": b.payer}
    who = {**{n: named[n] for n in ("alice", "bob", "carol")}, "dave": dave.pubkey()}
    mints = {"dusd": (named["dusd"], 6, TOKEN_PROGRAM), "dnine": (named["dnine"], 9, TOKEN_PROGRAM),
             "d22": (named["d22"], 9, TOKEN_2022_PROGRAM)}
    rpc(url, "requestAirdrop", [str(dave.pubkey()), 10 * LAMPORTS_PER_SOL])
    for mint, decimals, program in mints.values():  # dave's token accounts, with something to send
        b.mint_to_ata(mint, dave.pubkey(), 10**decimals * 100, program)
    for day, src, dst, asset, amount, payer in HISTORY:
        rpc(url, "devnet_warpToSlot", [rpc(url, "getSlot") + HISTORY_SLOT_GAP])
        at = rpc(url, "devnet_setClock", [start + day * DAY + 3600 * (day % 7)])
        if asset == "native":
            ix = transfer(TransferParams(from_pubkey=who[src], to_pubkey=who[dst], lamports=amount))
        else:
            mint, decimals, program = mints[asset]
            ix = transfer_checked(get_associated_token_address(who[src], mint, program), mint,
                                  get_associated_token_address(who[dst], mint, program), who[src], amount, decimals, program)
        payer_kp = signers[payer]
        extra = () if signers[src].pubkey() == payer_kp.pubkey() else (signers[src],)  # the sender signs too
        _Builder(url, payer_kp).send([ix], extra)
        key = "native" if asset == "native" else str(mints[asset][0])
        for name, sign in ((src, -1), (dst, 1)):
            if who[name] in ledgers:
                ledgers[who[name]].append([at, key, sign * amount])
        if who.get(payer) in ledgers:
            ledgers[who[payer]].append([at, "native", -LAMPORTS_PER_SIGNATURE * (1 + len(extra))])


def _position_order(position: dict[str, Any]) -> tuple[int, str]:
    """The adapter's order: protocol by protocol (registry order), accounts by address."""
    return (("solana-stake", "spl-stake-pool").index(position["protocol"]), position["ref"])


def fund_wallets(url: str, count: int, *, mint: Pubkey | None = None) -> list[str]:
    """Benchmark helper: ``count`` more wallets (fixed seeds ``bench:<i>``) with SOL and, when ``mint``
    (a 6-decimal SPL mint of the scenario authority) is given, one token account each."""
    b = _Builder(url, keypair("authority"))
    out = []
    for i in range(count):
        who = keypair(f"bench:{i}").pubkey()
        rpc(url, "requestAirdrop", [str(who), LAMPORTS_PER_SOL + i])
        if mint is not None:
            b.mint_to_ata(mint, who, 1_000_000 + i)
        out.append(str(who))
    return out


if __name__ == "__main__":
    import sys

    print(json.dumps(run_scenario(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8899"), indent=2))
