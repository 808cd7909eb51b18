"""Bitcoin backends that fail: down, HTTP errors, garbage, 429 -> transient ChainError, never partial zeros."""

from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Iterator

import pytest

from chains.base import ChainConfig, ChainError, EndpointConfig, FetchRequest, WalletRef
from chains.bitcoin.adapter import BitcoinAdapter
from chains.bitcoin.genesis import GENESIS
from devnet.common import free_port

P2WPKH = "bcrt1qxlllmsjy83hm756ly78gpvzyn5mwmsy68gwhy0"
ZPUB = "zpub6rFR7y4Q2AijBEqTUquhVz398htDFrtymD9xYYfG1m4wAcvPhXNfE3EfH1r1ADqtfSdVCToUG868RvUUkgDKf31mGDtKsAYz2oz2AGutZYs"
MAINNET = ChainConfig(slug="bitcoin", family="bitcoin", network="mainnet", native_symbol="BTC", native_name="Bitcoin", native_decimals=8)
REGTEST = ChainConfig(slug="bitcoin-regtest", family="bitcoin", network="regtest", native_symbol="BTC", native_name="Bitcoin", native_decimals=8)

Reply = tuple[int, dict[str, str], bytes]


@contextmanager
def misbehaving(answer: Callable[[str, str], Reply]) -> Iterator[str]:
    """A local HTTP server answering every request with ``answer(method, path)``."""

    class Handler(BaseHTTPRequestHandler):
        def _reply(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            self.rfile.read(length)
            status, headers, body = answer(self.command, self.path)
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _reply

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def ok_json(value) -> Reply:
    return 200, {"content-type": "application/json"}, json.dumps(value).encode()


def bcoin_like(tx_answer: Reply) -> Callable[[str, str], Reply]:
    """A bcoin that answers its info page and genesis header but misbehaves on /tx/address."""
    def answer(method: str, path: str) -> Reply:
        if path == "/block/0":
            return ok_json({"hash": GENESIS["regtest"], "height": 0})
        return ok_json({"chain": {"height": 500}}) if path == "/" else tx_answer

    return answer


def fetch(config: ChainConfig, urls: list[str], wallet: str) -> None:
    endpoints = [EndpointConfig(url=u, priority=i, timeout_s=3.0) for i, u in enumerate(urls)]
    BitcoinAdapter(config, endpoints).fetch(FetchRequest(wallets=(WalletRef(wallet),)))


@pytest.mark.parametrize(
    "reply",
    [
        (500, {}, b"internal error"),
        (200, {"content-type": "application/json"}, b"<html>not json"),
        ok_json({"not": "a list"}),
        ok_json([{"hash": "ab" * 32, "height": 3, "inputs": [], "outputs": [{"address": P2WPKH, "value": "1.5"}]}]),
        ok_json([{"unexpected": True}]),
        (429, {"retry-after": "0"}, b"slow down"),
    ],
    ids=["http-500", "not-json", "not-a-list", "amount-as-string", "wrong-shape", "rate-limited"],
)
def test_a_misbehaving_bcoin_raises_a_transient_error(reply):
    with misbehaving(bcoin_like(reply)) as url:
        with pytest.raises(ChainError) as err:
            fetch(REGTEST, [url], P2WPKH)
    assert not err.value.permanent


def test_a_node_that_is_down_raises_a_transient_error():
    with pytest.raises(ChainError) as err:
        fetch(REGTEST, [f"http://127.0.0.1:{free_port()}"], P2WPKH)
    assert not err.value.permanent and "no endpoint answered" in str(err.value)


def test_it_fails_over_to_the_next_node(bitcoin_devnet, bitcoin_chain_config):
    w = bitcoin_devnet.wallet("Demo P2WPKH")
    with misbehaving(bcoin_like((502, {}, b"bad gateway"))) as broken:
        endpoints = [EndpointConfig(url=broken, priority=0), EndpointConfig(url=bitcoin_devnet.url, priority=1)]
        result = BitcoinAdapter(bitcoin_chain_config, endpoints).fetch(FetchRequest(wallets=(WalletRef(w["address"]),)))
    assert str(result.balances[0].amount) == w["balances"]["native"]
    assert result.endpoint == EndpointConfig(url=bitcoin_devnet.url).label


def esplora(stats_for: Callable[[str], Reply]) -> Callable[[str, str], Reply]:
    def answer(method: str, path: str) -> Reply:
        if path.endswith("/blocks/tip/height"):
            return 200, {"content-type": "text/plain"}, b"840000"
        if path.endswith("/block-height/0"):
            return 200, {"content-type": "text/plain"}, GENESIS["mainnet"].encode()
        return stats_for(path.rsplit("/", 1)[-1])

    return answer


def stats(funded=0, spent=0, mfunded=0, mspent=0, txs=0, outs=0, spends=0) -> Reply:
    return ok_json({
        "address": "x",
        "chain_stats": {"funded_txo_count": outs, "funded_txo_sum": funded, "spent_txo_count": spends, "spent_txo_sum": spent, "tx_count": txs},
        "mempool_stats": {"funded_txo_count": 1 if mfunded else 0, "funded_txo_sum": mfunded, "spent_txo_count": 0, "spent_txo_sum": mspent, "tx_count": 1 if mfunded else 0},
    })


def test_the_esplora_backend_reads_through_bitcoinlib_and_scans_an_xpub():
    first = "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu"  # BIP-84 0/0
    answer = esplora(lambda a: stats(150_000, 50_000, 7_000, 0, 2, 2, 1) if a == first else stats())
    with misbehaving(answer) as url:
        result = BitcoinAdapter(MAINNET, [EndpointConfig(url=url)]).fetch(FetchRequest(wallets=(WalletRef(ZPUB),)))
    (b,) = result.balances
    assert (b.amount, b.unconfirmed, b.details["utxo_count"], b.details["tx_count"]) == (100_000, 7_000, 2, 3)
    assert result.height == 840000 and list(b.details["addresses"]) == [first]
    assert result.request_count == 1 + 1 + 21 + 20  # genesis check + tip + one per address (0/0 used: 21 receive, 20 change)


@pytest.mark.parametrize(
    "reply",
    [(503, {}, b"down"), (200, {"content-type": "text/html"}, b"<html>"), ok_json({"chain_stats": {"funded_txo_sum": 1.5}})],
    ids=["http-503", "html", "float-amount"],
)
def test_a_misbehaving_esplora_raises_rather_than_returning_zeros(reply):
    with misbehaving(esplora(lambda a: reply)) as url:
        with pytest.raises(ChainError) as err:
            fetch(MAINNET, [url], "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu")
    assert not err.value.permanent


def test_the_esplora_providers_come_from_bitcoinlibs_list_under_var():
    from chains.bitcoin import bcl
    from chains.bitcoin.backends.esplora import provider_endpoints

    endpoints = provider_endpoints("mainnet", ["mempool", "blockstream"])
    assert [e.url for e in endpoints] == ["https://mempool.space/api/", "https://blockstream.info/api/"]
    assert bcl.DATA_DIR.is_relative_to(bcl.ROOT / "var") and (bcl.DATA_DIR / "install.log").exists()


def test_a_node_of_another_network_is_skipped_for_the_next_one(bitcoin_devnet, bitcoin_chain_config):
    w = bitcoin_devnet.wallet("Demo P2WPKH")
    asked: list[str] = []

    def testnet_node(method: str, path: str) -> Reply:
        asked.append(path)
        return ok_json({"hash": GENESIS["testnet"], "height": 0}) if path == "/block/0" else ok_json({"chain": {"height": 9}})

    with misbehaving(testnet_node) as other:
        endpoints = [EndpointConfig(url=other, priority=0), EndpointConfig(url=bitcoin_devnet.url, priority=1)]
        result = BitcoinAdapter(bitcoin_chain_config, endpoints).fetch(FetchRequest(wallets=(WalletRef(w["address"]),)))
        assert asked == ["/block/0"], "nothing but the identity check was asked of the other network"
        with pytest.raises(ChainError) as err:
            fetch(bitcoin_chain_config, [other], w["address"])
    assert str(result.balances[0].amount) == w["balances"]["native"]
    assert err.value.permanent and "genesis" in str(err.value) and "127.0.0.1" in str(err.value)


def test_an_esplora_of_another_network_is_refused():
    def testnet_esplora(method: str, path: str) -> Reply:
        if path.endswith("/block-height/0"):
            return 200, {"content-type": "text/plain"}, GENESIS["testnet"].encode()
        return 200, {"content-type": "text/plain"}, b"840000"

    with misbehaving(testnet_esplora) as url:
        with pytest.raises(ChainError) as err:
            fetch(MAINNET, [url], "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq")
    assert err.value.permanent and "genesis" in str(err.value)
