"""TokenBalance values: the bulk maker gives the very objects the constructor gives."""

import copy
import dataclasses
import pickle

import pytest

from chains.base import FUNGIBLE, NATIVE, AssetRef, TokenBalance, token_balances

OWNER = "0x" + "ab" * 20
ASSETS = [AssetRef(kind=FUNGIBLE, address="0x" + f"{i:040x}", symbol=f"T{i}", name=f"Token {i}", decimals=18,
                   standard="erc20") for i in range(3)]
ASSETS.append(AssetRef(kind=NATIVE, address=None, symbol="ETH", name="Ether", decimals=18))
AMOUNTS = [1, 2**256 - 1, 10**18, 0]


def outcome(action):
    try:
        return "ok", action()
    except Exception as exc:  # noqa: BLE001 - the outcome is what is compared
        return "raised", type(exc)


def test_token_balances_are_what_the_constructor_makes():
    made = list(token_balances(OWNER, ASSETS, AMOUNTS))
    built = [TokenBalance(OWNER, a, n) for a, n in zip(ASSETS, AMOUNTS)]
    assert made == built
    for m, b in zip(made, built):
        assert type(m) is TokenBalance
        assert repr(m) == repr(b)
        fields = ("owner", "asset", "amount", "unconfirmed", "details")
        assert [getattr(m, f) for f in fields] == [getattr(b, f) for f in fields]
        assert dataclasses.astuple(m) == dataclasses.astuple(b)
        assert outcome(lambda: hash(m)) == outcome(lambda: hash(b))
        assert dataclasses.replace(m, amount=5) == dataclasses.replace(b, amount=5) == TokenBalance(OWNER, b.asset, 5)
        assert pickle.loads(pickle.dumps(m)) == m
        assert copy.deepcopy(m) == m
        assert m != TokenBalance(OWNER, b.asset, b.amount + 1)


def test_token_balances_are_frozen_and_own_their_details():
    first, second = token_balances(OWNER, ASSETS[:2], AMOUNTS[:2])
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.amount = 7
    with pytest.raises(dataclasses.FrozenInstanceError):
        del first.owner
    built = TokenBalance(OWNER, ASSETS[0], AMOUNTS[0])
    # no other attribute either way (the frozen dataclass raises)
    assert outcome(lambda: setattr(first, "extra", 1)) == outcome(lambda: setattr(built, "extra", 1))
    assert first.details == {} and first.details is not second.details
    assert first.amount == AMOUNTS[0]
