"""Deploy the demo contracts on a fresh anvil and fund the demo wallets with known amounts."""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import sys
import time
from typing import Any

import httpx
from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector, keccak, to_checksum_address

from devnet.common import ROOT, VAR, wait_until
from devnet.evm.ens import deploy_ens
from devnet.evm.history import add_history
from devnet.evm.node import CHAIN_ID, artifact
from devnet.evm.protocols import deploy_defi

_CLIENT: httpx.Client | None = None


def rpc(url: str, method: str, params: list | None = None) -> Any:
    """JSON-RPC over one kept-alive connection (the scenario sends ~60 requests). Raises ``RuntimeError``."""
    global _CLIENT
    if _CLIENT is None:
        _CLIENT = httpx.Client(timeout=30)
    reply = _CLIENT.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}).json()
    if reply.get("error"):
        raise RuntimeError(f"{method}: {reply['error']}")
    return reply["result"]


# Well-known anvil dev accounts (mnemonic "test test ... junk"): unlocked on every anvil.
DEPLOYER = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
ALICE = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
BOB = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
# Deterministic address nobody holds a key for: the empty wallet.
EMPTY = to_checksum_address(keccak(b"chainfolio:empty-demo-wallet")[-20:])

ETH = 10**18
FEED_DECIMALS = 8
# The contracts are deployed this many days back, so a year of daily history fits after them.
PAST_DAYS = 400

CHAIN = {
    "slug": "anvil",
    "name": "Anvil (local)",
    "chain_id": CHAIN_ID,
    "network": "devnet",
    "native_symbol": "ETH",
    "native_name": "Ether",
    "native_decimals": 18,
}


def _selector(signature: str) -> bytes:
    return function_signature_to_4byte_selector(signature)


def _send(url: str, sender: str, data: bytes, to: str | None = None, value: int = 0) -> dict[str, Any]:
    tx: dict[str, Any] = {"from": sender, "data": "0x" + data.hex(), "gas": hex(6_000_000)}
    if to:
        tx["to"] = to
    if value:
        tx["value"] = hex(value)
    tx_hash = rpc(url, "eth_sendTransaction", [tx])
    # anvil automines, but the receipt can show up a moment after the hash under load.
    receipt = wait_until(lambda: rpc(url, "eth_getTransactionReceipt", [tx_hash]), timeout_s=15, interval_s=0.01,
                         what=f"receipt of {tx_hash}")
    if not receipt or receipt.get("status") != "0x1":
        raise RuntimeError(f"transaction failed: {tx_hash} {receipt}")
    return receipt


def deploy(url: str, name: str, types: list[str], args: list[Any], sender: str = DEPLOYER) -> str:
    """Deploy artifact ``name`` with constructor ``args``; returns the checksummed address.
    Raises ``RuntimeError`` when the deployment reverts."""
    code = bytes.fromhex(artifact(name)["bytecode"][2:]) + encode(types, args)
    return to_checksum_address(_send(url, sender, code)["contractAddress"])


def call(url: str, sender: str, to: str, signature: str, types: list[str], args: list[Any]) -> None:
    """Send a transaction calling ``signature`` on ``to``. Raises ``RuntimeError`` when it reverts."""
    _send(url, sender, _selector(signature) + encode(types, args), to=to)


def data_json_uri(obj: dict[str, Any]) -> str:
    return "data:application/json;base64," + base64.b64encode(json.dumps(obj).encode()).decode()


def pixel_punk_png(seed: int, size: int = 12, scale: int = 8) -> str:
    """A small, deterministic, left-right symmetric pixel face as a ``data:image/png;base64`` URI
    (stdlib only), so the demo gallery shows real raster images without the internet."""
    import struct
    import zlib

    palette = [(0x63, 0x66, 0xF1), (0x10, 0xB9, 0x81), (0xF5, 0x9E, 0x0B), (0xEF, 0x44, 0x44)]
    fg, bg = palette[seed % len(palette)], (0xF3, 0xF4, 0xF6)
    bits = int.from_bytes(keccak(f"punk:{seed}".encode())[:18], "big")
    cells = [[False] * size for _ in range(size)]
    for y in range(2, size - 2):
        for x in range(2, size // 2):
            on = bool(bits & 1)
            bits >>= 1
            cells[y][x] = cells[y][size - 1 - x] = on
    rows = b""
    for y in range(size * scale):
        row = bytearray([0])  # filter: none
        for x in range(size * scale):
            row += bytes(fg if cells[y // scale][x // scale] else bg)
        rows += bytes(row)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", size * scale, size * scale, 8, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")
    return "data:image/png;base64," + base64.b64encode(png).decode()


def _bytes32(text: str) -> bytes:
    return text.encode().ljust(32, b"\0")


def run_scenario(url: str) -> dict[str, Any]:
    """Deploy the demo tokens, NFTs and price feeds and fund ALICE, BOB (and leave EMPTY empty).

    Deterministic: on a fresh anvil the same addresses and amounts come out every time. Returns
    the JSON-serialisable expectations ``{family, url, chain, assets, wallets, oracles, prices,
    height}``: amounts are decimal strings of base units, ``assets[].listed`` says whether the asset
    belongs in the admin token list (unlisted ones are found by the Transfer-log scan). The
    reverting token (BRKN) is listed but absent from the wallets' ``balances``: its balanceOf
    reverts. Raises ``RuntimeError`` when a transaction fails, ``TimeoutError`` without a receipt.
    """
    rpc(url, "anvil_setTime", [int(time.time()) - PAST_DAYS * 86400])
    assets: list[dict[str, Any]] = []
    balances: dict[str, dict[str, int]] = {ALICE: {}, BOB: {}, EMPTY: {}}
    nfts: dict[str, list[dict[str, Any]]] = {ALICE: [], BOB: [], EMPTY: []}
    oracles: dict[str, str] = {}
    prices: dict[str, str] = {}

    def feed(description: str, price: str) -> str:
        whole, _, frac = price.partition(".")
        answer = int(whole) * 10**FEED_DECIMALS + int((frac + "0" * FEED_DECIMALS)[:FEED_DECIMALS] or 0)
        return deploy(url, "PriceFeed", ["uint8", "string", "int256"], [FEED_DECIMALS, description, answer])

    def erc20(name: str, symbol: str, decimals: int, *, listed: bool, price: str | None = None,
              spam: bool = False, contract: str = "DemoToken") -> str:
        if contract == "Bytes32Token":
            address = deploy(url, contract, ["bytes32", "bytes32"], [_bytes32(name), _bytes32(symbol)])
        else:
            address = deploy(url, contract, ["string", "string", "uint8"], [name, symbol, decimals])
        oracle = None
        if price is not None:
            oracle = feed(f"{symbol} / USD", price)
            oracles[address], prices[address] = oracle, price
        assets.append({"address": address, "symbol": symbol, "name": name, "decimals": decimals,
                       "kind": "fungible", "standard": "erc20", "listed": listed, "oracle": oracle, "spam": spam})
        return address

    def mint(token: str, to: str, amount: int) -> None:
        call(url, DEPLOYER, token, "mint(address,uint256)", ["address", "uint256"], [to, amount])
        balances[to][token] = balances[to].get(token, 0) + amount

    # Native price feed first.
    oracles["native"] = feed("ETH / USD", "2500.00")
    prices["native"] = "2500.00"

    demo = erc20("Demo Token", "DEMO", 18, listed=True, price="12.34")
    dusd = erc20("Demo Dollar", "DUSD", 6, listed=True, price="1.00")
    whole = erc20("Whole Unit", "WHOLE", 0, listed=True, price="0.50")
    mkr = erc20("Maker-ish", "MKRX", 18, listed=True, price="1500.00", contract="Bytes32Token")
    broken = erc20("Broken Token", "BRKN", 18, listed=True, contract="RevertingToken")
    found = erc20("Discovered Coin", "DISC", 18, listed=False)
    spam = erc20("Claim reward at https://evil.example", "CLAIM", 18, listed=False, spam=True)

    mint(demo, ALICE, 1234_567890123456789012)  # 1234.567890123456789012 DEMO
    mint(demo, BOB, 1 * ETH)
    mint(dusd, ALICE, 2_500_000_000)  # 2500.000000 DUSD
    mint(dusd, BOB, 500_000)  # 0.5 DUSD
    mint(whole, ALICE, 42)
    mint(mkr, ALICE, 3_250_000_000_000_000_000)  # 3.25 MKRX
    mint(broken, ALICE, 100 * ETH)  # on chain, but balanceOf reverts: the adapter must report it
    balances[ALICE].pop(broken)
    mint(found, ALICE, 777 * ETH)  # not listed: only the Transfer-log scan finds it
    mint(spam, ALICE, 1_000_000 * ETH)
    mint(spam, BOB, 1_000_000 * ETH)

    # ERC-721 with data: URIs; token 3 goes to ALICE then moves to BOB (ownership must be re-checked).
    punks = deploy(url, "DemoNft", ["string", "string"], ["Demo Punks", "DPUNK"])
    assets.append({"address": punks, "symbol": "DPUNK", "name": "Demo Punks", "decimals": 0, "kind": "nft_collection",
                   "standard": "erc721", "listed": False, "oracle": None, "spam": False})
    for token_id, owner in ((1, ALICE), (2, ALICE), (3, ALICE)):
        # #1 points at an https image (shown when online), #2 and #3 carry their own raster image.
        image = f"https://img.example/punks/{token_id}.png" if token_id == 1 else pixel_punk_png(token_id)
        meta = {"name": f"Demo Punk #{token_id}", "description": "A devnet punk", "image": image}
        call(url, DEPLOYER, punks, "mint(address,uint256,string)", ["address", "uint256", "string"],
             [owner, token_id, data_json_uri(meta)])
    call(url, ALICE, punks, "transferFrom(address,address,uint256)", ["address", "address", "uint256"], [ALICE, BOB, 3])
    nfts[ALICE] += [{"collection": punks, "token_id": "1", "amount": "1", "name": "Demo Punk #1"},
                    {"collection": punks, "token_id": "2", "amount": "1", "name": "Demo Punk #2"}]
    nfts[BOB] += [{"collection": punks, "token_id": "3", "amount": "1", "name": "Demo Punk #3"}]

    # ERC-1155: ids 1 and 2 have their own data: URI, id 3 uses the {id} template (an http URL).
    items = deploy(url, "DemoMulti", ["string", "string", "string"],
                   ["Demo Items", "DITEM", "https://items.example/api/{id}.json"])
    assets.append({"address": items, "symbol": "DITEM", "name": "Demo Items", "decimals": 0, "kind": "nft_collection",
                   "standard": "erc1155", "listed": False, "oracle": None, "spam": False})
    for token_id, label in ((1, "Sword"), (2, "Shield")):
        call(url, DEPLOYER, items, "setUri(uint256,string)", ["uint256", "string"],
             [token_id, data_json_uri({"name": label, "image": f"ipfs://bafydemoitems/{token_id}.png"})])
    call(url, DEPLOYER, items, "mintBatch(address,uint256[],uint256[])", ["address", "uint256[]", "uint256[]"],
         [ALICE, [1, 2], [5, 10]])
    call(url, DEPLOYER, items, "mint(address,uint256,uint256)", ["address", "uint256", "uint256"], [BOB, 3, 1])
    nfts[ALICE] += [{"collection": items, "token_id": "1", "amount": "5", "name": "Sword"},
                    {"collection": items, "token_id": "2", "amount": "10", "name": "Shield"}]
    nfts[BOB] += [{"collection": items, "token_id": "3", "amount": "1", "name": ""}]

    ens = deploy_ens(url, DEPLOYER, {"demo.eth": ALICE, "bob.eth": BOB})  # expectations["ens"]: see deploy_ens
    # DeFi: Uniswap V2/V3, Aave V3, ERC-4626 vaults and LSTs, held by wallets of their own (CAROL, DAVE)
    # whose token balances move with interest, so they stay out of ``wallets`` and its exact balances.
    defi = deploy_defi(url)

    # Native balances last, so gas spent above does not matter.
    native = {ALICE: 12_500_000_000_000_000_000, BOB: 750_000_000_000_000_000, EMPTY: 0}
    for wallet, amount in native.items():
        rpc(url, "anvil_setBalance", [wallet, hex(amount)])
    rpc(url, "evm_mine", [])
    height = int(rpc(url, "eth_blockNumber"), 16)

    labels = {ALICE: "Alice (anvil #1)", BOB: "Bob (anvil #2)", EMPTY: "Empty wallet"}
    wallets = [
        {
            "address": wallet,
            "label": labels[wallet],
            "balances": {"native": str(native[wallet]), **{t: str(a) for t, a in balances[wallet].items()}},
            "nfts": nfts[wallet],
        }
        for wallet in (ALICE, BOB, EMPTY)
    ]
    return {"family": "evm", "url": url, "chain": dict(CHAIN), "assets": assets, "wallets": wallets,
            "oracles": oracles, "prices": prices, "height": height, "defi": defi, "ens": ens}


CACHE_DIR = VAR / "devnet-cache"
# What decides the chain the scenario builds: a change to any of these builds it afresh.
_CACHE_INPUTS = ("devnet/evm/*.py", "devnet/evm/artifacts/*.json", "devnet/package-lock.json", "devnet/common.py",
                 "chains/evm/protocols/v3math.py")


def _cache_key() -> str:
    digest = hashlib.sha256()
    for pattern in _CACHE_INPUTS:
        for path in sorted(ROOT.glob(pattern)):
            digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def run_scenario_cached(url: str) -> dict[str, Any]:
    """``run_scenario`` on a fresh anvil, or, when an earlier run of the same scenario code left its
    chain state under var/devnet-cache/, that state loaded with ``anvil_loadState`` (blocks, logs and
    contracts; eth_call at blocks before the load is not available). Deploying the protocols takes
    ~100 transactions; loading takes well under a second. Same expectations either way. Then a year
    of daily history up to now (``devnet.evm.history``: ``history`` in the expectations; the head's
    balances and prices are the scenario's)."""
    scenario = _deployed(url)
    history = add_history(url, scenario)
    return {**scenario, "history": history, "height": history["height"]}


def _deployed(url: str) -> dict[str, Any]:
    path = CACHE_DIR / f"evm-{_cache_key()}.json"
    try:
        cached = json.loads(path.read_text())
        state, scenario = cached["state"], cached["scenario"]
    except (OSError, ValueError, KeyError, TypeError):
        scenario = run_scenario(url)
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"state": rpc(url, "anvil_dumpState"), "scenario": scenario}))
        tmp.replace(path)  # atomic: a parallel test worker reads a whole file or none
        for stale in CACHE_DIR.glob("evm-*.json"):  # states of older scenario code
            if stale != path:
                stale.unlink(missing_ok=True)
        return scenario
    rpc(url, "anvil_loadState", [state])
    return {**scenario, "url": url}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url", nargs="?", default="http://127.0.0.1:8545")
    args = parser.parse_args(argv)
    print(json.dumps(run_scenario(args.url), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
