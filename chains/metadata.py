"""Safe fetching of off-chain token metadata (NFT JSON) and token logos (raster images): data:, ipfs://
and public http(s) only."""

from __future__ import annotations

import base64
import ipaddress
import json
import socket
import threading
import time
from collections import OrderedDict
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, Callable, Iterable
from urllib.parse import unquote_to_bytes, urljoin, urlsplit

import urllib3

from chains.base import ChainError

MAX_BYTES = 1_000_000
TIMEOUT_S = 5.0  # the whole fetch: connect, headers, body and redirects together
MAX_REDIRECTS = 3
CHUNK = 64 * 1024
CONCURRENCY = 4  # metadata documents fetched at once by ``fetch_many``
BUDGET_S = 20.0  # ``fetch_many`` leaves what is not done by then for the next sync
CACHE_SIZE = 2048
CACHE_OK_S = 3600.0
CACHE_FAILED_S = 300.0


class MetadataError(ChainError):
    """Metadata could not be fetched or is not acceptable; reported as a problem, never fatal."""

    permanent = True


def resolve_uri(uri: str, ipfs_gateway: str) -> str:
    """Map ``ipfs://CID/path`` (and ``ipfs://ipfs/CID``) onto the configured gateway; other URIs as is."""
    uri = uri.strip()
    if uri.startswith("ipfs://"):
        rest = uri[len("ipfs://"):]
        if rest.startswith("ipfs/"):
            rest = rest[len("ipfs/"):]
        return ipfs_gateway.rstrip("/") + "/" + rest
    if uri.startswith("ar://"):
        return "https://arweave.net/" + uri[len("ar://"):]
    return uri


def decode_data_uri(uri: str, max_bytes: int = MAX_BYTES) -> tuple[str, bytes]:
    """``data:[<mime>][;base64],<payload>`` -> (mime, bytes)."""
    header, sep, payload = uri[len("data:"):].partition(",")
    if not sep:
        raise MetadataError("malformed data: URI")
    parts = header.split(";")
    mime = (parts[0] or "text/plain").lower()
    try:
        raw = base64.b64decode(payload, validate=False) if "base64" in parts[1:] else unquote_to_bytes(payload)
    except (ValueError, TypeError):
        raise MetadataError("undecodable data: URI") from None
    if len(raw) > max_bytes:
        raise MetadataError("data: URI larger than the cap")
    return mime, raw


# IPv6 ranges that carry (or translate to) an IPv4 address, so they can reach any IPv4 host including
# loopback and private ones: IPv4-compatible ::a.b.c.d (deprecated), NAT64 (well-known and local-use),
# 6to4, Teredo. Python's is_global does not refuse all of them on every version.
_IPV4_EMBEDDING = tuple(ipaddress.ip_network(n) for n in ("::/96", "64:ff9b::/96", "64:ff9b:1::/48", "2002::/16", "2001::/32"))


def is_public_ip(ip: str) -> bool:
    """True only for globally routable unicast addresses: no loopback, private, link-local, CGNAT,
    multicast, reserved, unspecified, documentation or cloud-metadata address, and no IPv6 form that
    embeds an IPv4 one (mapped ``::ffff:``, compatible ``::127.0.0.1``, NAT64, 6to4, Teredo)."""
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])  # a scoped address (fe80::1%eth0) is link-local
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped:
            addr = addr.ipv4_mapped
        elif any(addr in net for net in _IPV4_EMBEDDING):
            return False
    return bool(
        addr.is_global
        and not (addr.is_multicast or addr.is_private or addr.is_loopback or addr.is_link_local
                 or addr.is_reserved or addr.is_unspecified)
        and not (isinstance(addr, ipaddress.IPv6Address) and addr.is_site_local)
    )


def _resolve_public(host: str, port: int, resolver: Callable[..., list]) -> str:
    try:
        infos = resolver(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise MetadataError(f"cannot resolve host {host!r}") from None
    ips = [info[4][0] for info in infos]
    if not ips or not all(is_public_ip(ip) for ip in ips):
        raise MetadataError(f"refusing non-public address for host {host!r}")
    return ips[0]


class _Watchdog:
    """Shuts the connection's socket down at the deadline, whatever phase the fetch is in (a server that
    trickles headers or body one byte at a time never gets a read timeout)."""

    def __init__(self, seconds: float) -> None:
        self.fired = False
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(seconds, 0.0), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock: socket.socket | None) -> None:
        with self._lock:
            self._sock = sock
            if self.fired:
                self._shutdown()

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            self._shutdown()

    def _shutdown(self) -> None:
        if self._sock is not None:
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cancel(self) -> None:
        self._timer.cancel()


def _watched(pool_cls: type, watchdog: _Watchdog) -> type:
    """``pool_cls``'s connection class, reporting each new socket to ``watchdog``."""

    class Connection(pool_cls.ConnectionCls):  # type: ignore[name-defined,misc]
        def connect(self) -> None:
            super().connect()
            watchdog.watch(self.sock)

    return Connection


def fetch_json(
    uri: str,
    *,
    ipfs_gateway: str = "https://ipfs.io/ipfs/",
    timeout_s: float = TIMEOUT_S,
    max_bytes: int = MAX_BYTES,
    resolver: Callable[..., list] = socket.getaddrinfo,
    cache: MetadataCache | bool | None = None,
) -> dict[str, Any]:
    """Fetch and parse a metadata JSON object.

    ``data:`` URIs are decoded locally; ``ipfs://`` goes through ``ipfs_gateway``; ``http(s)`` is
    fetched only when every address the host resolves to is public, and the connection goes to the
    address that was checked (no DNS rebinding). Redirects are followed (at most 3), each re-checked.
    ``timeout_s`` bounds the whole fetch (connect, headers, body, redirects) and ``max_bytes`` the
    decoded body across all reads. Answers (and refusals) are remembered per URL in ``cache``
    (default: the process-wide ``CACHE``; pass ``False`` for none).
    Raises ``MetadataError`` for anything refused, malformed, too large, too slow or not a JSON object.
    """
    url = resolve_uri(uri, ipfs_gateway)
    if url.startswith("data:"):
        _, raw = decode_data_uri(url, max_bytes)
        return _parse_json(raw)
    store = CACHE if cache is None else cache
    if store:
        return store.get_or_fetch(url, lambda: _fetch_http(url, timeout_s, max_bytes, resolver))
    return _fetch_http(url, timeout_s, max_bytes, resolver)


def _fetch_http(url: str, timeout_s: float, max_bytes: int, resolver: Callable[..., list]) -> dict[str, Any]:
    return _parse_json(_fetch_bytes(url, timeout_s, max_bytes, resolver, "application/json"))


def _fetch_bytes(url: str, timeout_s: float, max_bytes: int, resolver: Callable[..., list], accept: str) -> bytes:
    deadline = time.monotonic() + timeout_s
    watchdog = _Watchdog(timeout_s)
    try:
        for _ in range(MAX_REDIRECTS + 1):
            body, location = _get_once(url, deadline, watchdog, max_bytes, resolver, accept)
            if location is None:
                return body
            url = urljoin(url, location)
        raise MetadataError("too many redirects")
    finally:
        watchdog.cancel()


# Raster formats a logo may be, told by their first bytes (never by the server's Content-Type).
ICON_MAX_BYTES = 256 * 1024
_RASTER_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def sniff_raster(data: bytes) -> str | None:
    """The MIME type of a PNG, JPEG, GIF or WebP image from its magic bytes; None for anything else
    (SVG, HTML, scripts, other formats), whatever it claims to be."""
    for magic, mime in _RASTER_MAGIC:
        if data.startswith(magic):
            return mime
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def fetch_image(
    uri: str,
    *,
    ipfs_gateway: str = "https://ipfs.io/ipfs/",
    timeout_s: float = TIMEOUT_S,
    max_bytes: int = ICON_MAX_BYTES,
    resolver: Callable[..., list] = socket.getaddrinfo,
) -> tuple[str, bytes]:
    """Fetch a logo: (MIME type, bytes) of a raster image at most ``max_bytes`` long, by the same rules
    as ``fetch_json`` (data:, ipfs:// through the gateway, public http(s) only, every redirect
    re-checked, one deadline for the whole fetch). Not cached: a worker fetches each logo once.
    Raises ``MetadataError`` for anything refused, too large, too slow or not PNG/JPEG/GIF/WebP."""
    raw = _fetch_raw(uri, ipfs_gateway, timeout_s, max_bytes, resolver)
    mime = sniff_raster(raw)
    if mime is None:
        raise MetadataError("not a PNG, JPEG, GIF or WebP image")
    return mime, raw


def fetch_logo(uri: str, *, ipfs_gateway: str = "https://ipfs.io/ipfs/", timeout_s: float = TIMEOUT_S,
               max_bytes: int = ICON_MAX_BYTES, resolver: Callable[..., list] = socket.getaddrinfo) -> tuple[str, bytes]:
    """An asset's logo from its ``logo_url``: the image itself (``fetch_image``), or a metadata document
    (a Metaplex or ERC token's JSON, at most ``MAX_BYTES``) whose ``image`` is then fetched as one.
    One hop at most; each fetch has its own deadline. Raises ``MetadataError`` as ``fetch_image``."""
    raw = _fetch_raw(uri, ipfs_gateway, timeout_s, MAX_BYTES, resolver)
    mime = sniff_raster(raw)
    if mime is not None:
        if len(raw) > max_bytes:
            raise MetadataError("logo larger than the cap")
        return mime, raw
    try:
        document = _parse_json(raw)
    except MetadataError:
        raise MetadataError("not a PNG, JPEG, GIF or WebP image") from None
    image = image_url(document, ipfs_gateway)
    if not image:
        raise MetadataError("metadata names no raster image")
    return fetch_image(image, ipfs_gateway=ipfs_gateway, timeout_s=timeout_s, max_bytes=max_bytes, resolver=resolver)


def _fetch_raw(uri: str, ipfs_gateway: str, timeout_s: float, max_bytes: int, resolver: Callable[..., list]) -> bytes:
    url = resolve_uri(uri, ipfs_gateway)
    if url.startswith("data:"):
        return decode_data_uri(url, max_bytes)[1]
    return _fetch_bytes(url, timeout_s, max_bytes, resolver, "image/png, image/jpeg, image/gif, image/webp, application/json")


def _get_once(url: str, deadline: float, watchdog: _Watchdog, max_bytes: int,
              resolver: Callable[..., list], accept: str = "application/json") -> tuple[bytes, str | None]:
    """One GET: (body, None), or (b"", location) for a redirect."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise MetadataError("malformed metadata URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise MetadataError(f"unsupported URI scheme {parts.scheme!r}")
    ip = _resolve_public(parts.hostname, port, resolver)
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise MetadataError("metadata fetch timed out")
    pool_cls = urllib3.HTTPSConnectionPool if parts.scheme == "https" else urllib3.HTTPConnectionPool
    kwargs: dict[str, Any] = {"server_hostname": parts.hostname, "assert_hostname": parts.hostname} if parts.scheme == "https" else {}
    pool = pool_cls(ip, port=port, timeout=urllib3.Timeout(connect=remaining, read=remaining), retries=False, maxsize=1, **kwargs)
    pool.ConnectionCls = _watched(pool_cls, watchdog)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host_header = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
    response = None
    try:
        response = pool.urlopen(
            "GET", path, headers={"Host": host_header, "Accept": accept},
            preload_content=False, redirect=False,
        )
        if response.status in (301, 302, 303, 307, 308) and response.headers.get("location"):
            return b"", response.headers["location"]
        if response.status != 200:
            raise MetadataError(f"metadata fetch answered HTTP {response.status}")
        declared = response.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > max_bytes:
            raise MetadataError("metadata larger than the cap")
        chunks: list[bytes] = []
        total = 0
        while True:
            chunk = response.read(CHUNK, decode_content=True)
            if not chunk:
                break
            total += len(chunk)
            if total > max_bytes:  # counted after decompression, across every read
                raise MetadataError("metadata larger than the cap")
            if time.monotonic() > deadline:
                raise MetadataError("metadata fetch timed out")
            chunks.append(chunk)
        if watchdog.fired:  # the socket was shut down mid-body: what arrived is truncated
            raise MetadataError("metadata fetch timed out")
        return b"".join(chunks), None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        if watchdog.fired or time.monotonic() > deadline:
            raise MetadataError("metadata fetch timed out") from None
        raise MetadataError(f"metadata fetch failed: {type(exc).__name__}") from None
    finally:
        if response is not None:
            response.release_conn()
        pool.close()


class MetadataCache:
    """Metadata answers per URL for this process: documents for ``ok_s`` seconds, refusals and failures
    for ``failed_s`` (so one slow host costs one deadline, not one per token), at most ``size`` URLs.
    Concurrent fetches of one URL wait for the first instead of fetching it again."""

    def __init__(self, size: int = CACHE_SIZE, ok_s: float = CACHE_OK_S, failed_s: float = CACHE_FAILED_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.size, self.ok_s, self.failed_s, self._clock = size, ok_s, failed_s, clock
        self._items: OrderedDict[str, tuple[float, dict[str, Any] | MetadataError]] = OrderedDict()
        self._inflight: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def get_or_fetch(self, url: str, fetch: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        while True:
            with self._lock:
                hit = self._items.get(url)
                if hit is not None and hit[0] > self._clock():
                    self._items.move_to_end(url)
                    return _answer(hit[1])
                waiter = self._inflight.get(url)
                if waiter is None:
                    self._inflight[url] = threading.Event()
                    break
            waiter.wait()
        outcome: dict[str, Any] | MetadataError
        try:
            outcome = fetch()
        except MetadataError as exc:
            outcome = exc
        with self._lock:
            ttl = self.failed_s if isinstance(outcome, MetadataError) else self.ok_s
            self._items[url] = (self._clock() + ttl, outcome)
            self._items.move_to_end(url)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
            self._inflight.pop(url).set()
        return _answer(outcome)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


def _answer(outcome: dict[str, Any] | MetadataError) -> dict[str, Any]:
    if isinstance(outcome, MetadataError):
        raise MetadataError(outcome.detail)
    return dict(outcome)  # a copy: callers may not change the cached document


CACHE = MetadataCache()


def fetch_many(uris: Iterable[str], fetch: Callable[[str], Any], *, concurrency: int = CONCURRENCY,
               budget_s: float = BUDGET_S) -> dict[str, Any]:
    """``fetch(uri)`` for each distinct URI, ``concurrency`` at a time, for at most ``budget_s`` seconds.

    Returns uri -> the answer, or the exception it raised; URIs not finished within the budget are left
    out (the caller tries them next time). Threads still running then end by their own deadline.
    """
    todo = list(dict.fromkeys(uris))
    if not todo:
        return {}
    out: dict[str, Any] = {}
    executor = ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(todo))), thread_name_prefix="metadata")
    futures: dict[Future, str] = {executor.submit(fetch, uri): uri for uri in todo}
    end = time.monotonic() + budget_s
    pending = set(futures)
    try:
        while pending:
            left = end - time.monotonic()
            if left <= 0:
                break
            done, pending = wait(pending, timeout=left, return_when=FIRST_COMPLETED)
            for future in done:
                exc = future.exception()
                out[futures[future]] = exc if exc is not None else future.result()
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
    return out


def _parse_json(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise MetadataError("metadata is not JSON") from None
    if not isinstance(data, dict):
        raise MetadataError("metadata is not a JSON object")
    return data


def image_url(metadata: dict[str, Any], ipfs_gateway: str) -> str:
    """The displayable image URL of a metadata object: http(s) or a raster data: URI, never SVG/script."""
    raw = metadata.get("image") or metadata.get("image_url") or metadata.get("imageUrl") or ""
    if not isinstance(raw, str):
        return ""
    url = resolve_uri(raw, ipfs_gateway)
    if url.startswith("data:"):
        mime = url[5:].split(";", 1)[0].split(",", 1)[0].lower()
        return url if mime in ("image/png", "image/jpeg", "image/gif", "image/webp") and len(url) <= MAX_BYTES else ""
    return url if urlsplit(url).scheme in ("http", "https") else ""
