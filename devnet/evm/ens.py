"""Deploy ENS on the devnet with web3.py from the published npm artifacts: registry, public resolver, reverse registrar, names."""

from __future__ import annotations

import json
from typing import Any, Mapping

from eth_utils import keccak
from web3 import Web3

from chains.evm.ens import namehash, normalize_name
from devnet.common import NODE_MODULES
from devnet.evm.node import CHAIN_ID

# What @ensdomains/ens 0.6.2 and @ensdomains/resolver 0.3.1 ship (truffle builds with bytecode).
ARTIFACTS = {
    "ENSRegistry": NODE_MODULES / "@ensdomains" / "ens" / "build" / "contracts" / "ENSRegistry.json",
    "PublicResolver": NODE_MODULES / "@ensdomains" / "resolver" / "build" / "contracts" / "PublicResolver.json",
    "ReverseRegistrar": NODE_MODULES / "@ensdomains" / "resolver" / "build" / "contracts" / "ReverseRegistrar.json",
}
ROOT_NODE = b"\0" * 32
# anvil dev account #3 (unlocked): claims someone else's name in its reverse record, which a client
# must not believe because the name does not resolve back to it.
SPOOFER = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"


def ens_artifact(name: str) -> dict[str, Any]:
    """``{abi, bytecode}`` of an ENS contract from the npm package. Raises ``FileNotFoundError``
    when devnet/node_modules lacks it (``npm install`` in devnet/)."""
    path = ARTIFACTS[name]
    if not path.exists():
        raise FileNotFoundError(f"ENS artifact not found at {path} (npm install in devnet/)")
    data = json.loads(path.read_text())
    return {"abi": data["abi"], "bytecode": data["bytecode"]}


def _label(label: str) -> bytes:
    return keccak(text=label)


class _Deployer:
    """Sends transactions from unlocked anvil accounts and waits for each receipt."""

    def __init__(self, url: str, sender: str) -> None:
        self.w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 30}))
        # Our own devnet: no need to re-check chain id and block per transaction (halves the requests).
        self.w3.middleware_onion.remove("validation")
        self.sender = sender
        # Fixed chain id, gas and price: web3 would otherwise ask for each before every transaction.
        self.fees = {"chainId": CHAIN_ID, "gas": 6_000_000, "gasPrice": self.w3.eth.gas_price * 2}

    def deploy(self, name: str, *args: Any) -> Any:
        spec = ens_artifact(name)
        factory = self.w3.eth.contract(abi=spec["abi"], bytecode=spec["bytecode"])
        receipt = self._wait(factory.constructor(*args).transact({"from": self.sender, **self.fees}), name)
        return self.w3.eth.contract(address=receipt["contractAddress"], abi=spec["abi"])

    def send(self, fn: Any, sender: str | None = None) -> None:
        self._wait(fn.transact({"from": sender or self.sender, **self.fees}), fn.fn_name)

    def _wait(self, tx_hash: bytes, what: str) -> Any:
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=15, poll_latency=0.01)
        if receipt["status"] != 1:
            raise RuntimeError(f"ENS devnet deployment failed at {what}: {tx_hash.hex()}")
        return receipt


def deploy_ens(url: str, deployer: str, names: Mapping[str, str]) -> dict[str, Any]:
    """Deploy an ENS registry, a public resolver and a reverse registrar on the anvil at ``url``;
    register each of ``names`` (``{"demo.eth": address}``) with its address record, and have each
    address set its reverse record to its name (addresses must be unlocked anvil accounts). Also has
    ``SPOOFER`` claim the first name in its reverse record, which does not resolve back to it.

    Returns the expectations ``{registry, resolver, reverse_registrar, names, primary_names,
    reverse_records}``: ``primary_names`` is what a client that checks the forward record must show
    per address (None for the spoofer), ``reverse_records`` what the reverse records literally say.
    Raises ``RuntimeError`` when a transaction reverts, ``FileNotFoundError`` without the artifacts.
    """
    d = _Deployer(url, deployer)
    registry = d.deploy("ENSRegistry")
    resolver = d.deploy("PublicResolver", registry.address)
    reverse = d.deploy("ReverseRegistrar", registry.address, resolver.address)
    d.send(registry.functions.setSubnodeOwner(ROOT_NODE, _label("reverse"), deployer))
    d.send(registry.functions.setSubnodeOwner(namehash("reverse"), _label("addr"), reverse.address))

    records: dict[str, str] = {}
    for raw_name, address in names.items():
        name = normalize_name(raw_name)
        *labels, parent = name.split(".")
        if len(labels) != 1:
            raise ValueError(f"{name}: only second-level names are registered on the devnet")
        parent_node = namehash(parent)
        if registry.functions.owner(parent_node).call() != deployer:
            d.send(registry.functions.setSubnodeOwner(ROOT_NODE, _label(parent), deployer))
        d.send(registry.functions.setSubnodeRecord(parent_node, _label(labels[0]), deployer, resolver.address, 0))
        d.send(resolver.functions.setAddr(namehash(name), address))
        d.send(reverse.functions.setName(name), sender=address)
        records[Web3.to_checksum_address(address)] = name
    claimed = next(iter(records.values()), None)
    primary = dict(records)
    if claimed is not None:
        d.send(reverse.functions.setName(claimed), sender=SPOOFER)
        records[SPOOFER], primary[SPOOFER] = claimed, None
    return {
        "registry": registry.address,
        "resolver": resolver.address,
        "reverse_registrar": reverse.address,
        "names": {normalize_name(n): Web3.to_checksum_address(a) for n, a in names.items()},
        "primary_names": primary,
        "reverse_records": records,
    }
