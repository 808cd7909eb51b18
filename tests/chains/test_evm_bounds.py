"""RPC-call bounds: one wallet x 2,000 listed tokens costs at most 5 eth_call."""

from __future__ import annotations

import httpx

from chains.base import FUNGIBLE, AssetRef, EndpointConfig, FetchRequest, WalletRef
from chains.endpoints import EndpointHealth
from chains.evm.adapter import EvmAdapter
from chains.evm.address import to_checksum

FIXED_BALANCE = 123_456_789


def fixed_balance_code(value: int) -> str:
    """Runtime code answering every call with one uint256: PUSH32 value, MSTORE at 0, RETURN 32 bytes."""
    return "0x7f" + value.to_bytes(32, "big").hex() + "60005260206000f3"


def install_tokens(url: str, count: int, value: int) -> list[str]:
    """``count`` token contracts at deterministic addresses, set in one JSON-RPC batch of anvil_setCode."""
    addresses = [to_checksum("0x" + (0xB0B0_0000_0000_0000_0000_0000_0000_0000_0000_0000 + i).to_bytes(20, "big").hex()) for i in range(count)]
    code = fixed_balance_code(value)
    batch = [{"jsonrpc": "2.0", "id": i, "method": "anvil_setCode", "params": [a, code]} for i, a in enumerate(addresses)]
    replies = httpx.post(url, json=batch, timeout=60).json()
    assert all("error" not in r for r in replies)
    return addresses


def test_one_wallet_with_2000_listed_tokens_needs_at_most_5_eth_calls(evm_devnet, evm_chain_config, evm_snapshot, rpc_proxy):
    tokens = install_tokens(evm_devnet.url, 2000, FIXED_BALANCE)
    known = tuple(AssetRef(kind=FUNGIBLE, address=t, symbol=f"T{i}", name=f"Token {i}", decimals=18, standard="erc20")
                  for i, t in enumerate(tokens))
    empty = evm_devnet.wallet("Empty")["address"]
    adapter = EvmAdapter(evm_chain_config, [EndpointConfig(url=rpc_proxy.url)], health=EndpointHealth())
    res = adapter.fetch(FetchRequest(wallets=(WalletRef(empty),), known_assets=known))
    eth_calls = rpc_proxy.calls("eth_call")
    assert len(eth_calls) <= 5
    assert all(call["params"][1] == hex(res.height) for call in eth_calls)  # all pinned to one block
    got = {b.asset.address: b.amount for b in res.balances if b.asset.address}
    assert got == {t: FIXED_BALANCE for t in tokens}
    assert res.problems == ()
