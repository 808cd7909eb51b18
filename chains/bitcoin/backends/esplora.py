"""Esplora / mempool.space backend through bitcoinlib's provider clients (mainnet and testnet).

Esplora has no multi-address endpoint, so this is one ``GET /address/:a`` per address; what the
batched scan saves here is the addresses it does not ask again (cursors)."""

from __future__ import annotations

import json

import httpx
from typing import Any, Mapping, Sequence

from chains.base import ChainError, EndpointConfig, MalformedResponse, RateLimited, RateLimiter
from chains.bitcoin import bcl
from chains.bitcoin.backends import AddressStats, ChainTx
from chains.bitcoin.genesis import check_genesis
from chains.endpoints import EndpointPool, PoolBacked, parse_retry_after

ESPLORA_PROVIDERS = {"blockstream", "mempool"}  # bitcoinlib provider types that speak Esplora's API
ESPLORA_PAGE = 25  # confirmed transactions per page of address/:a/txs/chain
BCL_NETWORK = {"mainnet": "bitcoin", "testnet": "testnet", "signet": "testnet"}


def provider_endpoints(network: str, names: Sequence[str] | None = None) -> list[EndpointConfig]:
    """Endpoints from bitcoinlib's provider list (var/bitcoinlib/providers.json) for ``network``, in
    its priority order; ``names`` restricts and orders them. Raises ``ChainError`` (permanent) when
    none fits."""
    bcl.setup()
    providers = json.loads((bcl.DATA_DIR / "providers.json").read_text())
    wanted = BCL_NETWORK.get(network)
    chosen = []
    for name, p in providers.items():
        if p.get("network") != wanted or p.get("provider") not in ESPLORA_PROVIDERS:
            continue
        if names is not None and name not in names:
            continue
        rank = list(names).index(name) if names is not None else -int(p.get("priority", 0))
        chosen.append((rank, p["url"]))
    if not chosen:
        raise ChainError(f"no Esplora provider configured for bitcoin {network}", permanent=True)
    return [EndpointConfig(url=url, priority=i) for i, (_, url) in enumerate(sorted(chosen))]


class EsploraBackend(PoolBacked):
    """Reads address stats from Esplora-compatible providers with failover, using bitcoinlib's
    ``BlockstreamClient`` for the HTTP requests (``EndpointConfig.url`` = API base ending in ``/``)."""

    batched = False

    def __init__(
        self,
        network: str,
        endpoints: Sequence[EndpointConfig],
        *,
        limiter: RateLimiter | None = None,
        pool: EndpointPool | None = None,
    ) -> None:
        bcl.setup()
        self.chain_network = network
        self.network = BCL_NETWORK.get(network, "bitcoin")
        self.pool = pool or EndpointPool(endpoints, limiter=limiter, verify=self._verify_genesis, protocol="http")
        self._clients: dict[str, Any] = {}

    def _client(self, endpoint: EndpointConfig):
        if endpoint.url not in self._clients:
            from bitcoinlib.services.blockstream import BlockstreamClient

            base = endpoint.url if endpoint.url.endswith("/") else endpoint.url + "/"
            timeout = int(max(1, endpoint.timeout_s))
            client = BlockstreamClient(self.network, base, 1, "", "", {}, timeout)
            self._clients[endpoint.url] = client
        return self._clients[endpoint.url]

    def _get(self, method: str, *path: str) -> tuple[EndpointConfig, Any]:
        def attempt(endpoint: EndpointConfig) -> tuple[EndpointConfig, Any]:
            from bitcoinlib.services.baseclient import ClientError

            client = self._client(endpoint)
            client.resp = None
            try:
                return endpoint, client.compose_request(*path)
            except ClientError:
                resp = getattr(client, "resp", None)
                status = getattr(resp, "status_code", None)
                if status == 429:
                    raise RateLimited("rate limited (HTTP 429)", endpoint=endpoint.url, method=method,
                                      retry_after=parse_retry_after(resp.headers.get("retry-after"))) from None
                raise ChainError(f"HTTP {status}" if status else "request failed", endpoint=endpoint.url, method=method) from None
            except Exception as exc:  # requests' connection errors and timeouts
                raise ChainError(f"connection failed: {type(exc).__name__}", endpoint=endpoint.url, method=method) from None

        return self.pool.call(method, attempt)

    def _verify_genesis(self, endpoint: EndpointConfig) -> None:
        """Esplora answers ``GET block-height/0`` with the genesis hash as plain text."""
        url = (endpoint.url if endpoint.url.endswith("/") else endpoint.url + "/") + "block-height/0"
        try:
            response = httpx.get(url, headers=dict(endpoint.headers), timeout=endpoint.timeout_s, follow_redirects=False)
        except httpx.HTTPError as exc:
            raise ChainError(f"connection failed: {type(exc).__name__}", endpoint=endpoint.url, method="genesis") from None
        if response.status_code == 429:
            raise RateLimited("rate limited (HTTP 429)", endpoint=endpoint.url, method="genesis",
                              retry_after=parse_retry_after(response.headers.get("retry-after")))
        if response.status_code != 200:
            raise ChainError(f"HTTP {response.status_code}", endpoint=endpoint.url, method="genesis")
        check_genesis(self.chain_network, endpoint, response.text)

    def tip_height(self) -> int:
        """Raises ``ChainError``."""
        endpoint, value = self._get("blocks/tip/height", "blocks", "tip", "height")
        if isinstance(value, bool) or not isinstance(value, int):
            raise MalformedResponse("tip height is not an integer", endpoint=endpoint.url, method="blocks/tip/height")
        return value

    def address_stats(self, addresses: Sequence[str]) -> dict[str, AddressStats]:
        """One request per address. Raises ``ChainError``."""
        return {a: self._one(a) for a in dict.fromkeys(addresses)}

    def address_txs(self, addresses: Sequence[str]) -> list[ChainTx]:
        """Every confirmed transaction of ``addresses``: ``GET address/:a/txs/chain[/:last_seen]``, 25
        a page, newest first, per address. Raises ``ChainError``."""
        out: dict[str, ChainTx] = {}
        for address in dict.fromkeys(addresses):
            last = ""
            while True:
                endpoint, page = self._get("address/txs/chain", "address", address, f"txs/chain/{last}" if last else "txs/chain")
                if not isinstance(page, list):
                    raise MalformedResponse("tx list expected", endpoint=endpoint.url, method="address/txs/chain")
                try:
                    txs = [_chain_tx(tx) for tx in page]
                except (KeyError, TypeError, ValueError):
                    raise MalformedResponse("tx list has an unexpected shape", endpoint=endpoint.url,
                                            method="address/txs/chain") from None
                for tx in txs:
                    out.setdefault(tx.txid, tx)
                if len(page) < ESPLORA_PAGE:
                    break
                last = txs[-1].txid
        return sorted(out.values(), key=lambda t: (t.height, t.txid))

    def _one(self, address: str) -> AddressStats:
        endpoint, data = self._get("address", "address", address)
        try:
            chain, pool = _stats(data["chain_stats"]), _stats(data["mempool_stats"])
        except (KeyError, TypeError, ValueError):
            raise MalformedResponse("address answer has an unexpected shape", endpoint=endpoint.url, method="address") from None
        return AddressStats(
            confirmed=chain["funded_txo_sum"] - chain["spent_txo_sum"],
            unconfirmed=pool["funded_txo_sum"] - pool["spent_txo_sum"],
            utxo_count=chain["funded_txo_count"] + pool["funded_txo_count"] - chain["spent_txo_count"] - pool["spent_txo_count"],
            txids=None,
            tx_count=chain["tx_count"] + pool["tx_count"],
        )


def _sats(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("not an amount of satoshis")
    return value


def _chain_tx(tx: Mapping[str, Any]) -> ChainTx:
    """One Esplora transaction (confirmed) as history reads it. Raises ``KeyError``/``TypeError``/``ValueError``."""
    status = tx["status"]
    if status.get("confirmed") is not True:
        raise ValueError("unconfirmed transaction in the chain history")
    txid = tx["txid"]
    if not isinstance(txid, str) or len(txid) != 64:
        raise ValueError("txid")
    inputs = tuple((str(i["prevout"].get("scriptpubkey_address") or ""), _sats(i["prevout"]["value"]))
                   for i in tx["vin"] if not i.get("is_coinbase"))
    outputs = tuple((str(o.get("scriptpubkey_address") or ""), _sats(o["value"])) for o in tx["vout"])
    return ChainTx(txid, _sats(status["block_height"]), _sats(status["block_time"]), inputs, outputs)


def _stats(raw: Mapping[str, Any]) -> dict[str, int]:
    out = {}
    for key in ("funded_txo_sum", "spent_txo_sum", "funded_txo_count", "spent_txo_count", "tx_count"):
        value = raw[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(key)
        out[key] = value
    return out
