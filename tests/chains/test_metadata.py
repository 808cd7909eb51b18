"""NFT metadata fetching against hostile servers: total deadline, byte cap, address checks, cache, concurrency."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from chains import metadata
from chains.metadata import MetadataCache, MetadataError, fetch_json, fetch_many, is_public_ip


@pytest.fixture
def server(monkeypatch):
    """A local HTTP server whose behaviour a test sets per path; metadata's address check is told that
    127.0.0.1 is public (the server is the hostile party here, not the address)."""
    routes: dict = {}
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            hits.append(self.path)
            try:
                routes[self.path](self)
            except (BrokenPipeError, ConnectionResetError):
                pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    monkeypatch.setattr(metadata, "_resolve_public", lambda host, port, resolver: "127.0.0.1")
    yield f"http://127.0.0.1:{httpd.server_address[1]}", routes, hits
    httpd.shutdown()
    httpd.server_close()


def trickle(handler, *, header_gap=0.0, body_gap=0.3):
    handler.wfile.write(b"HTTP/1.1 200 OK\r\n")
    for line in (b"Content-Type: application/json\r\n", b"X-Slow: 1\r\n", b"\r\n"):
        time.sleep(header_gap)
        handler.wfile.write(line)
        handler.wfile.flush()
    for byte in b'{"name": "' + b"x" * 500 + b'"}':
        time.sleep(body_gap)
        handler.wfile.write(bytes([byte]))
        handler.wfile.flush()


@pytest.mark.parametrize("header_gap", [0.0, 0.9], ids=["trickled-body", "trickled-headers"])
def test_a_server_trickling_bytes_costs_at_most_the_deadline(server, header_gap):
    base, routes, _ = server
    routes["/slow"] = lambda h: trickle(h, header_gap=header_gap)
    started = time.monotonic()
    with pytest.raises(MetadataError, match="timed out"):
        fetch_json(f"{base}/slow", timeout_s=2.0, cache=False)
    assert time.monotonic() - started < 2.0 + 1.0


def test_the_byte_cap_holds_across_reads_without_a_content_length(server):
    base, routes, _ = server

    def endless(h):
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.end_headers()  # no Content-Length: the body runs until the connection closes
        h.wfile.write(b'{"name": "')
        for _ in range(64):
            h.wfile.write(b"x" * 32_768)

    routes["/big"] = endless
    with pytest.raises(MetadataError, match="larger than the cap"):
        fetch_json(f"{base}/big", max_bytes=100_000, cache=False)


def test_a_good_document_is_read_and_cached_per_url(server):
    base, routes, hits = server

    def ok(h):
        body = b'{"name": "Punk #1", "image": "https://img.example/1.png"}'
        h.send_response(200)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    routes["/1.json"] = ok
    cache = MetadataCache()
    assert fetch_json(f"{base}/1.json", cache=cache)["name"] == "Punk #1"
    assert fetch_json(f"{base}/1.json", cache=cache)["name"] == "Punk #1"
    assert hits == ["/1.json"]


def test_a_failure_is_cached_too_so_one_slow_host_costs_one_deadline(server):
    base, routes, hits = server
    routes["/down"] = lambda h: (h.send_response(500), h.end_headers())
    cache = MetadataCache()
    for _ in range(3):
        with pytest.raises(MetadataError, match="HTTP 500"):
            fetch_json(f"{base}/down", cache=cache)
    assert hits == ["/down"]


def test_fetch_many_runs_a_few_at_once_and_stops_at_its_budget():
    running, peak, lock = [0], [0], threading.Lock()

    def slow(uri):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.3 if uri != "u9" else 5)
        with lock:
            running[0] -= 1
        if uri == "u3":
            raise MetadataError("bad document")
        return {"uri": uri}

    started = time.monotonic()
    out = fetch_many([f"u{i}" for i in range(10)] + ["u1"], slow, concurrency=3, budget_s=2.0)
    assert time.monotonic() - started < 2.5
    assert peak[0] == 3
    assert isinstance(out["u3"], MetadataError)
    assert out["u1"] == {"uri": "u1"}
    assert "u9" not in out  # still running at the budget: left for the next sync


@pytest.mark.parametrize("ip", [
    "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
    "224.0.0.1", "240.0.0.1", "255.255.255.255", "192.0.2.1", "198.18.0.1",
    "::1", "::", "fe80::1", "fe80::1%eth0", "fc00::1", "fec0::1", "ff02::1", "2001:db8::1",
    "::ffff:127.0.0.1", "::127.0.0.1", "::ffff:10.0.0.1", "::10.0.0.1",
    "64:ff9b::7f00:1", "64:ff9b::808:808", "64:ff9b:1::a00:1", "2002:7f00:1::1", "2002:808:808::1", "2001:0:4136:e378::1",
    "not-an-ip",
])
def test_non_global_and_ipv4_embedding_addresses_are_refused(ip):
    assert not is_public_ip(ip)


@pytest.mark.parametrize("ip", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "2a00:1450:4001:80b::200e"])
def test_global_addresses_are_allowed(ip):
    assert is_public_ip(ip)


@pytest.mark.parametrize("url", ["http://[::1", "http://example.com:99999/x", "http://exa mple.com:port/", "http:///nohost",
                                 "ftp://example.com/x.json", "data:no-comma"])
def test_malformed_urls_raise_the_modules_own_error(url):
    with pytest.raises(MetadataError):
        fetch_json(url, cache=False, resolver=lambda *a, **k: [(0, 0, 0, "", ("8.8.8.8", 80))])
