"""Verified ENS reverse names of many addresses: our Multicall3 path vs web3.py calls, one by one and batched.

All three run the same algorithm on the devnet's real ENS contracts (reverse node -> resolver ->
name(), then name -> resolver -> addr() must give the address back): web3.py contract calls per
address (what web3.py code usually does), the same calls as four web3.py JSON-RPC batches, and
``chains.evm.ens.EnsClient.names`` (four Multicall3 eth_calls at one block). Interleaved rounds; all
three use our namehash, whose own figure against web3.py's ``normal_name_to_hash`` is measured apart.
Run: .venv/bin/python bench/ens_names.py (starts its own anvil; ~20 s of setup).
"""

from __future__ import annotations

import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ens import abis  # noqa: E402
from ens.utils import normal_name_to_hash  # noqa: E402
from web3 import Web3  # noqa: E402

from bench._common import add_spread, sample_load, timer, write_results  # noqa: E402
from chains.base import ChainConfig, EndpointConfig  # noqa: E402
from chains.evm.address import to_checksum  # noqa: E402
from chains.evm.ens import EnsClient, namehash, reverse_node  # noqa: E402
from devnet.common import rpc  # noqa: E402
from devnet.evm.ens import deploy_ens  # noqa: E402
from devnet.evm.node import start_anvil  # noqa: E402
from devnet.evm.scenario import DEPLOYER  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", 7))
ADDRESSES = 100
NAMED = 50  # half the addresses have a name and reverse record, as in a real list of wallets
HASHED = 20  # reverse names per round of the namehash pair: web3.py's takes ~20 ms a name, ours ~0.06 ms
ZERO = "0x" + "0" * 40


def addresses() -> list[str]:
    return [to_checksum("0x" + (0xE75 * 16**36 + i).to_bytes(20, "big").hex()) for i in range(ADDRESSES)]


class Web3Reverse:
    """The same verified reverse lookup written with web3.py contract objects."""

    def __init__(self, url: str, registry: str) -> None:
        self.w3 = Web3(Web3.HTTPProvider(url))
        self.registry = self.w3.eth.contract(address=registry, abi=abis.ENS)
        self.resolver = self.w3.eth.contract(abi=abis.PUBLIC_RESOLVER_2)

    def one_by_one(self, wanted: list[str]) -> dict[str, str | None]:
        out: dict[str, str | None] = {}
        for a in wanted:
            out[a] = None
            node = reverse_node(a)
            r = self.registry.functions.resolver(node).call()
            name = self.resolver(address=r).functions.name(node).call() if r != ZERO else ""
            if name:
                fwd = namehash(name)
                r2 = self.registry.functions.resolver(fwd).call()
                if r2 != ZERO and self.resolver(address=r2).get_function_by_signature("addr(bytes32)")(fwd).call() == a:
                    out[a] = name
        return out

    def batched(self, wanted: list[str]) -> dict[str, str | None]:
        nodes = {a: reverse_node(a) for a in wanted}
        resolvers = self._batch([self.registry.functions.resolver(nodes[a]) for a in wanted])
        asked = [(a, r) for a, r in zip(wanted, resolvers) if r != ZERO]
        names = self._batch([self.resolver(address=r).functions.name(nodes[a]) for a, r in asked])
        claimed = {a: n for (a, _), n in zip(asked, names) if n}
        fwd = {a: namehash(n) for a, n in claimed.items()}
        resolvers = self._batch([self.registry.functions.resolver(fwd[a]) for a in claimed])
        asked = [(a, r) for a, r in zip(claimed, resolvers) if r != ZERO]
        targets = self._batch([self.resolver(address=r).get_function_by_signature("addr(bytes32)")(fwd[a]) for a, r in asked])
        out: dict[str, str | None] = dict.fromkeys(wanted)
        out.update({a: claimed[a] for (a, _), t in zip(asked, targets) if t == a})
        return out

    def _batch(self, calls: list) -> list:
        with self.w3.batch_requests() as batch:
            for c in calls:
                batch.add(c)
            return batch.execute()


def main() -> int:
    node = start_anvil()
    try:
        wanted = addresses()
        rpc(node.url, "anvil_autoImpersonateAccount", [True])  # the named addresses set their reverse records
        for a in wanted[:NAMED]:
            rpc(node.url, "anvil_setBalance", [a, hex(10**18)])
        with timer() as setup:
            ens = deploy_ens(node.url, DEPLOYER, {f"w{i}.eth": a for i, a in enumerate(wanted[:NAMED])})
        chain = ChainConfig(slug="anvil", family="evm", chain_id=31337, ens_registry=ens["registry"])
        ours = EnsClient(chain, (EndpointConfig(url=node.url),))
        theirs = Web3Reverse(node.url, ens["registry"])

        print(f"ENS with {NAMED} names deployed in {setup['s']:.1f} s", flush=True)
        expected = {a: (f"w{i}.eth" if i < NAMED else None) for i, a in enumerate(wanted)}
        assert ours.names(wanted) == theirs.one_by_one(wanted) == theirs.batched(wanted) == expected

        times: dict[str, list[float]] = {"multicall": [], "web3_batch": [], "web3_one_by_one": []}
        ways = [("multicall", ours.names), ("web3_batch", theirs.batched), ("web3_one_by_one", theirs.one_by_one)]
        loads = [sample_load()]
        for round_no in range(ROUNDS):
            print(f"round {round_no + 1}/{ROUNDS}", flush=True)
            for label, fn in ways[round_no % 3:] + ways[:round_no % 3]:  # the order rotates: load hits all alike
                with timer() as t:
                    fn(wanted)
                times[label].append(t["s"])
            loads.append(sample_load())
        web3_hash, our_hash = [], []
        reverse_names = [a[2:].lower() + ".addr.reverse" for a in wanted[:HASHED]]
        normal_name_to_hash(reverse_names[0])  # warm-up: web3.py loads its normaliser's tables once (~1.6 s)
        for round_no in range(ROUNDS):
            pair = [(web3_hash, normal_name_to_hash), (our_hash, namehash)]
            for out, fn in pair if round_no % 2 == 0 else pair[::-1]:
                with timer() as t:
                    [fn(n) for n in reverse_names]
                out.append(t["s"])
        assert [bytes(normal_name_to_hash(n)) for n in reverse_names] == [namehash(n) for n in reverse_names]
        before = ours.request_count
        ours.names(wanted)
        requests = ours.request_count - before
    finally:
        node.stop()

    figures: dict[str, tuple[float, str]] = {"setup_deploy_ens_s": (setup["s"], "s"), "rounds": (ROUNDS, "rounds"),
                                             "addresses": (ADDRESSES, "addresses")}
    add_spread(figures, "load_average_1m", loads, "load")
    for label, values in times.items():
        figures[f"{label}_min_s"] = (min(values), "s")
        figures[f"{label}_median_s"] = (statistics.median(values), "s")
        figures[f"{label}_max_s"] = (max(values), "s")
    for label, values in (("namehash_web3", web3_hash), ("namehash_ours", our_hash)):
        add_spread(figures, f"{label}_{HASHED}_s", values, "s")
    figures["namehash_web3_over_ours"] = (statistics.median(web3_hash) / statistics.median(our_hash), "x")
    figures["multicall_http_requests"] = (requests, "requests")
    figures["web3_batch_over_multicall"] = (statistics.median(times["web3_batch"]) / statistics.median(times["multicall"]), "x")
    figures["web3_one_by_one_over_multicall"] = (
        statistics.median(times["web3_one_by_one"]) / statistics.median(times["multicall"]), "x")
    write_results("ens_names", figures, sizes={"addresses": ADDRESSES, "named": NAMED, "rounds": ROUNDS,
                                               "namehash_names_per_round": HASHED})
    return 0


if __name__ == "__main__":
    sys.exit(main())
