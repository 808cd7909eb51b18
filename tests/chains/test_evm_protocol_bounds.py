"""Call budget of positions: 200 wallets in every protocol cost at most 2 more eth_call rounds than balances."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from eth_utils import keccak, to_checksum_address

from chains.base import EndpointConfig, FetchRequest, WalletRef
from chains.endpoints import EndpointHealth
from chains.evm.adapter import EvmAdapter
from devnet.evm.protocols import spread_positions
from tests.fixtures.evm import chain_config_for, known_assets_for

WALLETS = 200


def budget_wallets(count: int) -> list[str]:
    return [to_checksum_address(keccak(f"chainfolio:positions-budget:{i}".encode())[-20:]) for i in range(count)]


def test_200_wallets_in_every_protocol_take_at_most_2_more_eth_call_rounds(evm_devnet, evm_snapshot, rpc_proxy):
    wallets = budget_wallets(WALLETS)
    spread_positions(evm_devnet.url, evm_devnet.scenario, wallets)
    # One JSON-RPC request per round of eth_calls (every chunk of a round in one batch, one at a time),
    # so the proxy counts rounds as requests that carry eth_call.
    cfg = chain_config_for(evm_devnet.scenario, protocols=evm_devnet.scenario["defi"]["protocols"],
                           extra={"multicall_parallel": 1, "multicall_chunks_per_request": 1000})
    request = FetchRequest(wallets=tuple(WalletRef(w) for w in wallets), known_assets=known_assets_for(evm_devnet.scenario),
                           include_nfts=False)
    rounds = {}
    for with_positions in (False, True):
        rpc_proxy.payloads.clear()
        adapter = EvmAdapter(cfg, [EndpointConfig(url=rpc_proxy.url, timeout_s=60.0)], health=EndpointHealth())
        res = adapter.fetch(replace(request, include_positions=with_positions))
        eth_call_requests = [p for p in rpc_proxy.payloads
                             if any(c.get("method") == "eth_call" for c in (p if isinstance(p, list) else [p]))]
        rounds[with_positions] = len(eth_call_requests)
        assert all(call["params"][1] == hex(res.height) for call in rpc_proxy.calls("eth_call"))  # one block
        if with_positions:
            per_wallet = Counter(p.owner for p in res.positions)
            # V2, V3, Aave, two vaults, three LSTs: every wallet has all 8 positions.
            assert set(per_wallet) == set(wallets) and set(per_wallet.values()) == {8}
            assert not [p for p in res.problems if p.protocol]
    assert rounds[False] == 1
    assert rounds[True] <= rounds[False] + 2
