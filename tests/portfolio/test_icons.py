"""Asset logos: fetched once by the worker from a hostile local server through the safe fetcher (raster
only, by magic bytes; size-capped; no redirect to a private address), stored, and served from our own
origin with the page falling back to initials."""

from __future__ import annotations

import json
import struct
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.urls import reverse

from chains import metadata
from chains.metadata import ICON_MAX_BYTES, MetadataError, fetch_image, fetch_logo, sniff_raster
from portfolio.models import Asset, AssetIcon
from portfolio.services.icons import do_fetch_icons
from tests.portfolio.test_pages import hold, make_wallet


def png(width=2, height=2) -> bytes:
    """A real (tiny) PNG."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
PAGES = {
    "/good.png": ("image/png", png()),
    "/untyped": ("application/octet-stream", png()),  # a PNG whatever the server says
    "/logo.svg": ("image/svg+xml", SVG),
    "/fake.png": ("image/png", b"<html><script>alert(1)</script></html>"),
    "/huge.png": ("image/png", png() + b"\x00" * (ICON_MAX_BYTES + 1)),
    "/webp": ("image/webp", b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\x00" * 8),
}


@pytest.fixture
def server(monkeypatch):
    """A local server with good and hostile logos; the address check treats 127.0.0.1 as public (the
    server is the hostile party here) and every other private address as it is."""
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            hits.append(self.path)
            if self.path == "/to-private":
                self.send_response(302)
                self.send_header("Location", "http://10.1.2.3/good.png")
                self.end_headers()
                return
            if self.path == "/to-metadata":
                self.send_response(301)
                self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
                self.end_headers()
                return
            if self.path.startswith("/meta/"):  # a Metaplex/ERC metadata document naming its image
                image = self.path[len("/meta"):]
                base = f"http://127.0.0.1:{self.server.server_address[1]}"
                body = json.dumps({"name": "Token", "image": base + image}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)
                return
            if self.path not in PAGES:
                self.send_error(404)
                return
            kind, body = PAGES[self.path]
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    real = metadata.is_public_ip
    monkeypatch.setattr(metadata, "is_public_ip", lambda ip: ip == "127.0.0.1" or real(ip))
    yield f"http://127.0.0.1:{httpd.server_address[1]}", hits
    httpd.shutdown()
    httpd.server_close()


def test_a_png_is_fetched_and_typed_by_its_bytes(server):
    base, _ = server
    assert fetch_image(f"{base}/good.png") == ("image/png", png())
    assert fetch_image(f"{base}/untyped")[0] == "image/png"
    assert fetch_image(f"{base}/webp")[0] == "image/webp"


@pytest.mark.parametrize("path,reason", [
    ("/logo.svg", "not a PNG, JPEG, GIF or WebP"),
    ("/fake.png", "not a PNG, JPEG, GIF or WebP"),
    ("/huge.png", "larger than the cap"),
    ("/to-private", "non-public address"),
    ("/to-metadata", "non-public address"),
])
def test_hostile_logos_are_refused(server, path, reason):
    base, _ = server
    with pytest.raises(MetadataError, match=reason):
        fetch_image(f"{base}{path}")


@pytest.mark.parametrize("image,outcome", [
    ("/good.png", "image/png"),
    ("/logo.svg", "not a PNG"),
    ("/to-private", "non-public address"),
])
def test_a_metadata_document_leads_to_its_image_by_the_same_rules(server, image, outcome):
    base, _ = server
    if outcome.startswith("image/"):
        assert fetch_logo(f"{base}/meta{image}") == (outcome, png())
    else:
        with pytest.raises(MetadataError, match=outcome):
            fetch_logo(f"{base}/meta{image}")
    assert fetch_logo(f"{base}/good.png")[0] == "image/png"  # a logo that is the image itself


def test_svg_and_html_data_uris_are_refused_and_raster_ones_read():
    with pytest.raises(MetadataError):
        fetch_image("data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=")
    import base64
    assert fetch_image("data:image/png;base64," + base64.b64encode(png()).decode())[0] == "image/png"
    assert sniff_raster(b"\xff\xd8\xff\xe0rest") == "image/jpeg" and sniff_raster(b"GIF89a...") == "image/gif"
    assert sniff_raster(SVG) is None


@pytest.fixture
def tokens(owner, server):
    base, hits = server
    wallet, wc = make_wallet(owner)
    good = Asset.objects.create(chain=wc.chain, kind=Asset.FUNGIBLE, address="0x" + "a1" * 20, symbol="GOOD", decimals=0, logo_url=f"{base}/good.png")
    svg = Asset.objects.create(chain=wc.chain, kind=Asset.FUNGIBLE, address="0x" + "a2" * 20, symbol="SVGT", decimals=0, logo_url=f"{base}/logo.svg")
    sneaky = Asset.objects.create(chain=wc.chain, kind=Asset.FUNGIBLE, address="0x" + "a3" * 20, symbol="SNK", decimals=0, logo_url=f"{base}/to-private")
    spam = Asset.objects.create(chain=wc.chain, kind=Asset.FUNGIBLE, address="0x" + "a4" * 20, symbol="SPAM", decimals=0, logo_url=f"{base}/good.png?spam", is_spam=True)
    for asset in (good, svg, sneaky, spam):
        hold(wc, asset, 5)
    return {"wallet": wallet, "good": good, "svg": svg, "sneaky": sneaky, "spam": spam, "hits": hits}


@pytest.mark.django_db
def test_the_worker_fetches_each_logo_once_and_keeps_refusals(tokens):
    assert do_fetch_icons() == {"stored": 1, "refused": 2}
    good = AssetIcon.objects.get(asset=tokens["good"])
    assert (good.content_type, bytes(good.data)) == ("image/png", png())
    assert AssetIcon.objects.get(asset=tokens["svg"]).error.startswith("not a PNG")
    assert "non-public" in AssetIcon.objects.get(asset=tokens["sneaky"]).error
    assert not AssetIcon.objects.filter(asset=tokens["spam"]).exists()  # spam logos are the sender's URLs
    hits = len(tokens["hits"])
    assert do_fetch_icons() == {"stored": 0, "refused": 0} and len(tokens["hits"]) == hits  # once
    tokens["svg"].logo_url = tokens["good"].logo_url  # the token list changed its logo: fetched again
    tokens["svg"].save()
    assert do_fetch_icons() == {"stored": 1, "refused": 0}


@pytest.mark.django_db
def test_pages_show_our_own_copy_or_initials(owner_client, outsider_client, tokens):
    do_fetch_icons()
    for url in (reverse("holdings"), reverse("wallet_detail", args=[tokens["wallet"].pk])):
        page = owner_client.get(url).content.decode()
        assert f'src="/icons/{tokens["good"].pk}?v=' in page
        assert tokens["good"].logo_url not in page  # never the third party's URL
        assert ">SVG</span>" in page  # initials for the refused one
    response = owner_client.get(reverse("asset_icon", args=[tokens["good"].pk]))
    assert response.status_code == 200 and response.content == png()
    assert response["Content-Type"] == "image/png" and response["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response["Content-Security-Policy"] and "max-age" in response["Cache-Control"]
    assert owner_client.get(reverse("asset_icon", args=[tokens["svg"].pk])).status_code == 404
    # Another user cannot tell which tokens someone holds from their logos (a listed token's is public).
    assert outsider_client.get(reverse("asset_icon", args=[tokens["good"].pk])).status_code == 404
    Asset.objects.filter(pk=tokens["good"].pk).update(listed=True)
    assert outsider_client.get(reverse("asset_icon", args=[tokens["good"].pk])).status_code == 200
