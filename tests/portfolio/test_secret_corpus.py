"""The secret corpus (tests/data/secret_corpus.json, 60+ secret-shaped strings) sent through every free-text
field, query parameter and path: refused, and afterwards absent from the database dump, from every log line at
DEBUG (text and JSON, through the app's own redacting filter) and from every response."""

from __future__ import annotations

import html
import io
import json
import logging
import re
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from chains.secrets import WATCH_ONLY_MESSAGE, find_secrets, redact_secrets, secret_kind
from portfolio.logging import JsonFormatter, RedactSecretsFilter
from portfolio.models import Portfolio, Wallet
from portfolio.services.wallets import do_add_wallet
from tests.fixtures.users import PASSWORD

pytestmark = pytest.mark.django_db

CORPUS: dict[str, str] = json.loads((Path(__file__).parents[1] / "data" / "secret_corpus.json").read_text(encoding="utf-8"))
EVM = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
HARMLESS = [
    EVM, "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq", "So11111111111111111111111111111111111111112",
    "xpub6CUGRUonZSQ4TWtTMmzXdrXDtypWKiKrhko4egpiMZbpiaQL2jkwSB1icqYh2cfDfVxdx4df189oLKnC5fSwqPfgyP3hooxujYzAu3fDVmz",
    "Savings 2024", "my main wallet for daily spending and saving money", "我的钱包", "Ledger — cold storage (family)",
    "ETH long-term hold, buy the dip, never sell, diamond hands forever", "Caisse d'épargne: économies été 2025",
    "block 19000000 at 0x" + "ab" * 16, "USDC",
]


def test_the_corpus_is_large_and_every_entry_is_refused_and_redacted():
    assert len(CORPUS) >= 60
    for name, secret in CORPUS.items():
        assert secret_kind(secret), name
        assert "[redacted]" in redact_secrets(secret) and not any(p in redact_secrets(secret).lower() for p in fragments(secret)), name


@pytest.mark.parametrize("text", HARMLESS)
def test_ordinary_labels_and_addresses_pass(text):
    assert secret_kind(text) is None and find_secrets(text) == [] and redact_secrets(text) == text


def test_a_secret_is_found_inside_a_longer_text_and_only_it_is_redacted():
    secret = CORPUS["hex"]
    line = f"user 7 pasted key={secret}. into the label field"
    assert redact_secrets(line) == "user 7 pasted key=[redacted]. into the label field"
    assert redact_secrets(f"GET /holdings/?q={quote_plus(CORPUS['BIP-39 Japanese'])} HTTP/1.1").count("[redacted]") == 1


def fragments(secret: str) -> list[str]:
    """Pieces of a secret that must appear nowhere, lower-cased: the whole text (raw, HTML- and JSON-escaped,
    URL-encoded), every 16+ character token of it, and every 4 consecutive words of a phrase."""
    pieces = {secret, html.escape(secret), json.dumps(secret)[1:-1], quote_plus(secret), quote(secret)}
    pieces |= {t for t in re.split(r"[^0-9A-Za-z\u00c0-\uffff]+", secret) if len(t) >= 16}
    words = re.findall(r"[^\W\d_]+", secret)
    pieces |= {" ".join(words[i : i + 4]) for i in range(len(words) - 3)} if len(words) >= 12 else set()
    return sorted({p.lower() for p in pieces if len(p) >= 10 or (len(p) >= 6 and not p.isascii())})


@pytest.fixture
def every_log_line():
    """Every record from every logger at DEBUG, formatted as the app writes it (text and JSON) through the
    app's redacting filter; the JSON lines are decoded (non-ASCII is escaped in them)."""
    text, js = io.StringIO(), io.StringIO()
    handlers = []
    for stream, formatter in ((text, logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")), (js, JsonFormatter())):
        h = logging.StreamHandler(stream)
        h.setFormatter(formatter)
        h.addFilter(RedactSecretsFilter())
        h.setLevel(logging.DEBUG)
        handlers.append(h)
    root = logging.getLogger()
    names = ["", "django", "django.request", "django.server", "django.db.backends", "portfolio", "chains", "allauth"]
    levels = {n: logging.getLogger(n).level for n in names}
    for n in names:
        logging.getLogger(n).setLevel(logging.DEBUG)
    for h in handlers:
        root.addHandler(h)

    def read() -> str:
        lines = [json.dumps(json.loads(line), ensure_ascii=False) for line in js.getvalue().splitlines() if line.strip()]
        return text.getvalue() + "\n" + "\n".join(lines)

    yield read
    for h in handlers:
        root.removeHandler(h)
    for n, level in levels.items():
        logging.getLogger(n).setLevel(level)


class Seen:
    """Everything the app answered and every SQL statement it ran."""

    def __init__(self):
        self.responses: list[str] = []

    def add(self, response) -> None:
        headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
        body = b"".join(response.streaming_content) if response.streaming else response.content
        self.responses.append(headers + "\n" + body.decode("utf-8", "replace"))


def page_fields(owner_client: Client, anonymous: Client, wallet: Wallet, portfolio: Portfolio):
    """Every free-text field of a page, as (client, method, url, data or params, headers, refused-in-page)."""
    p = portfolio
    return [
        (owner_client, "post", reverse("wallets"), lambda s: {"family": "evm", "address": s, "label": "", "gap_limit": "20"}, {}, True),
        (owner_client, "post", reverse("wallets"), lambda s: {"family": "bitcoin", "address": s, "label": "", "gap_limit": "20"}, {}, True),
        (owner_client, "post", reverse("wallets"), lambda s: {"family": "evm", "address": EVM, "label": s, "gap_limit": "20"}, {"HTTP_HX_REQUEST": "true"}, True),
        (owner_client, "post", reverse("wallet_edit", args=[wallet.pk]), lambda s: {"label": s}, {}, True),
        (owner_client, "post", reverse("portfolios"), lambda s: {"name": s}, {}, True),
        (owner_client, "post", reverse("portfolio_edit", args=[p.pk]), lambda s: {"name": s, "wallets": [wallet.pk]}, {}, True),
        (anonymous, "post", reverse("login"), lambda s: {"login": s, "password": "not it"}, {}, True),
        (anonymous, "post", reverse("signup"), lambda s: {"email": s, "password1": PASSWORD, "password2": PASSWORD}, {}, True),
        (anonymous, "post", reverse("account_reset_password"), lambda s: {"email": s}, {}, True),
        (owner_client, "get", reverse("holdings"), lambda s: {"q": s, "sort": "-value"}, {"HTTP_HX_REQUEST": "true"}, False),
        (owner_client, "get", reverse("holdings"), lambda s: {"chain": s, "wallet": s}, {}, False),
        (owner_client, "get", reverse("holdings_csv"), lambda s: {"q": s}, {}, False),
        (owner_client, "get", reverse("dashboard"), lambda s: {"range": s}, {}, False),
        (owner_client, "get", "/api/v1/holdings", lambda s: {"currency": s}, {}, False),
    ]


def send(secret: str, index: int, fields, owner_client: Client, seen: Seen) -> None:
    """Every secret through the API's fields, the search box and a path; and through two of the pages'
    fields, taken in turn, so every field meets secrets of every shape (rendering every page for every
    secret would take minutes)."""
    for payload in ({"family": "evm", "address": secret, "label": ""}, {"family": "evm", "address": EVM, "label": secret}):
        response = owner_client.post("/api/v1/wallets", payload, content_type="application/json")
        seen.add(response)
        assert response.status_code == 422 and response.json()["detail"][0]["type"] == "secret"
    response = owner_client.get(reverse("holdings"), {"q": secret})
    seen.add(response)
    assert response.status_code == 302 and "q=" not in response["Location"]
    seen.add(owner_client.get("/wallets/" + quote(secret, safe="") + "/"))
    for k in (index % len(fields), (index * 5 + 3) % len(fields)):
        client, method, url, data, headers, refused_in_page = fields[k]
        response = getattr(client, method)(url, data(secret), **headers)
        seen.add(response)
        assert response.status_code in (200, 302, 422), (url, response.status_code)
        if refused_in_page:
            assert WATCH_ONLY_MESSAGE in html.unescape(response.content.decode()), url
    # The development server's access line for such a request (runserver logs through django.server).
    logging.getLogger("django.server").info('"%s" %s %s', f"GET /holdings/?q={quote_plus(secret)} HTTP/1.1", 302, 0)


def test_the_corpus_through_every_field_leaves_no_trace(owner, owner_client, every_log_line, settings):
    settings.ACCOUNT_RATE_LIMITS = False  # hundreds of sign-in attempts from one address: not what is tested here
    wallet = do_add_wallet(owner, "evm", EVM, label="kept")
    portfolio = Portfolio.objects.create(owner=owner, name="kept")
    anonymous = Client()
    seen = Seen()
    fields = page_fields(owner_client, anonymous, wallet, portfolio)
    with CaptureQueriesContext(connection) as queries:
        for index, secret in enumerate(CORPUS.values()):
            send(secret, index, fields, owner_client, seen)
    dump = io.StringIO()
    call_command("dumpdata", stdout=dump)
    database = json.dumps(json.loads(dump.getvalue()), ensure_ascii=False).lower()
    sql = "\n".join(q["sql"] for q in queries.captured_queries).lower()
    logs = every_log_line().lower()
    responses = "\n".join(seen.responses).lower()
    assert "[redacted]" in logs  # the secrets did reach the log machinery, and were redacted there
    for name, secret in CORPUS.items():
        for piece in fragments(secret):
            assert piece not in database, (name, "database", piece)
            assert piece not in sql, (name, "SQL", piece)
            assert piece not in logs, (name, "log", piece, [l for l in logs.splitlines() if piece in l][:3])
            assert piece not in responses, (name, "response", piece)
    assert Wallet.objects.count() == 1 and Portfolio.objects.count() == 1
    assert Wallet.objects.get().label == "kept" and Portfolio.objects.get().name == "kept"
