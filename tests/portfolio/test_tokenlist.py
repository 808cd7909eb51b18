"""import_tokenlist: a Uniswap-format token list becomes listed ERC-20 assets of one chain, with counts."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from portfolio.models import Asset, Chain

pytestmark = pytest.mark.django_db

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "tokenlist_sample.json"


def run(*args) -> str:
    out = StringIO()
    call_command("import_tokenlist", *args, stdout=out)
    return out.getvalue()


def test_it_imports_the_tokens_of_the_chain_and_reports_counts():
    out = run("ethereum", str(SAMPLE))
    assert "3 created, 0 updated, 0 unchanged, 6 skipped" in out
    assert "other chain: 1" in out and "invalid address: 2" in out and "invalid decimals: 1" in out
    assert "invalid symbol: 1" in out and "duplicate in list: 1" in out
    eth = Chain.objects.get(slug="ethereum")
    tokens = {a.symbol: a for a in Asset.objects.filter(chain=eth, kind="fungible")}
    assert set(tokens) == {"USDC", "USDT", "DAI"}
    usdt = tokens["USDT"]
    assert usdt.address == "0xdAC17F958D2ee523a2206206994597C13D831ec7"  # stored checksummed
    assert (usdt.decimals, usdt.standard, usdt.listed) == (6, "erc20", True)
    assert usdt.logo_url.endswith("/QmTether")
    assert not Asset.objects.filter(chain__slug="arbitrum", symbol="USDC").exists()


def test_re_running_updates_instead_of_duplicating_and_keeps_the_spam_flag(tmp_path):
    run("ethereum", str(SAMPLE))
    Asset.objects.filter(symbol="DAI").update(is_spam=True, name="old name")
    out = run("ethereum", str(SAMPLE))
    assert "0 created, 1 updated, 2 unchanged" in out
    dai = Asset.objects.get(symbol="DAI")
    assert dai.name == "Dai Stablecoin" and dai.is_spam
    assert Asset.objects.filter(chain__slug="ethereum", kind="fungible").count() == 3


def test_an_existing_unlisted_token_becomes_listed():
    eth = Chain.objects.get(slug="ethereum")
    Asset.objects.create(chain=eth, kind="fungible", standard="erc20", address="0x6B175474E89094C44Da98b954EedeAC495271d0F", symbol="DAI", decimals=18)
    out = run("ethereum", str(SAMPLE))
    assert "2 created, 1 updated" in out
    assert Asset.objects.get(symbol="DAI").listed


def test_the_chain_must_be_a_known_evm_chain():
    with pytest.raises(CommandError, match="unknown chain"):
        run("nope", str(SAMPLE))
    with pytest.raises(CommandError, match="not an EVM chain"):
        run("bitcoin", str(SAMPLE))


def test_a_file_that_is_not_a_token_list_is_a_clear_error(tmp_path):
    missing = tmp_path / "missing.json"
    with pytest.raises(CommandError, match="cannot read"):
        run("ethereum", str(missing))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(CommandError, match="not JSON"):
        run("ethereum", str(bad))
    bad.write_text(json.dumps({"name": "x"}))
    with pytest.raises(CommandError, match="not a token list"):
        run("ethereum", str(bad))
