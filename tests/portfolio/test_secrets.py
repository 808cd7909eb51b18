"""Watch-only: every kind of private key or seed phrase is refused, and the refused text is never stored,
logged or sent back (not in the page, not in the error, not in the re-rendered form)."""

from __future__ import annotations

import html
import io
import json
import logging
import re

import pytest
from django.apps import apps
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from chains.bitcoin.codec import b58encode_check
from chains.secrets import WATCH_ONLY_MESSAGE, bip39_words
from chains.base58 import b58encode
from portfolio.models import Portfolio, Wallet

pytestmark = pytest.mark.django_db

KEY = bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
CHAIN_CODE = bytes.fromhex("873dff81c02f525623fd1fe5167eac3a55a049de3d314bb42ee227ffed37d508")


def extended_private(version_hex: str) -> str:
    return b58encode_check(bytes.fromhex(version_hex) + b"\x00" * 9 + CHAIN_CODE + b"\x00" + KEY)


def mnemonic(n: int) -> str:
    words = sorted(bip39_words())
    return " ".join(words[(i * 97) % len(words)] for i in range(n))


SOLANA_KEYPAIR = bytes(range(1, 65))
SECRETS = {
    "hex private key": KEY.hex(),
    "0x hex private key": "0x" + KEY.hex(),
    "uppercase hex private key": KEY.hex().upper(),
    "0X hex private key": "0X" + KEY.hex().upper(),
    "hex private key in groups": " ".join(KEY.hex()[i : i + 8] for i in range(0, 64, 8)),
    "WIF compressed": b58encode_check(b"\x80" + KEY + b"\x01"),
    "WIF uncompressed": b58encode_check(b"\x80" + KEY),
    "WIF testnet": b58encode_check(b"\xef" + KEY + b"\x01"),
    "xprv": extended_private("0488ade4"),
    "yprv": extended_private("049d7878"),
    "zprv": extended_private("04b2430c"),
    "tprv": extended_private("04358394"),
    "Solana keypair base58": b58encode(SOLANA_KEYPAIR),
    "Solana keypair JSON": json.dumps(list(SOLANA_KEYPAIR)),
    "Solana keypair JSON compact": json.dumps(list(SOLANA_KEYPAIR), separators=(",", ":")),
    "Solana seed JSON (32 bytes)": json.dumps(list(SOLANA_KEYPAIR[:32])),
    "BIP-39 12 words": "abandon " * 11 + "about",
    "BIP-39 15 words": mnemonic(15),
    "BIP-39 18 words": mnemonic(18),
    "BIP-39 21 words": mnemonic(21),
    "BIP-39 24 words": "abandon " * 23 + "art",
    "BIP-39 12 words with a typo": "abandon " * 10 + "abandn about",
    "BIP-39 24 words with two typos": mnemonic(22) + " zoological xyzzy",
    "BIP-39 12 words, newlines and capitals": "Abandon\nabandon\nabandon abandon abandon abandon abandon abandon abandon abandon abandon about",
    "BIP-39 24 words numbered": " ".join(f"{i + 1}. {w}" for i, w in enumerate(mnemonic(24).split())),
}


def fragments(secret: str) -> list[str]:
    """Pieces of the secret that must not appear anywhere (the whole text, its key material, word runs)."""
    out = {secret, secret.strip(), html.escape(secret), KEY.hex(), KEY.hex().upper()}
    if secret.lstrip().startswith("["):
        out.add(", ".join(str(b) for b in SOLANA_KEYPAIR[:16]))
        out.add(",".join(str(b) for b in SOLANA_KEYPAIR[:16]))
    words = re.findall(r"[A-Za-z]+", secret)
    if len(words) >= 12:
        out.add(" ".join(words[4:8]).lower())
    return [f for f in out if len(f) >= 16]


def assert_nowhere(secret: str, *, body: str, queries: list[str], log_text: str) -> None:
    lowered_body = body.lower()
    for piece in fragments(secret):
        assert piece.lower() not in lowered_body, "the refused text is echoed in the response"
        assert not any(piece.lower() in q.lower() for q in queries), "the refused text reached the database"
        assert piece.lower() not in log_text.lower(), "the refused text reached a log"
    for model in apps.get_models():
        for row in model.objects.all().values():
            text = repr(row).lower()
            assert not any(piece.lower() in text for piece in fragments(secret)), f"stored in {model.__name__}"


@pytest.fixture
def all_logs(caplog):
    """Every record at every level, from every logger (the SQL logger too)."""
    caplog.set_level(logging.DEBUG)
    for name in ("django", "django.db.backends", "django.request", "portfolio", "chains"):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


@pytest.fixture
def app_log():
    """What the app's own log handlers (LOGGING in settings: formatter + redaction filter) write,
    redirected to a buffer for the test (their stream was bound when logging was configured)."""
    buffer = io.StringIO()
    handlers = [h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler) and h.filters]
    assert handlers, "the app's stdout handler is not installed"
    previous = [h.setStream(buffer) for h in handlers]
    yield buffer
    for h, stream in zip(handlers, previous):
        h.setStream(stream)


def log_text(caplog, buffer) -> str:
    records = "\n".join(f"{r.getMessage()} {r.args!r} {r.__dict__!r}" for r in caplog.records)
    return records + "\n" + buffer.getvalue()


@pytest.mark.parametrize("family", ["evm", "bitcoin", "solana"])
@pytest.mark.parametrize("kind", list(SECRETS))
def test_it_refuses_secrets_and_forgets_them(owner, owner_client, all_logs, app_log, family, kind):
    secret = SECRETS[kind]
    with CaptureQueriesContext(connection) as ctx:
        response = owner_client.post(reverse("wallets"), {"family": family, "address": secret, "label": "", "gap_limit": "20"})
    body = response.content.decode()
    assert response.status_code == 200
    assert WATCH_ONLY_MESSAGE in html.unescape(body)
    # the address field is re-rendered blank
    field = re.search(r'<input[^>]*name="address"[^>]*>', body).group(0)
    assert 'value="' not in field or 'value=""' in field
    assert not Wallet.objects.exists()
    assert_nowhere(secret, body=body, queries=[q["sql"] for q in ctx.captured_queries], log_text=log_text(all_logs, app_log))


@pytest.mark.parametrize("kind", ["0x hex private key", "BIP-39 12 words", "xprv"])
def test_it_refuses_secrets_sent_through_htmx_too(owner_client, all_logs, app_log, kind):
    secret = SECRETS[kind]
    response = owner_client.post(reverse("wallets"), {"family": "evm", "address": secret, "gap_limit": "20"}, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert WATCH_ONLY_MESSAGE in html.unescape(body)
    assert_nowhere(secret, body=body, queries=[], log_text=log_text(all_logs, app_log))


@pytest.mark.parametrize("kind", ["0x hex private key", "BIP-39 24 words"])
def test_a_secret_pasted_into_a_label_or_a_portfolio_name_is_refused_too(owner, owner_client, all_logs, app_log, kind):
    secret = SECRETS[kind]
    response = owner_client.post(
        reverse("wallets"), {"family": "evm", "address": "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "label": secret, "gap_limit": "20"}
    )
    assert WATCH_ONLY_MESSAGE in html.unescape(response.content.decode())
    assert not Wallet.objects.exists()
    response2 = owner_client.post(reverse("portfolios"), {"name": secret})
    assert WATCH_ONLY_MESSAGE in html.unescape(response2.content.decode())
    assert not Portfolio.objects.exists()
    assert_nowhere(secret, body=response.content.decode(), queries=[], log_text=log_text(all_logs, app_log))


def test_the_add_views_hide_post_data_from_error_reports(owner):
    from portfolio.views import wallets

    from django.test import RequestFactory

    request = RequestFactory().post(reverse("wallets"), {"address": SECRETS["xprv"]})
    request.user = owner
    request.htmx = False
    wallets.wallet_list(request)
    assert set(request.sensitive_post_parameters) >= {"address", "label"}


def test_the_log_capture_used_here_sees_the_apps_own_handler_output(all_logs, app_log):
    logging.getLogger("portfolio.canary").debug("canary-line-%s", 42)
    assert "canary-line-42" in app_log.getvalue()  # the stdout handler of the app's LOGGING config, at DEBUG
    assert any("canary-line-42" in r.getMessage() for r in all_logs.records)
