"""Safe fetching of off-chain token metadata (NFT JSON): data:, ipfs:// and public http(s) only."""

from __future__ import annotations

import base64
import ipaddress
import json
import socket
from typing import Any, Callable
from urllib.parse import unquote_to_bytes, urljoin, urlsplit

import urllib3

from chains.base import ChainError

MAX_BYTES = 1_000_000
TIMEOUT_S = 5.0
MAX_REDIRECTS = 3


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


def is_public_ip(ip: str) -> bool:
    """True only for globally routable unicast addresses (no loopback, private, link-local, CGNAT,
    multicast, reserved, cloud metadata, or IPv4-mapped forms of those)."""
    addr = ipaddress.ip_address(ip)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    return bool(addr.is_global) and not addr.is_multicast and str(addr) != "169.254.169.254"


def _resolve_public(host: str, port: int, resolver: Callable[..., list]) -> str:
    try:
        infos = resolver(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise MetadataError(f"cannot resolve host {host!r}") from None
    ips = [info[4][0] for info in infos]
    if not ips or not all(is_public_ip(ip) for ip in ips):
        raise MetadataError(f"refusing non-public address for host {host!r}")
    return ips[0]


def fetch_json(
    uri: str,
    *,
    ipfs_gateway: str = "https://ipfs.io/ipfs/",
    timeout_s: float = TIMEOUT_S,
    max_bytes: int = MAX_BYTES,
    resolver: Callable[..., list] = socket.getaddrinfo,
) -> dict[str, Any]:
    """Fetch and parse a metadata JSON object.

    ``data:`` URIs are decoded locally; ``ipfs://`` goes through ``ipfs_gateway``; ``http(s)`` is
    fetched only when every address the host resolves to is public, and the connection goes to the
    address that was checked (no DNS rebinding). Redirects are followed (at most 3), each re-checked.
    Raises ``MetadataError`` for anything refused, too large, too slow or not a JSON object.
    """
    url = resolve_uri(uri, ipfs_gateway)
    if url.startswith("data:"):
        _, raw = decode_data_uri(url, max_bytes)
        return _parse_json(raw)
    for _ in range(MAX_REDIRECTS + 1):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise MetadataError(f"unsupported URI scheme {parts.scheme!r}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        ip = _resolve_public(parts.hostname, port, resolver)
        pool_cls = urllib3.HTTPSConnectionPool if parts.scheme == "https" else urllib3.HTTPConnectionPool
        kwargs: dict[str, Any] = {"server_hostname": parts.hostname, "assert_hostname": parts.hostname} if parts.scheme == "https" else {}
        pool = pool_cls(ip, port=port, timeout=urllib3.Timeout(total=timeout_s), retries=False, maxsize=1, **kwargs)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host_header = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
        try:
            response = pool.urlopen(
                "GET", path, headers={"Host": host_header, "Accept": "application/json"},
                preload_content=False, redirect=False,
            )
        except urllib3.exceptions.HTTPError as exc:
            raise MetadataError(f"metadata fetch failed: {type(exc).__name__}") from None
        try:
            if response.status in (301, 302, 303, 307, 308) and response.headers.get("location"):
                url = urljoin(url, response.headers["location"])
                continue
            if response.status != 200:
                raise MetadataError(f"metadata fetch answered HTTP {response.status}")
            declared = response.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise MetadataError("metadata larger than the cap")
            body = response.read(max_bytes + 1, decode_content=True)
            if len(body) > max_bytes:
                raise MetadataError("metadata larger than the cap")
        except urllib3.exceptions.HTTPError as exc:
            raise MetadataError(f"metadata fetch failed: {type(exc).__name__}") from None
        finally:
            response.release_conn()
            pool.close()
        return _parse_json(body)
    raise MetadataError("too many redirects")


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
