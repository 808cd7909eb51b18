"""Hand-rolled aggregate3 fast paths (encoding, decoding, balances of word chunks) match the general code."""

from __future__ import annotations

import pytest
from eth_abi import encode

from chains.base import FUNGIBLE, AssetRef, MalformedResponse, TokenBalance
from chains.evm import abi
from chains.evm.adapter import _row_balances
from chains.evm.multicall import CallResult, CallResults, MulticallReader, WordResults
from chains.evm.plan import BalanceRow, Plan

MAX = 2**256 - 1
WALLET = "0x" + "ab" * 20
TOKENS = ["0x" + f"{0xC0FFEE00 + i:040x}" for i in range(7)] + ["0xdAC17F958D2ee523a2206206994597C13D831ec7"]


def answer(results: list[tuple[bool, bytes]]) -> bytes:
    """An aggregate3 answer as Multicall3 encodes it."""
    return encode(["(bool,bytes)[]"], [results])


def word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def hex_text(payload: bytes) -> str:
    """An eth_call answer as the node sends it."""
    return "0x" + payload.hex()


def decoded_by_the_reader(payload: bytes, count: int) -> list[CallResult]:
    reader = MulticallReader(client=None, multicall_address="0x" + "11" * 20)  # type: ignore[arg-type]
    return list(reader._decode([("0x" + "22" * 20, b"")] * count, "0x" + payload.hex()))


def general(payload: bytes, count: int) -> list[CallResult]:
    return [CallResult(ok, data, "" if ok else "reverted") for ok, data in abi.decode_aggregate3(payload, count)]


def test_regular_word_answers_decode_as_the_general_decoder_does():
    results = [(True, word(10**18)), (True, word(0)), (True, word(MAX)), (True, word(1))]
    payload = answer(results)
    oks, words = abi.decode_aggregate3_words(hex_text(payload), 4)
    assert [(ok == 1, w) for ok, w in zip(oks, words)] == abi.decode_aggregate3(payload, 4) == results
    assert decoded_by_the_reader(payload, 4) == general(payload, 4)
    assert int.from_bytes(decoded_by_the_reader(payload, 4)[2].data, "big") == MAX  # uint256 max exactly


def test_a_failed_call_with_a_word_of_revert_data_stays_a_failure():
    payload = answer([(True, word(5)), (False, word(MAX)), (True, word(7))])
    assert abi.decode_aggregate3_words(hex_text(payload), 3) is not None
    got = decoded_by_the_reader(payload, 3)
    assert got == general(payload, 3)
    assert got[1] == CallResult(False, word(MAX), "reverted")


@pytest.mark.parametrize("odd", [
    (False, b""),  # a revert without data
    (True, b"\x01" * 31),  # a short return
    (True, word(1) + word(2)),  # two words
    (False, bytes.fromhex("08c379a0") + encode(["string"], ["no"])),  # Error(string)
], ids=["revert-empty", "short", "two-words", "error-string"])
def test_irregular_answers_fall_back_to_the_general_decoder(odd):
    payload = answer([(True, word(5)), odd, (True, word(MAX))])
    assert abi.decode_aggregate3_words(hex_text(payload), 3) is None
    assert decoded_by_the_reader(payload, 3) == general(payload, 3)


def test_garbage_is_refused_by_both():
    payload = bytearray(answer([(True, word(5)), (True, word(6))]))
    payload[64 + 64 + 31] = 2  # a success flag that is not a bool
    assert abi.decode_aggregate3_words(hex_text(bytes(payload)), 2) is None
    with pytest.raises(MalformedResponse):
        abi.decode_aggregate3(bytes(payload), 2)
    regular = answer([(True, word(5)), (True, word(6))])
    assert abi.decode_aggregate3_words(hex_text(regular), 3) is None  # not the count asked for
    assert abi.decode_aggregate3_words(hex_text(regular + bytes(32)), 2) is None  # trailing bytes


def test_one_word_answers_decode_at_any_count():
    for count in (1, 2, 500):
        results = [(i % 3 != 1, word(MAX if i == count - 1 else i * 7)) for i in range(count)]
        payload = answer(results)
        flags, words = abi.decode_aggregate3_words(hex_text(payload), count)
        assert [(ok == 1, w) for ok, w in zip(flags, words)] == results
        assert decoded_by_the_reader(payload, count) == general(payload, count)


def test_hex_the_fast_path_does_not_read_as_is_left_to_the_general_decoder():
    payload = answer([(True, word(5)), (True, word(0xABCDEF))])
    text = hex_text(payload)
    upper = "0x" + text[2:].upper()  # valid hex, not the lowercase layout: decoded the general way
    assert abi.decode_aggregate3_words(upper, 2) is None
    reader, chunk = MulticallReader(client=None, multicall_address="0x" + "11" * 20), [("0x" + "22" * 20, b"")] * 2
    assert list(reader._decode(chunk, upper)) == general(payload, 2)
    for bad in ("zz", " 1", "\u00e9"):  # not hex, white space, not ASCII, inside a word
        broken = text[:-len(bad)] + bad
        assert abi.decode_aggregate3_words(broken, 2) is None
        with pytest.raises(MalformedResponse):
            reader._decode(chunk, broken)


def test_calls_sharing_one_calldata_encode_as_the_general_encoder_and_eth_abi_do():
    data = abi.call_with_address(abi.BALANCE_OF, WALLET)
    calls = [(t, data) for t in TOKENS]
    expected = abi.AGGREGATE3 + encode(["(address,bool,bytes)[]"], [[(t.lower(), True, data) for t in TOKENS]])
    assert abi.aggregate3_calldata(calls) == "0x" + abi.encode_aggregate3(calls).hex() == "0x" + expected.hex()
    assert abi.aggregate3_calldata(calls, allow_failure=False) == "0x" + abi.encode_aggregate3(calls, allow_failure=False).hex()


@pytest.mark.parametrize("calls", [
    [(TOKENS[0], abi.NAME), (TOKENS[1], abi.call_with_address(abi.BALANCE_OF, WALLET))],  # mixed calldata
    [(TOKENS[0], abi.DECIMALS)],  # a single call
    [("0x12", abi.DECIMALS), (TOKENS[1], abi.DECIMALS)],  # a short target: encoded as the general encoder does
    [(TOKENS[0][:-2], abi.DECIMALS), ("0x" + "ab" * 21, abi.DECIMALS)],  # lengths that add up, 0x out of place
    [(TOKENS[0], abi.DECIMALS), ("0X" + TOKENS[1][2:], abi.DECIMALS)],  # an upper-case prefix
], ids=["mixed", "single", "short-target", "misaligned", "upper-prefix"])
def test_other_calls_go_through_the_general_encoder(calls):
    assert abi.aggregate3_calldata(calls) == "0x" + abi.encode_aggregate3(calls).hex()


@pytest.mark.parametrize("target", ["0x" + "zz" * 20, "0x" + "ab" * 19 + "x1", "0x" + "ab" * 19 + "\u00e91",
                                    "0x" + "ab" * 19 + " 1"], ids=["letters", "an-x", "not-ascii", "space"])
def test_a_target_that_is_not_hex_is_refused(target):
    with pytest.raises(ValueError):
        abi.aggregate3_calldata([(target, abi.DECIMALS), (TOKENS[1], abi.DECIMALS)])


def test_a_reads_results_index_slice_and_iterate_like_the_list_they_stand_for():
    words = WordResults(bytes([1, 0, 1]), [word(1), word(MAX), word(0)])
    general_part = [CallResult(True, b"x"), CallResult(False, b"", "call failed as a whole: out of gas")]
    results = CallResults([words, general_part, WordResults(b"\x01", [word(7)])])
    expected = [CallResult(True, word(1)), CallResult(False, word(MAX), "reverted"), CallResult(True, word(0)),
                *general_part, CallResult(True, word(7))]
    assert len(results) == 6 and list(results) == expected
    assert [results[i] for i in range(6)] == expected and results[-1] == expected[-1]
    assert results[1:5] == expected[1:5] and results[::2] == expected[::2] and results[::-1] == expected[::-1]
    assert words[0:2] == expected[0:2]
    with pytest.raises(IndexError):
        results[6]



def test_word_chunks_become_the_same_balances_with_or_without_a_failure_or_an_unlisted_token():
    listed = {t: AssetRef(kind=FUNGIBLE, address=t, symbol="T", name="T", decimals=18, standard="erc20")
              for t in TOKENS[:6]}
    other = TOKENS[7]
    rows = [BalanceRow(WALLET, TOKENS[:4], 0), BalanceRow(other, TOKENS[:6], 4)]
    values = [MAX, 0, 7, 10**18, 1, 0, 2, 3, MAX, 5]
    regular = WordResults(bytes([1] * 10), [word(v) for v in values])
    # rows that carry their tokens' AssetRefs (every token listed) look nothing up: same balances
    with_assets = [BalanceRow(owner, tokens, start, [listed[t] for t in tokens]) for owner, tokens, start, _ in rows]
    for results, some_rows in [(r, some) for r in (regular, list(regular)) for some in (rows, with_assets)]:
        # C-level maps, and the per-token loop: same calls, same answers
        found = _row_balances(some_rows, 0, results, listed)
        assert found.balances == [
            TokenBalance(WALLET, listed[TOKENS[0]], MAX), TokenBalance(WALLET, listed[TOKENS[2]], 7),
            TokenBalance(WALLET, listed[TOKENS[3]], 10**18), TokenBalance(other, listed[TOKENS[0]], 1),
            TokenBalance(other, listed[TOKENS[2]], 2), TokenBalance(other, listed[TOKENS[3]], 3),
            TokenBalance(other, listed[TOKENS[4]], MAX), TokenBalance(other, listed[TOKENS[5]], 5)]
        assert (found.unlisted, found.failed) == (False, [])

    # the chunk answering calls 5..9 (the second wallet's tokens 1..5): one call reverted, one token not listed
    partly = WordResults(bytes([1, 0, 1, 1, 1]), [word(v) for v in values[5:]])
    found = _row_balances(rows, 5, partly, {t: a for t, a in listed.items() if t != TOKENS[5]})
    assert found.balances == [TokenBalance(other, listed[TOKENS[3]], 3), TokenBalance(other, listed[TOKENS[4]], MAX),
                              (other, TOKENS[5], 5)]
    assert found.unlisted and found.failed == [("balance_call_failed", TOKENS[2], other)]
    found = _row_balances(with_assets, 5, partly, listed)
    assert found.balances == [TokenBalance(other, listed[TOKENS[3]], 3), TokenBalance(other, listed[TOKENS[4]], MAX),
                              TokenBalance(other, listed[TOKENS[5]], 5)]
    assert not found.unlisted and found.failed == [("balance_call_failed", TOKENS[2], other)]


def test_a_plans_calls_index_slice_and_iterate_like_the_list_of_pairs_they_stand_for():
    plan, pairs = Plan(), []
    for target, data in [(TOKENS[0], abi.NAME), (TOKENS[1], abi.DECIMALS)]:
        plan.add(target, data)
        pairs.append((target, data))
    for owner in (WALLET, "0x" + "cd" * 20):
        row = plan.add_balances_of(owner, TOKENS)
        assert row.start == len(pairs)
        pairs += [(t, abi.call_with_address(abi.BALANCE_OF, owner)) for t in TOKENS]
    plan.add(TOKENS[2], abi.SYMBOL)
    pairs.append((TOKENS[2], abi.SYMBOL))
    calls = plan.calls
    assert len(calls) == len(pairs) and list(calls) == pairs
    assert [calls[i] for i in range(-len(pairs), len(pairs))] == pairs + pairs
    for start in range(len(pairs) + 1):
        for stop in range(start, len(pairs) + 2):
            assert list(calls[start:stop]) == pairs[start:stop]
    assert list(calls[::3]) == pairs[::3] and list(calls[5:1:-1]) == pairs[5:1:-1]
    assert isinstance(calls[3:7], abi.SameCalldata)  # inside one wallet's balanceOf run
    with pytest.raises(IndexError):
        calls[len(pairs)]


@pytest.mark.parametrize("count", [1, 2, len(TOKENS)])
def test_calls_of_one_calldata_encode_as_their_pairs_do(count):
    data = abi.call_with_address(abi.BALANCE_OF, WALLET)
    same = abi.SameCalldata(TOKENS[:count], data)
    pairs = [(t, data) for t in TOKENS[:count]]
    assert abi.aggregate3_calldata(same) == abi.aggregate3_calldata(pairs) == "0x" + abi.encode_aggregate3(pairs).hex()
    assert abi.aggregate3_calldata(abi.SameCalldata(["0x12", *TOKENS[1:count]], data)) \
        == abi.aggregate3_calldata([("0x12", data), *pairs[1:]])  # an odd target: the general encoder


def test_a_slice_across_a_plans_runs_encodes_run_by_run_as_its_pairs_do():
    # a wallet's getEthBalance before its balanceOf run (every first chunk of a fetch), metadata calls
    # with other calldata lengths, a second wallet's run, and a lone call at the end
    plan, pairs = Plan(), []
    for target, data in [("0x" + "11" * 20, abi.call_with_address(abi.GET_ETH_BALANCE, WALLET)),
                         (TOKENS[0], abi.NAME), (TOKENS[1], abi.DECIMALS)]:
        plan.add(target, data)
        pairs.append((target, data))
    for owner in (WALLET, "0x" + "cd" * 20):
        plan.add_balances_of(owner, TOKENS)
        pairs += [(t, abi.call_with_address(abi.BALANCE_OF, owner)) for t in TOKENS]
    plan.add(TOKENS[2], abi.call_with_uint(abi.TOKEN_URI, 7))
    pairs.append((TOKENS[2], abi.call_with_uint(abi.TOKEN_URI, 7)))
    calls = plan.calls
    crossing = calls[0:len(TOKENS) + 1]
    assert isinstance(crossing, abi.CallRuns) and list(crossing) == pairs[:len(TOKENS) + 1]
    for start in range(len(pairs)):
        for stop in range(start + 1, len(pairs) + 1):
            for allow_failure in (True, False):
                assert abi.aggregate3_calldata(calls[start:stop], allow_failure) \
                    == "0x" + abi.encode_aggregate3(pairs[start:stop], allow_failure).hex()
    assert list(crossing[1:-1]) == pairs[1:len(TOKENS)]  # a chunk split in halves after a failure


def test_a_target_that_is_not_hex_is_refused_across_runs_too():
    plan = Plan()
    plan.add("0x" + "zz" * 20, abi.DECIMALS)
    plan.add_balances_of(WALLET, TOKENS)
    with pytest.raises(ValueError):
        abi.aggregate3_calldata(plan.calls[0:3])
    plan = Plan()
    plan.add(TOKENS[0], abi.DECIMALS)
    plan.add_balances_of(WALLET, ["0x" + "zz" * 20, *TOKENS[1:]])
    with pytest.raises(ValueError):
        abi.aggregate3_calldata(plan.calls[0:3])


def test_targets_are_checked_once_and_then_laid_out_from_the_process_memo(monkeypatch):
    monkeypatch.setattr(abi, "_TARGET_HEX", {})
    data = abi.call_with_address(abi.BALANCE_OF, WALLET)
    pairs = [(t, data) for t in TOKENS]
    first = abi.aggregate3_calldata(abi.SameCalldata(TOKENS, data))
    assert abi._TARGET_HEX == {t: t[2:].lower().encode() for t in TOKENS}
    again = abi.aggregate3_calldata(abi.SameCalldata(TOKENS, data))  # laid out from the memo
    assert first == again == "0x" + abi.encode_aggregate3(pairs).hex()
    with pytest.raises(ValueError):  # a target that is not hex is never remembered, next to known ones
        abi.aggregate3_calldata(abi.SameCalldata([*TOKENS[:3], "0x" + "zz" * 20], data))
    assert "0x" + "zz" * 20 not in abi._TARGET_HEX
