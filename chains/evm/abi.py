"""Hand-rolled ABI encoding/decoding for the few calls the adapter makes (fast for thousands of calls)."""

from __future__ import annotations

import re
from binascii import unhexlify
from bisect import bisect_right
from functools import lru_cache
from itertools import chain, repeat
from operator import itemgetter
from typing import Callable, Iterable, Iterator, Sequence

from eth_abi import decode as abi_decode
from eth_utils import function_signature_to_4byte_selector, keccak

from chains.base import MalformedResponse


def selector(signature: str) -> bytes:
    return function_signature_to_4byte_selector(signature)


BALANCE_OF = selector("balanceOf(address)")
BALANCE_OF_1155 = selector("balanceOf(address,uint256)")
GET_ETH_BALANCE = selector("getEthBalance(address)")
NAME = selector("name()")
SYMBOL = selector("symbol()")
DECIMALS = selector("decimals()")
OWNER_OF = selector("ownerOf(uint256)")
TOKEN_URI = selector("tokenURI(uint256)")
URI = selector("uri(uint256)")
LATEST_ROUND_DATA = selector("latestRoundData()")
AGGREGATE3 = selector("aggregate3((address,bool,bytes)[])")

TRANSFER_TOPIC = "0x" + keccak(text="Transfer(address,address,uint256)").hex()
TRANSFER_SINGLE_TOPIC = "0x" + keccak(text="TransferSingle(address,address,address,uint256,uint256)").hex()
TRANSFER_BATCH_TOPIC = "0x" + keccak(text="TransferBatch(address,address,address,uint256[],uint256[])").hex()

_ZERO12 = b"\0" * 12
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_TEXT = 200


def address_word(address: str) -> bytes:
    """32-byte ABI word of a ``0x`` address."""
    return _ZERO12 + bytes.fromhex(address[2:])


def uint_word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def topic_for(address: str) -> str:
    """An address as an indexed-event topic (lowercase, 32 bytes)."""
    return "0x" + "0" * 24 + address[2:].lower()


def call_with_address(sel: bytes, address: str) -> bytes:
    return sel + address_word(address)


def call_with_uint(sel: bytes, value: int) -> bytes:
    return sel + uint_word(value)


_TRUE = uint_word(1)
_FALSE = uint_word(0)
_BYTES_OFFSET = uint_word(96)


class SameCalldata(Sequence[tuple[str, bytes]]):
    """The calls ``(target, data)`` for each of ``targets``, all with one calldata (``balanceOf(wallet)``
    over a token list), kept as the targets and the calldata: no pair per call. A slice is again a
    ``SameCalldata``; the encoders lay it out without looking at its calls one by one."""

    __slots__ = ("targets", "data")

    def __init__(self, targets: Sequence[str], data: bytes) -> None:
        self.targets, self.data = targets, data

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return SameCalldata(self.targets[i], self.data)
        return self.targets[i], self.data

    def __iter__(self) -> Iterator[tuple[str, bytes]]:
        return zip(self.targets, repeat(self.data))


def item_of_parts(parts: Sequence[Sequence], starts: Sequence[int], length: int, i: int, what: str):
    """Item ``i`` (negative: from the end) of a sequence of ``length`` kept as ``parts``, part ``p``
    starting at index ``starts[p]``; ``IndexError`` naming ``what`` outside it."""
    if i < 0:
        i += length
    if not 0 <= i < length:
        raise IndexError(f"{what} index out of range")
    p = bisect_right(starts, i) - 1
    return parts[p][i - starts[p]]


class CallRuns(Sequence[tuple[str, bytes]]):
    """Calls kept as runs in order: lists of single ``(target, calldata)`` pairs and whole
    ``SameCalldata`` runs. A slice within one run is a slice of that run; a slice across runs is
    again a ``CallRuns``, which the encoder lays out run by run."""

    __slots__ = ("_runs", "_starts", "_len")

    def __init__(self, runs: Iterable[list[tuple[str, bytes]] | SameCalldata] = ()) -> None:
        self._runs: list[list[tuple[str, bytes]] | SameCalldata] = []
        self._starts: list[int] = []
        self._len = 0
        for run in runs:
            if run:
                self._runs.append(run)
                self._starts.append(self._len)
                self._len += len(run)

    @property
    def runs(self) -> list[list[tuple[str, bytes]] | SameCalldata]:
        return self._runs

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[tuple[str, bytes]]:
        return chain.from_iterable(self._runs)

    def __getitem__(self, i):  # type: ignore[override]
        if not isinstance(i, slice):
            return item_of_parts(self._runs, self._starts, self._len, i, "call")
        start, stop, step = i.indices(self._len)
        if step != 1:
            return [self[k] for k in range(start, stop, step)]
        if start >= stop:
            return []
        r = bisect_right(self._starts, start) - 1
        if stop <= self._starts[r] + len(self._runs[r]):
            return self._runs[r][start - self._starts[r]:stop - self._starts[r]]
        pieces = []
        while start < stop:
            run, first = self._runs[r], self._starts[r]
            pieces.append(run[start - first:stop - first])
            start, r = first + len(run), r + 1
        return CallRuns(pieces)


def encode_aggregate3(calls: Sequence[tuple[str, bytes]], allow_failure: bool = True) -> bytes:
    """Calldata of ``aggregate3(Call3[])`` for ``(target, calldata)`` pairs. Hand-packed (eth_abi is
    ~10x slower here) and memoised per target and per calldata: thousands of calls per fetch share
    a handful of calldatas (``balanceOf(wallet)``)."""
    n = len(calls)
    heads: list[bytes] = []
    tails: list[bytes] = []
    offset = 32 * n
    flag = _TRUE if allow_failure else _FALSE
    target_parts: dict[str, bytes] = {}
    data_parts: dict[bytes, bytes] = {}
    for target, data in calls:
        head = target_parts.get(target)
        if head is None:
            head = target_parts[target] = _ZERO12 + bytes.fromhex(target[2:]) + flag + _BYTES_OFFSET
        body = data_parts.get(data)
        if body is None:
            body = data_parts[data] = _bytes_body(data)
        heads.append(offset.to_bytes(32, "big"))
        tails.append(head)
        tails.append(body)
        offset += 96 + len(body)
    return b"".join((AGGREGATE3, uint_word(32), uint_word(n), *heads, *tails))


def _bytes_body(data: bytes) -> bytes:
    """``data`` as the tail of an ABI ``bytes`` value: its length word, then the data padded to 32 bytes."""
    return len(data).to_bytes(32, "big") + data + b"\0" * (-len(data) % 32)


def aggregate3_calldata(calls: Sequence[tuple[str, bytes]], allow_failure: bool = True) -> str:
    """``"0x"`` + the lowercase hex of ``encode_aggregate3(calls)``: eth_call's ``data`` field."""
    return b"".join(aggregate3_calldata_parts(calls, allow_failure)).decode("ascii")


def aggregate3_calldata_parts(calls: Sequence[tuple[str, bytes]], allow_failure: bool = True) -> list[bytes]:
    """``aggregate3_calldata(calls)`` as ASCII pieces, to be joined only once, into the request body
    (a chunk of 500 calls is 450 KB of hex: each copy of it costs).

    Calls that all send one calldata to ``0x`` + 40 hex targets (one ``balanceOf(wallet)`` over many
    tokens) are laid out as hex directly, without a Python step per call: their offsets only depend
    on the count and the calldata's length. ``CallRuns`` (a slice of a plan across its runs, e.g. a
    wallet's ``getEthBalance`` then its first ``balanceOf`` calls) are laid out run by run in the
    same way. Anything else goes through ``encode_aggregate3`` (which raises ``ValueError`` for a
    target that is not hex); the text is the same either way.
    """
    n = len(calls)
    if n > 1:
        flag = _TRUE if allow_failure else _FALSE
        if isinstance(calls, CallRuns):
            items: list[bytes] = []
            sizes: list[tuple[int, int]] = []  # (calls, bytes each) per piece of items
            for run in calls.runs:
                laid = _uniform_items(run, flag) if len(run) > 1 else None
                if laid is None:  # a few single calls: the general way, one by one
                    for target, data in run:
                        body = _bytes_body(data)
                        items.append((_ZERO12 + bytes.fromhex(target[2:]) + flag + _BYTES_OFFSET + body).hex().encode())
                        sizes.append((1, 96 + len(body)))
                else:
                    items.append(laid[0])
                    sizes.append((len(run), laid[1]))
            if len({size for _count, size in sizes}) == 1:
                head = _uniform_head(n, sizes[0][1])
            else:
                offsets, at = [], 32 * n
                for count, size in sizes:
                    offsets += range(at, at + count * size, size)
                    at += count * size
                head = (AGGREGATE3 + uint_word(32) + uint_word(n)
                        + b"".join([o.to_bytes(32, "big") for o in offsets])).hex().encode()
            return [b"0x", head, *items]
        laid = _uniform_items(calls, flag)
        if laid is not None:
            return [b"0x", _uniform_head(n, laid[1]), laid[0]]
    return [b"0x", encode_aggregate3(calls, allow_failure).hex().encode()]


# A target's 40 hex digits as laid out in calldata (lowercase ASCII), by the address as given: the same
# token list is read for every wallet and every sync, so its addresses are checked and cut out once per
# process (up to 65,536 of them) instead of once per chunk.
_TARGET_HEX: dict[str, bytes] = {}
_TARGET_HEX_MAX = 65536


def _uniform_items(calls: Sequence[tuple[str, bytes]], flag: bytes) -> tuple[bytes, int] | None:
    """The items of ``calls`` in hex, and the bytes each takes, when they all send one calldata to
    ``0x`` + 40 hex targets; None otherwise."""
    n = len(calls)
    if isinstance(calls, SameCalldata):
        targets, data = calls.targets, calls.data
    else:
        targets, datas = zip(*calls)
        data = datas[0]
        if datas.count(data) != n:
            return None
    targets_hex = list(map(_TARGET_HEX.get, targets))
    if None in targets_hex:
        # "0x" + 40 hex digits each: an "0x" every 42 characters and no other (split apart there),
        # nothing but hex digits in between
        text = "".join(targets).lower().encode("ascii", "replace")
        if len(text) != 42 * n or text[::42] != b"0" * n or text[1::42] != b"x" * n:
            return None
        targets_hex = text.split(b"0x")
        del targets_hex[0]
        if len(targets_hex) != n or not _is_hex(b"".join(targets_hex)):
            return None
        if len(_TARGET_HEX) > _TARGET_HEX_MAX:
            _TARGET_HEX.clear()
        _TARGET_HEX.update(zip(targets, targets_hex))
    body = _bytes_body(data).hex().encode()
    tail = flag.hex().encode() + _BYTES_OFFSET.hex().encode() + body
    # per call: 24 zeros, the target, its tail (one C-level join, no list per call)
    return b"0" * 24 + (tail + b"0" * 24).join(targets_hex) + tail, 96 + len(body) // 2


def _is_hex(text: bytes) -> bool:
    try:
        unhexlify(text)  # unlike bytes.fromhex, it skips no white space
    except ValueError:
        return False
    return True


@lru_cache(maxsize=16)
def _uniform_head(n: int, tail_size: int) -> bytes:
    """Selector, array offset, length and the ``n`` item offsets of an aggregate3 call whose items all
    take ``tail_size`` bytes, as hex (the same for every full chunk of a read)."""
    offsets = b"".join([(32 * n + tail_size * i).to_bytes(32, "big") for i in range(n)])
    return (AGGREGATE3 + uint_word(32) + uint_word(n) + offsets).hex().encode()


def decode_aggregate3(data: bytes, expected: int) -> list[tuple[bool, bytes]]:
    """Decode ``(bool success, bytes returnData)[]``, bounds-checked. Raises ``MalformedResponse`` on
    anything else (wrong length, offsets outside the data, a bool that is not 0/1)."""
    size = len(data)
    frm = int.from_bytes
    try:
        if size < 64:
            raise ValueError("too short")
        base = frm(data[0:32], "big")
        if base + 32 > size:
            raise ValueError("out of bounds")
        n = frm(data[base:base + 32], "big")
        if n != expected:
            raise ValueError(f"{n} results for {expected} calls")
        start = base + 32
        if start + 32 * n > size:
            raise ValueError("out of bounds")
        out: list[tuple[bool, bytes]] = []
        append = out.append
        for i in range(n):
            head = start + 32 * i
            item = start + frm(data[head:head + 32], "big")
            if item + 64 > size:
                raise ValueError("out of bounds")
            ok = frm(data[item:item + 32], "big")
            pos = item + frm(data[item + 32:item + 64], "big")
            if ok > 1 or pos + 32 > size:
                raise ValueError("bad item")
            end = pos + 32 + frm(data[pos:pos + 32], "big")
            if end > size:
                raise ValueError("out of bounds")
            append((ok == 1, data[pos + 32:end]))
        return out
    except ValueError as exc:
        raise MalformedResponse(f"undecodable aggregate3 answer: {exc}") from None


# An aggregate3 answer whose every item returned exactly one word (balanceOf, decimals,
# getEthBalance...) is laid out by Multicall3 in one regular way: item i at 32 * n + 128 * i, holding
# (success, 0x40, 0x20, word). Checked on the hex text as the node sent it, with one comparison of
# what it must be, so only the words' hex is ever decoded (a 500-call chunk answers 160 KB of hex).
_ITEM = 128
_HEX_ITEM = 2 * _ITEM
_FLAG_BYTES = bytes.maketrans(b"01", b"\x00\x01")


def decode_aggregate3_words(text: str, expected: int) -> tuple[bytes, Sequence[bytes]] | None:
    """When every one of the ``expected`` results of an aggregate3 answer (``text``: ``"0x"`` + hex, as
    the node sent it) is one 32-byte word in Multicall3's regular layout, in lowercase hex: the success
    flags (one byte, 0 or 1, per call) and the words. None otherwise (other lengths, other offsets, a
    bool that is not 0/1, trailing data, characters that are not hex): then ``decode_aggregate3``
    decides, with its bounds checks. Both give the same outcome on a regular answer.
    """
    if expected < 1 or len(text) != 2 + 2 * (64 + (32 + _ITEM) * expected):
        return None
    head, hex_words, all_ok, item_heads = _word_layout(expected)
    if not text.startswith(head):
        return None
    words = hex_words(text)
    flags = text[len(head) + 63::_HEX_ITEM]  # the last hex digit of each success word
    if flags == all_ok:
        fixed = item_heads["1"]
        items = fixed + fixed.join(words)
    else:
        try:
            items = "".join(map(str.__add__, map(item_heads.__getitem__, flags), words))
        except KeyError:  # a success word that is not 0 or 1
            return None
    if not text.endswith(items):
        return None
    try:
        data = unhexlify("".join(words))  # unlike bytes.fromhex, it skips no white space
    except ValueError:
        return None
    return flags.encode().translate(_FLAG_BYTES), _bytes_words(expected)(data)


@lru_cache(maxsize=8)
def _word_layout(n: int) -> tuple[str, Callable[[str], Sequence[str]], str, dict[str, str]]:
    """For a regular ``n``-word aggregate3 answer in hex: its fixed head (``"0x"`` included), what cuts
    its words' hex out of it, its success flags' digits when every call succeeded, and each item's hex
    before its word by success flag."""
    offsets = b"".join([(32 * n + _ITEM * i).to_bytes(32, "big") for i in range(n)])
    head = "0x" + (uint_word(32) + uint_word(n) + offsets).hex()
    first = len(head) + 192
    hex_words = itemgetter(*[slice(p, p + 64) for p in range(first, first + _HEX_ITEM * n, _HEX_ITEM)])
    tail = (uint_word(64) + uint_word(32)).hex()
    item_heads = {"0": _FALSE.hex() + tail, "1": _TRUE.hex() + tail}
    return head, (hex_words if n > 1 else lambda text: (hex_words(text),)), "1" * n, item_heads


@lru_cache(maxsize=8)
def _bytes_words(n: int) -> Callable[[bytes], Sequence[bytes]]:
    """What cuts ``n`` 32-byte words out of their concatenation, at C speed."""
    getter = itemgetter(*[slice(p, p + 32) for p in range(0, 32 * n, 32)])
    return getter if n > 1 else lambda data: (getter(data),)


def decode_uint(data: bytes) -> int | None:
    """A ``uint256`` return value, or None when the data is not exactly one word."""
    return int.from_bytes(data, "big") if len(data) == 32 else None


def decode_address(data: bytes) -> str | None:
    if len(data) != 32 or any(data[:12]):
        return None
    return "0x" + data[12:].hex()


def clean_text(text: str) -> str:
    """Strip control characters and cap the length (names come from arbitrary contracts)."""
    return _CONTROL.sub("", text).strip()[:MAX_TEXT]


def decode_text(data: bytes) -> str | None:
    """A ``string`` return value, or a ``bytes32`` one (MKR-style); None when neither decodes."""
    if len(data) == 32:
        return clean_text(data.rstrip(b"\0").decode("utf-8", errors="replace"))
    if len(data) >= 64:
        try:
            (value,) = abi_decode(["string"], data)
        except Exception:  # noqa: BLE001 - any decoding failure means "not a string"
            return None
        return clean_text(value)
    return None


def decode_long_text(data: bytes, limit: int = 100_000) -> str | None:
    """A ``string`` return value that may be long (token URIs, data: URIs included)."""
    if len(data) < 64:
        return None
    try:
        (value,) = abi_decode(["string"], data)
    except Exception:  # noqa: BLE001
        return None
    return value.strip()[:limit]


def decode_round_data(data: bytes) -> tuple[int, int] | None:
    """``latestRoundData()`` -> (answer, updatedAt), None when malformed."""
    if len(data) != 160:
        return None
    answer = int.from_bytes(data[32:64], "big", signed=True)
    return answer, int.from_bytes(data[96:128], "big")


def decode_uint_array_pair(data: bytes) -> tuple[list[int], list[int]] | None:
    """TransferBatch data ``(uint256[] ids, uint256[] values)``."""
    try:
        ids, values = abi_decode(["uint256[]", "uint256[]"], data)
    except Exception:  # noqa: BLE001
        return None
    return list(ids), list(values)
