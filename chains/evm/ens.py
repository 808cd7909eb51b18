"""ENS on EVM chains: a name to its address (wallet input) and verified reverse names of many addresses."""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import httpx
from ens import abis as ens_abis
from ens.exceptions import InvalidName
from ens.utils import normalize_name as ensip15_normalize
from eth_abi import decode as abi_decode
from eth_utils import keccak
from web3 import Web3
from web3.exceptions import BadFunctionCallOutput, ContractLogicError, OffchainLookup, Web3Exception
from web3.providers.base import JSONBaseProvider

from chains.base import ChainConfig, ChainError, EndpointConfig, InvalidAddress, RateLimiter
from chains.endpoints import EndpointPool, JsonRpcClient, RpcError
from chains.evm import abi
from chains.evm.address import to_checksum
from chains.evm.multicall import CallResult, MulticallReader

MAINNET_REGISTRY = "0x00000000000C2E074eC69A0dFb2997BA6C7d2e1e"
MAX_NAME_LENGTH = 255
RESOLVER = abi.selector("resolver(bytes32)")
ADDR = abi.selector("addr(bytes32)")
NAME = abi.selector("name(bytes32)")


def registry_for(chain: ChainConfig) -> str | None:
    """The ENS registry to use on ``chain``: its configured one, else ENS's own on Ethereum mainnet
    (chain id 1); None where ENS is not deployed."""
    if chain.ens_registry:
        return chain.ens_registry
    return MAINNET_REGISTRY if chain.chain_id == 1 else None


def normalize_name(text: str) -> str:
    """The ENSIP-15 normalised form of ``text`` (web3.py's normaliser): ``Demo.ETH`` -> ``demo.eth``.

    Raises ``InvalidAddress`` naming the offending character or label, never the whole input."""
    value = (text or "").strip()
    if len(value) > MAX_NAME_LENGTH:
        raise InvalidAddress(f"an ENS name has at most {MAX_NAME_LENGTH} characters")
    try:
        name = ensip15_normalize(value)
    except InvalidName as exc:
        raise InvalidAddress(f"not a valid ENS name: {exc}") from None
    if "." not in name:
        raise InvalidAddress("an ENS name has a dot, like name.eth")
    return name


def namehash(name: str) -> bytes:
    """EIP-137 namehash (the ``node``) of an already normalised name.

    Our own: web3.py's ``normal_name_to_hash`` normalises every label again and builds a ``Web3()``
    per hash: two orders of magnitude slower (bench/ens_names.py), which matters for many reverse nodes."""
    node = b"\0" * 32
    if name:
        for label in reversed(name.split(".")):
            node = keccak(node + keccak(text=label))
    return node


def reverse_node(address: str) -> bytes:
    """namehash of ``<address without 0x, lowercase>.addr.reverse``."""
    return namehash(address[2:].lower() + ".addr.reverse")


class _PoolProvider(JSONBaseProvider):
    """A web3.py provider that sends through the project's ``JsonRpcClient``: web3.py does the ABI
    work, the endpoint pool keeps failover, rate limits and error classification as elsewhere."""

    def __init__(self, client: JsonRpcClient) -> None:
        super().__init__()
        self.client = client
        # CCIP-Read would fetch arbitrary gateway URLs named by a contract: never from here.
        self.global_ccip_read_enabled = False

    def make_request(self, method: Any, params: Any) -> Any:
        try:
            return {"jsonrpc": "2.0", "id": 1, "result": self.client.request(method, list(params))}
        except RpcError as exc:  # the node answered with an error (a revert): web3.py decides what it means
            return {"jsonrpc": "2.0", "id": 1, "error": {"code": exc.code, "message": exc.rpc_message, "data": exc.data}}

    def is_connected(self, show_traceback: bool = False) -> bool:
        return True


class EnsClient:
    """ENS lookups on one chain, through its endpoints.

    ``address(name)`` resolves one name with web3.py contract calls (registry -> resolver -> addr);
    ``names(addresses)`` reads verified reverse names of many addresses through Multicall3, in four
    ``eth_call``s at one block however many addresses there are.
    """

    def __init__(self, chain: ChainConfig, endpoints: Sequence[EndpointConfig], *,
                 limiter: RateLimiter | None = None, http: httpx.Client | None = None) -> None:
        """Raises a permanent ``ChainError`` when ``chain`` has no ENS registry or no endpoint."""
        registry = registry_for(chain)
        if not registry:
            raise ChainError(f"no ENS registry is configured for {chain.slug}", permanent=True)
        self.registry = to_checksum(registry)
        self.multicall_address = to_checksum(chain.multicall_address)
        self.pool = EndpointPool(endpoints, limiter=limiter)
        self.client = JsonRpcClient(self.pool, http=http)
        w3 = Web3(_PoolProvider(self.client), middleware=[])
        self._registry = w3.eth.contract(address=self.registry, abi=ens_abis.ENS)
        self._resolver = w3.eth.contract(abi=ens_abis.PUBLIC_RESOLVER_2)

    @property
    def request_count(self) -> int:
        return self.pool.request_count

    def address(self, name: str) -> str:
        """The checksummed address ``name`` points to (its ``addr`` record), after ENSIP-15 normalisation.

        Raises ``InvalidAddress`` when the name is malformed, not registered (no resolver), has no
        address, or only resolves off-chain; a permanent ``ChainError`` when there is no registry
        contract at the configured address; a transient ``ChainError`` when no endpoint answers.
        """
        normal = normalize_name(name)
        node = namehash(normal)
        resolver = self._call(self._registry.functions.resolver(node), normal, registry=True)
        if int(resolver, 16) == 0:
            raise InvalidAddress(f"{normal} is not a registered ENS name (it has no resolver)")
        target = self._call(self._resolver(address=resolver).get_function_by_signature("addr(bytes32)")(node), normal)
        if int(target, 16) == 0:
            raise InvalidAddress(f"{normal} is registered but does not point to an Ethereum address")
        return to_checksum(target)

    def name(self, address: str) -> str | None:
        """The verified primary name of ``address`` or None (see ``names``)."""
        return self.names([address])[to_checksum(address)]

    def names(self, addresses: Iterable[str]) -> dict[str, str | None]:
        """Primary name per address (checksummed keys), as ENS requires it to be trusted: the reverse
        record's name, only if it is ENSIP-15 normalised and its own ``addr`` record points back to the
        same address; None otherwise. Reads at one block: eth_blockNumber plus four Multicall3 rounds.

        Raises ``ChainError``: permanent when the chain has no Multicall3, transient when no endpoint
        answers.
        """
        wanted = list(dict.fromkeys(to_checksum(a) for a in addresses))
        out: dict[str, str | None] = dict.fromkeys(wanted)
        if not wanted:
            return out
        block = int(self.client.request("eth_blockNumber"), 16)
        reader = MulticallReader(self.client, self.multicall_address)
        reverse = {a: reverse_node(a) for a in wanted}
        claimed = {a: name for a, name in self._records(reader, reverse, NAME, block).items() if name}
        forward = {a: namehash(name) for a, name in claimed.items()}
        for address, target in self._records(reader, forward, ADDR, block).items():
            if target == address:
                out[address] = claimed[address]
        return out

    # ------------------------------------------------------------------ helpers

    def _records(self, reader: MulticallReader, nodes: dict[str, bytes], selector: bytes, block: int) -> dict[str, str | None]:
        """``selector(node)`` read from each node's resolver (two Multicall rounds); None where a node
        has no resolver or the answer does not decode."""
        keys = list(nodes)
        found = reader.run([(self.registry, RESOLVER + nodes[k]) for k in keys], block)
        resolvers = {k: _as_address(r) for k, r in zip(keys, found)}
        asked = [k for k in keys if resolvers[k]]
        answers = reader.run([(resolvers[k], selector + nodes[k]) for k in asked], block)
        decode = _as_address if selector == ADDR else _as_name
        records: dict[str, str | None] = dict.fromkeys(keys)
        records.update({k: decode(r) for k, r in zip(asked, answers)})
        return records

    def _call(self, fn: Any, name: str, *, registry: bool = False) -> str:
        """Run a web3.py contract call; map its failures to this project's errors."""
        try:
            return fn.call()
        except BadFunctionCallOutput:  # no contract there
            if registry:
                raise ChainError(f"no ENS registry contract at {self.registry} on this chain", permanent=True) from None
            raise InvalidAddress(f"the resolver of {name} is not a contract") from None
        except OffchainLookup:
            raise InvalidAddress(f"{name} is resolved off-chain (CCIP-Read), which is not supported: paste its address") from None
        except ContractLogicError:
            raise InvalidAddress(f"the resolver of {name} refused the address lookup") from None
        except ChainError:
            raise
        except Web3Exception as exc:
            raise ChainError(f"ENS lookup failed: {type(exc).__name__}") from None


def _as_address(result: CallResult) -> str | None:
    target = abi.decode_address(result.data) if result.ok else None
    return to_checksum(target) if target and int(target, 16) else None


def _as_name(result: CallResult) -> str | None:
    """A reverse record's name, kept only when it is already in ENSIP-15 normal form (a record that
    is not could be made to look like another name)."""
    if not result.ok or len(result.data) < 64:
        return None
    try:
        (text,) = abi_decode(["string"], result.data)
        return text if text and normalize_name(text) == text else None
    except Exception:  # noqa: BLE001 - an undecodable or invalid record is no name
        return None

