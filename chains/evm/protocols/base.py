"""What an EVM protocol module implements, and the context it reads through (rounds of Multicall3 calls)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from decimal import Context, Decimal
from typing import Any, Callable, ClassVar, Generator, Iterable, Mapping

from chains.base import FUNGIBLE, AssetRef, Position, Problem
from chains.evm import abi
from chains.evm.address import to_checksum
from chains.evm.multicall import CallResult

# A protocol's reads: each ``yield`` hands the adapter one round of (target, calldata) calls and gets
# their results back in the same order; the generator's return value is its positions. The adapter
# merges the first round into the balance batches and later rounds of all protocols with each other.
Calls = list[tuple[str, bytes]]
Reads = Generator[Calls, list[CallResult], list[Position]]

WORD = 32
_WIDE = Context(prec=100)  # exact enough for any uint256 ratio shown in details
MAX_UINT256 = (1 << 256) - 1


class ProtocolDataError(Exception):
    """A protocol contract answered something its interface does not allow (garbage, not a revert)."""


class Batch:
    """One round being planned: calls in order, read back by index (equal calls are sent once)."""

    def __init__(self) -> None:
        self.calls: Calls = []
        self._index: dict[tuple[str, bytes], int] = {}

    def add(self, target: str, data: bytes) -> int:
        key = (target, data)
        index = self._index.setdefault(key, len(self.calls))
        if index == len(self.calls):
            self.calls.append(key)
        return index


@dataclass
class ProtocolContext:
    """What the adapter knows while protocols read: wallets (checksummed), the pinned block, asset
    metadata, the ERC-721 ids seen in the wallets' logs, and (after the first round) the wallets'
    ERC-20 balances. ``nft_ids[wallet][contract]`` are the adapter's own sets: a protocol that owns a
    position-NFT contract adds ids it found and discards ids the wallet no longer holds, so the
    wallet's cursor remembers them."""

    wallets: tuple[str, ...]
    height: int
    native: AssetRef
    assets: dict[str, AssetRef]
    nft_ids: dict[str, dict[str, set[int]]]
    balances: dict[str, dict[str, int]] = field(default_factory=dict)  # wallet -> token -> amount > 0
    problems: list[Problem] = field(default_factory=list)
    unusable_assets: set[str] = field(default_factory=set)  # decimals() failed once: not asked again
    failed_balances: set[str] = field(default_factory=set)  # protocol tokens whose balanceOf failed

    def held(self, wallet: str) -> Mapping[str, int]:
        return self.balances.get(wallet, {})

    def held_tokens(self) -> set[str]:
        """Every ERC-20 any wallet holds (non-zero), from the first round."""
        return {token for held in self.balances.values() for token in held}

    def problem(self, protocol: str, code: str, message: str, subject: str = "") -> None:
        self.problems.append(Problem(code, f"{protocol}: {message}", subject, protocol=protocol))

    def plan_assets(self, batch: Batch, addresses: Iterable[str]) -> Callable[[list[CallResult]], dict[str, AssetRef | None]]:
        """Add symbol/name/decimals reads for the ERC-20s whose metadata is not known yet; the returned
        function gives every address its ``AssetRef`` (None when decimals() does not answer a sane value)."""
        wanted = sorted(set(addresses))
        unknown = {a: (batch.add(a, abi.SYMBOL), batch.add(a, abi.NAME), batch.add(a, abi.DECIMALS))
                   for a in wanted if a not in self.assets and a not in self.unusable_assets}

        def finish(results: list[CallResult]) -> dict[str, AssetRef | None]:
            out: dict[str, AssetRef | None] = {}
            for address in wanted:
                if address in self.assets or address not in unknown:
                    out[address] = self.assets.get(address)
                    continue
                sym_i, name_i, dec_i = unknown[address]
                decimals = abi.decode_uint(results[dec_i].data) if results[dec_i].ok else None
                if decimals is None or decimals > 77:
                    out[address] = None
                    self.unusable_assets.add(address)
                    continue
                symbol = (abi.decode_text(results[sym_i].data) if results[sym_i].ok else None) or "?"
                name = (abi.decode_text(results[name_i].data) if results[name_i].ok else None) or ""
                ref = AssetRef(kind=FUNGIBLE, address=address, symbol=symbol, name=name, decimals=decimals, standard="erc20")
                out[address] = self.assets[address] = ref
            return out

        return finish


class EvmProtocol:
    """One DeFi protocol on EVM chains. Subclasses set ``name`` (the registry key, also
    ``Position.protocol``) and ``roles`` (the contract roles a chain's config names, see
    ``chains.evm.protocols.deployments``), and implement ``read``.

    ``contracts`` is the chain's ``ChainConfig.protocols[name]``: role -> address (or a list of
    addresses where a role may repeat). Raises ``ValueError`` when a required role is missing or an
    address is malformed (the adapter reports it as a Problem and skips the protocol).
    """

    name: ClassVar[str]
    label: ClassVar[str]
    required: ClassVar[tuple[str, ...]] = ()
    settings: ClassVar[tuple[str, ...]] = ()  # keys that are not contract addresses

    def __init__(self, contracts: Mapping[str, Any]) -> None:
        missing = [role for role in self.required if not contracts.get(role)]
        if missing:
            raise ValueError(f"{self.name}: no address for {', '.join(missing)}")
        self.contracts = contracts
        for role in contracts:
            if role not in self.settings:
                try:
                    self.addresses(role)
                except ValueError as exc:
                    raise ValueError(f"{self.name}: {role}: {exc}") from None

    def address(self, role: str) -> str:
        return checksummed(self.contracts[role])

    def addresses(self, role: str) -> list[str]:
        value = self.contracts.get(role) or []
        return [checksummed(v) for v in (value if isinstance(value, (list, tuple)) else [value])]

    def balance_tokens(self) -> set[str]:
        """ERC-20s whose ``balanceOf`` every wallet must be read with the balances (each read once, even
        when the token is also listed or found in the logs); the amounts arrive in ``ctx.balances``,
        failures in ``ctx.failed_balances`` (the protocol reports them, holdings stay complete)."""
        return set()

    def nft_contracts(self) -> set[str]:
        """ERC-721 contracts whose tokens are this protocol's positions (kept out of the plain NFT list)."""
        return set()

    def read(self, ctx: ProtocolContext) -> Reads:
        raise NotImplementedError


# --------------------------------------------------------------------------- decoding helpers


def checksummed(value: Any) -> str:
    if not isinstance(value, str) or len(value) != 42 or not value.startswith("0x"):
        raise ValueError(f"not an address: {str(value)[:60]!r}")
    int(value, 16)
    return to_checksum(value)


def words(result: CallResult, count: int, *, at_least: bool = False) -> list[int] | None:
    """The return data as ``count`` uint256 words (None when the call reverted or the size is wrong)."""
    ok, data = result[0], result[1]  # CallResult is a tuple: no attribute lookups in the hot loop
    size = len(data)
    if not ok or (size < WORD * count if at_least else size != WORD * count):
        return None
    if count == 1:
        return [int.from_bytes(data[:WORD], "big")]
    return [int.from_bytes(data[i:i + WORD], "big") for i in range(0, WORD * count, WORD)]


def signed(word: int, bits: int) -> int:
    """A word as Solidity's intN, checking it is a valid sign extension (garbage otherwise)."""
    value = word - (1 << 256) if word >> 255 else word
    if not -(1 << (bits - 1)) <= value < (1 << (bits - 1)):
        raise ProtocolDataError(f"int{bits} out of range")
    return value


def unsigned(word: int, bits: int) -> int:
    if word >> bits:
        raise ProtocolDataError(f"uint{bits} out of range")
    return word


def address_of(word: int) -> str:
    if word >> 160:
        raise ProtocolDataError("address word has high bits set")
    return _checksum_word(word)


@lru_cache(maxsize=65536)  # the same few token and pool addresses come back in every position
def _checksum_word(word: int) -> str:
    return to_checksum("0x" + word.to_bytes(20, "big").hex())


def decode_address_array(result: CallResult, limit: int = 1000) -> list[str] | None:
    """An ``address[]`` return value, bounds-checked (None when it is not one)."""
    data = result.data
    if not result.ok or len(data) < 2 * WORD:
        return None
    offset = int.from_bytes(data[:WORD], "big")
    if offset + WORD > len(data):
        return None
    n = int.from_bytes(data[offset:offset + WORD], "big")
    if n > limit or offset + WORD * (n + 1) > len(data):
        return None
    out = []
    for i in range(n):
        word = int.from_bytes(data[offset + WORD * (i + 1):offset + WORD * (i + 2)], "big")
        if word >> 160:
            return None
        out.append(to_checksum("0x" + word.to_bytes(20, "big").hex()))
    return out


def ratio(numerator: int, denominator: int, digits: int = 18) -> str:
    """``numerator / denominator`` as a decimal string with ``digits`` places (for details), rounded half
    to even: the string ``str()`` of the 100-digit ``Decimal`` quotient quantized to ``digits`` places
    gives, computed in integers (thousands per fetch; the ``Decimal`` path is kept for huge operands,
    where its rounding to 100 digits first could differ)."""
    if denominator == 0:
        return "0"
    if numerator < 0 or denominator < 0 or not 18 <= digits <= 40:
        return _decimal_ratio(numerator, denominator, digits)
    quotient, rest = divmod(numerator * 10 ** digits, denominator)
    # Below these sizes the 100-digit quotient keeps > 50 digits past the last place, more than the
    # denominator's: its rounding cannot move a remainder across the half (the same result).
    if quotient.bit_length() > 200 or denominator.bit_length() > 180:
        return _decimal_ratio(numerator, denominator, digits)
    twice = 2 * rest
    if twice > denominator or (twice == denominator and quotient & 1):
        quotient += 1
    text = str(quotient)
    n = len(text)
    adjusted = n - 1 - digits
    if adjusted < -6:  # Decimal's str() turns scientific below 1E-6 ("0E-18", "1.5E-7")
        return text[0] + ("." + text[1:] if n > 1 else "") + f"E{adjusted}"
    if n > digits:
        return text[:-digits] + "." + text[-digits:]
    return "0." + "0" * (digits - n) + text


def _decimal_ratio(numerator: int, denominator: int, digits: int) -> str:
    return str(_WIDE.divide(Decimal(numerator), Decimal(denominator)).quantize(Decimal(1).scaleb(-digits), context=_WIDE))


def scaled(amount: int, decimals: int) -> str:
    """A base-unit integer in whole units, exact, as a string (for details)."""
    return str(Decimal(amount).scaleb(-decimals))


# --------------------------------------------------------------------------- driving the reads


class ProtocolRun:
    """Drives several protocols' ``read`` generators in lockstep: ``pending`` holds each one's next
    round of calls; ``resume`` feeds results back. A protocol that raises (a decoding bug, garbage
    its own checks missed) becomes a ``protocol_failed`` Problem and loses only its own positions."""

    def __init__(self, protocols: Mapping[str, EvmProtocol], ctx: ProtocolContext) -> None:
        self.ctx = ctx
        self.positions: list[Position] = []
        self.pending: dict[str, Calls] = {}
        self._gens: dict[str, Reads] = {}
        for name, protocol in protocols.items():
            self._advance(name, protocol.read(ctx), None)

    def _advance(self, name: str, gen: Reads, results: list[CallResult] | None) -> None:
        self._gens.pop(name, None)
        self.pending.pop(name, None)
        try:
            calls = gen.send(results)  # type: ignore[arg-type]  # send(None) starts the generator
        except StopIteration as stop:
            self.positions.extend(stop.value or [])
            return
        except Exception as exc:  # noqa: BLE001 - one protocol's failure must not stop the fetch
            self.ctx.problem(name, "protocol_failed", f"reading stopped: {type(exc).__name__}: {str(exc)[:200]}")
            return
        self._gens[name] = gen
        self.pending[name] = list(calls)

    def resume(self, results: Mapping[str, list[CallResult]]) -> None:
        for name in list(self._gens):
            self._advance(name, self._gens[name], results.get(name, []))

    def run(self, execute: Callable[[Calls], list[CallResult]]) -> list[Position]:
        """Run the remaining rounds (every protocol's next calls merged into one ``execute``)."""
        while self._gens:
            batch = Batch()
            index = {name: [batch.add(t, d) for t, d in calls] for name, calls in self.pending.items()}
            results = execute(batch.calls) if batch.calls else []
            self.resume({name: [results[i] for i in idx] for name, idx in index.items()})
        return self.positions
