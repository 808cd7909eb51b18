"""bcoin node HTTP API backend: address stats for up to ``batch_size`` addresses per request.

bitcoinlib's ``BcoinClient`` asks one address at a time (and opens a new ``Service`` per address in
``getbalance``), so it cannot batch; this talks to the two bulk endpoints directly."""

from __future__ import annotations

from typing import Any, Sequence

import httpx

from chains.base import EndpointConfig, MalformedResponse, RateLimiter
from chains.bitcoin.backends import AddressStats, ChainTx
from chains.bitcoin.codec import CodecError, _convertbits, bech32_decode, decode_segwit, encode_segwit
from chains.bitcoin.genesis import check_genesis
from chains.endpoints import EndpointPool, PoolBacked, http_client, http_json


def bcoin_form(address: str) -> str:
    """bcoin 1.0.2 predates BIP-350: it reads and writes witness v1+ addresses (taproot) in bech32."""
    try:
        hrp, version, program = decode_segwit(address)
    except CodecError:
        return address
    return encode_segwit(hrp, version, program, legacy_bech32=True) if version else address


def bcoin_query_key(address: str) -> str:
    """What to send bcoin to look an address up in its index.

    bcoin's ``Address.getHash`` takes any 40- or 64-character string as a hex hash, and a regtest
    ``bcrt1p``/``bcrt1q`` (32-byte program) address is exactly 64 characters long: sent as text it is
    misread and finds nothing. Segwit addresses are therefore sent as their witness program in hex
    (the key bcoin indexes by); base58 addresses (26-35 characters) as they are."""
    try:
        _, _, program = decode_segwit(address)
    except CodecError:
        return address
    return bytes(program).hex()


def _int(value: Any, what: str, endpoint: EndpointConfig) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedResponse(f"{what} is not an integer number of satoshis", endpoint=endpoint.url, method="tx/address")
    return value


class BcoinBackend(PoolBacked):
    """Reads balances from bcoin nodes (``EndpointConfig.url`` = HTTP API base) with failover.

    One ``POST /tx/address`` per ``batch_size`` addresses gives every transaction (chain and mempool)
    touching them, with the spent coins of their inputs: enough for confirmed and pending amounts,
    unspent outputs and transaction ids without a second request."""

    batched = True

    def __init__(
        self,
        endpoints: Sequence[EndpointConfig],
        *,
        limiter: RateLimiter | None = None,
        batch_size: int = 100,
        http: httpx.Client | None = None,
        pool: EndpointPool | None = None,
        network: str | None = None,
    ) -> None:
        """``network`` (e.g. "regtest"): each endpoint's genesis block is checked against it before use."""
        self.network = network
        self.pool = pool or EndpointPool(endpoints, limiter=limiter, verify=self._verify_genesis if network else None,
                                         protocol="http")
        self.batch_size = batch_size
        self.http = http or http_client()

    def _request(self, method: str, path: str, body: Any = None) -> Any:
        def attempt(endpoint: EndpointConfig) -> Any:
            verb = "GET" if body is None else "POST"
            return endpoint, http_json(self.http, endpoint, method, verb, endpoint.url.rstrip("/") + path, body)

        return self.pool.call(method, attempt)

    def _verify_genesis(self, endpoint: EndpointConfig) -> None:
        header = http_json(self.http, endpoint, "genesis", "GET", endpoint.url.rstrip("/") + "/block/0")
        check_genesis(self.network or "", endpoint, header.get("hash") if isinstance(header, dict) else header)

    def tip_height(self) -> int:
        """Height of the node's best block. Raises ``ChainError``."""

        endpoint, info = self._request("info", "/")
        try:
            height = info["chain"]["height"]
        except (TypeError, KeyError):
            raise MalformedResponse("node info has no chain height", endpoint=endpoint.url, method="info") from None
        return _int(height, "chain height", endpoint)

    def address_stats(self, addresses: Sequence[str]) -> dict[str, AddressStats]:
        """Stats of every address, ``batch_size`` per request. Raises ``ChainError``."""
        out: dict[str, AddressStats] = {}
        unique = list(dict.fromkeys(addresses))
        for start in range(0, len(unique), self.batch_size):
            out.update(self._chunk(unique[start : start + self.batch_size]))
        return out

    def _chunk(self, addresses: list[str]) -> dict[str, AddressStats]:
        wire = {bcoin_form(a): a for a in addresses}
        keys = [bcoin_query_key(a) for a in addresses]
        endpoint, txs = self._request("tx/address", "/tx/address", {"addresses": keys})
        if not isinstance(txs, list):
            raise MalformedResponse("tx list expected", endpoint=endpoint.url, method="tx/address")
        stats = {a: AddressStats() for a in addresses}
        created: dict[tuple[str, int], tuple[str, bool]] = {}
        spent: set[tuple[str, int]] = set()
        seen: set[str] = set()
        try:
            for tx in txs:
                txid = tx["hash"]
                if not isinstance(txid, str) or txid in seen:
                    continue  # bcoin lists a tx once per address it touches in some versions
                seen.add(txid)
                height = tx.get("height")
                confirmed = isinstance(height, int) and not isinstance(height, bool) and height >= 0
                for index, output in enumerate(tx["outputs"]):
                    owner = wire.get(output.get("address") or "")
                    if owner is None:
                        continue
                    value = _int(output["value"], "output value", endpoint)
                    st = stats[owner]
                    if confirmed:
                        st.confirmed += value
                    else:
                        st.unconfirmed += value
                    st.txids.add(txid)
                    created[(txid, index)] = (owner, confirmed)
                for inp in tx["inputs"]:
                    coin = inp.get("coin")
                    prevout = inp.get("prevout") or {}
                    if coin:
                        spent.add((prevout.get("hash"), prevout.get("index")))
                    owner = wire.get((coin or {}).get("address") or "")
                    if owner is None:
                        continue
                    value = _int(coin["value"], "input value", endpoint)
                    st = stats[owner]
                    if confirmed:
                        st.confirmed -= value
                    else:
                        st.unconfirmed -= value
                    st.txids.add(txid)
        except (KeyError, TypeError, AttributeError):
            raise MalformedResponse("tx list has an unexpected shape", endpoint=endpoint.url, method="tx/address") from None
        for outpoint, (owner, _) in created.items():
            if outpoint not in spent:
                stats[owner].utxo_count += 1
        for owner, st in stats.items():
            st.tx_count = len(st.txids)
            if st.confirmed < 0:
                raise MalformedResponse("negative confirmed balance: incomplete history", endpoint=endpoint.url, method="tx/address")
        return stats

    def address_txs(self, addresses: Sequence[str]) -> list[ChainTx]:
        """Every confirmed transaction touching ``addresses``, ``batch_size`` addresses per request
        (the same ``POST /tx/address`` as the balances). Raises ``ChainError``."""
        out: dict[str, ChainTx] = {}
        unique = list(dict.fromkeys(addresses))
        for start in range(0, len(unique), self.batch_size):
            for tx in self._txs(unique[start : start + self.batch_size]):
                out.setdefault(tx.txid, tx)
        return sorted(out.values(), key=lambda t: (t.height, t.txid))

    def _txs(self, addresses: list[str]) -> list[ChainTx]:
        keys = [bcoin_query_key(a) for a in addresses]
        endpoint, txs = self._request("tx/address", "/tx/address", {"addresses": keys})
        if not isinstance(txs, list):
            raise MalformedResponse("tx list expected", endpoint=endpoint.url, method="tx/address")
        out = []
        try:
            for tx in txs:
                height = tx.get("height")
                if not isinstance(height, int) or isinstance(height, bool) or height < 0:
                    continue  # mempool: not history yet
                txid = tx["hash"]
                if not isinstance(txid, str) or len(txid) != 64:
                    raise TypeError("txid")
                inputs = tuple(
                    (app_form(inp["coin"].get("address") or ""), _int(inp["coin"]["value"], "input value", endpoint))
                    for inp in tx["inputs"] if inp.get("coin")
                )
                outputs = tuple(
                    (app_form(o.get("address") or ""), _int(o["value"], "output value", endpoint)) for o in tx["outputs"]
                )
                out.append(ChainTx(txid, height, _int(tx["time"], "block time", endpoint), inputs, outputs))
        except (KeyError, TypeError, AttributeError):
            raise MalformedResponse("tx list has an unexpected shape", endpoint=endpoint.url, method="tx/address") from None
        return out


def app_form(address: str) -> str:
    """bcoin's legacy-bech32 form of a witness v1+ address back in BIP-350 bech32m (the app's form)."""
    try:
        hrp, data, _ = bech32_decode(address)
    except CodecError:
        return address
    if not data or data[0] == 0:
        return address
    try:
        program = bytes(_convertbits(data[1:], 5, 8, False))
    except CodecError:
        return address
    return encode_segwit(hrp, data[0], program)
