"""Personal API tokens: created in Settings and shown once, stored hashed, used as a Bearer token, scoped
(read-only or read-write), last use recorded, revoked or expired at once, never logged, and limited per
token and per user."""

from __future__ import annotations

import hashlib
import io
import logging
import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from portfolio import api_limits
from portfolio.logging import RedactSecretsFilter, scrub
from portfolio.models import ApiToken, Portfolio, Wallet
from portfolio.services.tokens import do_create_api_token

pytestmark = pytest.mark.django_db

API = "/api/v1"
ADDRESS = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
TOKEN_RE = re.compile(r"cf_[A-Za-z0-9]{40}")


def bearer(text: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {text}"}


@pytest.fixture
def read_token(owner):
    return do_create_api_token(owner, "grafana", ApiToken.READ)


@pytest.fixture
def write_token(owner):
    return do_create_api_token(owner, "import script", ApiToken.WRITE)


@pytest.fixture
def evm_chain(db):
    from portfolio.models import Chain

    Chain.objects.filter(family="evm").update(enabled=False)
    return Chain.objects.create(slug="tokens-evm", name="Tokens EVM", family="evm", chain_id=777_101, network="devnet",
                                native_symbol="ETH", native_decimals=18, enabled=True)


# --------------------------------------------------------------------------- lifecycle through Settings


def create_in_settings(client: Client, **fields) -> tuple:
    data = {"token-name": "Home Assistant", "token-scope": "read", "token-expires_in": "30", **fields}
    response = client.post(reverse("api_token_create"), data)
    match = TOKEN_RE.search(response.content.decode())
    return response, match.group(0) if match else None


def test_a_token_created_in_settings_is_shown_once_and_stored_only_as_a_hash(owner_client, owner):
    response, text = create_in_settings(owner_client)
    assert response.status_code == 201 and text, response.content[:500]
    assert "no-store" in response["Cache-Control"]
    token = ApiToken.objects.get(owner=owner)
    assert token.digest == hashlib.sha256(text.encode()).hexdigest() and token.prefix == text[:11]
    assert token.name == "Home Assistant" and token.scope == ApiToken.READ and token.last_used_at is None
    assert timedelta(days=29, hours=23) < token.expires_at - timezone.now() <= timedelta(days=30)
    page = owner_client.get(reverse("settings")).content.decode()
    assert text not in page and token.prefix in page and "Home Assistant" in page  # never shown again
    # The plain token is nowhere in the database row.
    assert text not in str(ApiToken.objects.filter(pk=token.pk).values().get())


def test_the_settings_form_refuses_a_token_without_a_name_or_with_a_secret_in_it(owner_client, owner):
    response, text = create_in_settings(owner_client, **{"token-name": ""})
    assert response.status_code == 422 and text is None
    seed = "abandon " * 11 + "about"
    response, text = create_in_settings(owner_client, **{"token-name": seed})
    assert response.status_code == 422 and text is None and seed not in response.content.decode()
    assert not ApiToken.objects.exists()


def test_a_token_created_in_settings_reads_the_api_and_records_its_last_use(owner_client, owner, client):
    Wallet.objects.create(owner=owner, family="evm", address=ADDRESS, label="hot")
    _, text = create_in_settings(owner_client, **{"token-expires_in": ""})
    assert ApiToken.objects.get().expires_at is None  # "Never"
    response = client.get(f"{API}/wallets", **bearer(text))
    assert response.status_code == 200 and [w["label"] for w in response.json()["items"]] == ["hot"]
    assert ApiToken.objects.get().last_used_at is not None


def test_last_use_is_written_at_most_once_a_minute(client, read_token):
    token, text = read_token
    recent = timezone.now() - timedelta(seconds=30)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=recent)
    assert client.get(f"{API}/chains", **bearer(text)).status_code == 200
    assert ApiToken.objects.get(pk=token.pk).last_used_at == recent  # no write per request
    old = timezone.now() - timedelta(minutes=2)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=old)
    assert client.get(f"{API}/chains", **bearer(text)).status_code == 200
    assert ApiToken.objects.get(pk=token.pk).last_used_at > old


def test_a_token_revoked_in_settings_is_refused_at_once(owner_client, client, read_token):
    token, text = read_token
    assert client.get(f"{API}/wallets", **bearer(text)).status_code == 200
    assert owner_client.post(reverse("api_token_revoke", args=[token.pk])).status_code == 302
    response = client.get(f"{API}/wallets", **bearer(text))
    assert response.status_code == 401
    assert response.json() == {"detail": "This token has been revoked.", "code": "token_revoked"}
    assert 'error="invalid_token"' in response["WWW-Authenticate"]
    assert "revoked" in owner_client.get(reverse("settings")).content.decode()


def test_an_outsider_cannot_revoke_someone_elses_token(outsider_client, read_token):
    token, _ = read_token
    assert outsider_client.post(reverse("api_token_revoke", args=[token.pk])).status_code == 404
    assert ApiToken.objects.get(pk=token.pk).revoked_at is None


def test_an_expired_token_is_refused(client, read_token):
    token, text = read_token
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = client.get(f"{API}/wallets", **bearer(text))
    assert response.status_code == 401 and response.json()["code"] == "token_expired"


def test_a_disabled_accounts_token_is_refused(client, owner, read_token):
    owner.is_active = False
    owner.save()
    assert client.get(f"{API}/wallets", **bearer(read_token[1])).json()["code"] == "inactive_user"


@pytest.mark.parametrize("header", [
    "Bearer cf_" + "A" * 40,          # well-formed, unknown
    "Bearer cf_short",                # malformed
    "Bearer ",                        # empty
    "bearer " + "x" * 200,            # not ours at all
])
def test_an_unknown_or_malformed_token_is_a_401(client, header):
    response = client.get(f"{API}/wallets", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401 and response.json() == {"detail": "Invalid token.", "code": "invalid_token"}


def test_a_bad_token_wins_over_a_valid_session(owner_client):
    """A script whose token is wrong must learn it, not silently act through a browser cookie."""
    response = owner_client.get(f"{API}/wallets", **bearer("cf_" + "B" * 40))
    assert response.status_code == 401 and response.json()["code"] == "invalid_token"


# --------------------------------------------------------------------------- scopes


WRITES = [
    ("post", "/wallets", {"family": "evm", "address": ADDRESS}),
    ("patch", "/wallets/{wallet}", {"label": "renamed"}),
    ("delete", "/wallets/{wallet}", None),
    ("post", "/portfolios", {"name": "New"}),
    ("patch", "/portfolios/{portfolio}", {"name": "Renamed"}),
    ("delete", "/portfolios/{portfolio}", None),
    ("post", "/portfolios/{portfolio}/wallets", {"wallet_id": "{wallet}"}),
    ("delete", "/portfolios/{portfolio}/wallets/{wallet}", None),
    ("post", "/sync", {}),
]


@pytest.fixture
def things(owner, evm_chain):
    wallet = Wallet.objects.create(owner=owner, family="evm", address="0x" + "ab" * 20, label="cold")
    portfolio = Portfolio.objects.create(owner=owner, name="Main")
    portfolio.wallets.add(wallet)
    return {"wallet": wallet.pk, "portfolio": portfolio.pk}


def _call(client, method, path, body, things, headers):
    path = path.format(**things)
    if isinstance(body, dict):
        body = {k: int(v.format(**things)) if isinstance(v, str) and v.startswith("{") else v for k, v in body.items()}
    if body is None:
        return getattr(client, method)(API + path, **headers)
    return getattr(client, method)(API + path, body, content_type="application/json", **headers)


@pytest.mark.parametrize("method, path, body", WRITES)
def test_a_read_only_token_cannot_write(client, read_token, things, method, path, body):
    before = (Wallet.objects.count(), Portfolio.objects.count(), list(Portfolio.objects.values_list("name", flat=True)))
    response = _call(client, method, path, body, things, bearer(read_token[1]))
    assert response.status_code == 403
    assert response.json()["code"] == "insufficient_scope"
    after = (Wallet.objects.count(), Portfolio.objects.count(), list(Portfolio.objects.values_list("name", flat=True)))
    assert before == after and Portfolio.objects.get().wallets.count() == 1


@pytest.mark.parametrize("method, path, body", WRITES)
def test_a_read_write_token_writes_without_a_csrf_token(write_token, things, method, path, body):
    client = Client(enforce_csrf_checks=True)
    response = _call(client, method, path, body, things, bearer(write_token[1]))
    assert response.status_code in (200, 201, 202, 204), response.content


def test_a_read_only_token_reads(client, read_token, things):
    assert client.get(f"{API}/wallets/{things['wallet']}", **bearer(read_token[1])).status_code == 200


# --------------------------------------------------------------------------- logs


def test_tokens_are_redacted_from_log_lines(write_token):
    _, text = write_token
    assert TOKEN_RE.fullmatch(text)
    assert text not in scrub(f"GET /api/v1/wallets Authorization: Bearer {text}")
    assert text[3:15] not in scrub(f"a token cut short: {text[:15]}")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactSecretsFilter())
    logger = logging.getLogger("tests.api_tokens")
    logger.addHandler(handler)
    try:
        logger.warning("request with %s failed", text)
    finally:
        logger.removeHandler(handler)
    assert text not in stream.getvalue() and "cf_[redacted]" in stream.getvalue()


def test_no_log_line_of_an_api_request_holds_the_token(client, read_token, caplog):
    _, text = read_token
    caplog.set_level(logging.DEBUG)
    client.get(f"{API}/wallets/999999", **bearer(text))
    client.post(f"{API}/wallets", {"family": "evm"}, content_type="application/json", **bearer(text))
    client.get(f"{API}/wallets", **bearer(text[:-1] + "x"))
    assert caplog.records and all(text[3:] not in r.getMessage() for r in caplog.records)


# --------------------------------------------------------------------------- limits


def test_a_token_over_its_limit_gets_429_with_retry_after_and_another_token_still_works(client, owner, settings):
    settings.API_RATE_PER_MINUTE_TOKEN, settings.API_RATE_PER_MINUTE_USER = 3, 100
    _, first = do_create_api_token(owner, "first", ApiToken.READ)
    _, second = do_create_api_token(owner, "second", ApiToken.READ)
    assert [client.get(f"{API}/chains", **bearer(first)).status_code for _ in range(3)] == [200] * 3
    refused = client.get(f"{API}/chains", **bearer(first))
    assert refused.status_code == 429 and refused.json()["code"] == "rate_limited"
    assert 15 <= int(refused["Retry-After"]) <= 20  # 3 a minute: the next slot is one interval (20 s) away
    assert client.get(f"{API}/chains", **bearer(second)).status_code == 200


def test_the_user_limit_covers_all_tokens_and_the_session(owner_client, client, owner, settings):
    settings.API_RATE_PER_MINUTE_TOKEN, settings.API_RATE_PER_MINUTE_USER = 100, 4
    _, first = do_create_api_token(owner, "first", ApiToken.READ)
    _, second = do_create_api_token(owner, "second", ApiToken.READ)
    codes = [client.get(f"{API}/chains", **bearer(t)).status_code for t in (first, second, first, second)]
    assert codes == [200] * 4
    assert client.get(f"{API}/chains", **bearer(second)).status_code == 429
    session = owner_client.get(f"{API}/chains")
    assert session.status_code == 429 and int(session["Retry-After"]) >= 1


def test_another_users_limit_is_their_own(client, owner, outsider, settings):
    settings.API_RATE_PER_MINUTE_USER = 1
    _, alice = do_create_api_token(owner, "a", ApiToken.READ)
    _, mallory = do_create_api_token(outsider, "m", ApiToken.READ)
    assert client.get(f"{API}/chains", **bearer(alice)).status_code == 200
    assert client.get(f"{API}/chains", **bearer(alice)).status_code == 429
    assert client.get(f"{API}/chains", **bearer(mallory)).status_code == 200


def test_a_limit_of_zero_means_no_limit(client, read_token, settings):
    settings.API_RATE_PER_MINUTE_TOKEN = settings.API_RATE_PER_MINUTE_USER = 0
    assert {client.get(f"{API}/chains", **bearer(read_token[1])).status_code for _ in range(30)} == {200}


def test_a_limit_store_that_fails_admits_the_request(client, read_token, monkeypatch, settings):
    settings.API_RATE_PER_MINUTE_TOKEN = 1

    class Broken:
        def take(self, key, limit):
            raise ConnectionError("redis down")

    monkeypatch.setattr(api_limits, "_store", lambda: Broken())
    assert {client.get(f"{API}/chains", **bearer(read_token[1])).status_code for _ in range(3)} == {200}


def test_the_redis_buckets_admit_a_full_bucket_then_one_per_interval():
    """The store every web process shares when the broker is Redis (the same GCRA as the cache store)."""
    import uuid

    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0", socket_timeout=1)
    try:
        client.ping()
    except redis.RedisError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    buckets = api_limits._RedisBuckets(client)
    key = f"api-test-{uuid.uuid4().hex}"
    try:
        waits = [buckets.take(key, 3) for _ in range(4)]
    finally:
        client.delete(key)
    assert waits[:3] == [0, 0, 0] and 19 < waits[3] <= 20  # 3 a minute: the 4th waits one interval


def test_the_redis_store_is_used_when_the_broker_is_redis(monkeypatch, settings):
    from portfolio import ratelimit

    class FakeLimiter:
        client = type("Client", (), {"register_script": lambda self, text: (lambda **kw: 0)})()

    monkeypatch.setattr(api_limits, "shared_limiter", lambda: FakeLimiter())
    api_limits.reset_store()
    try:
        assert isinstance(api_limits._store(), api_limits._RedisBuckets)
    finally:
        api_limits.reset_store()
    monkeypatch.setattr(api_limits, "shared_limiter", lambda: ratelimit.LOCAL_LIMITER)
    try:
        assert isinstance(api_limits._store(), api_limits._CacheBuckets)
    finally:
        api_limits.reset_store()


def test_staff_can_revoke_a_leaked_token_in_the_admin_but_never_see_it(staff_client, client, read_token):
    token, text = read_token
    listing = staff_client.get(reverse("admin:portfolio_apitoken_changelist")).content.decode()
    assert token.prefix in listing and text not in listing
    assert staff_client.get(reverse("admin:portfolio_apitoken_add")).status_code == 403
    response = staff_client.post(reverse("admin:portfolio_apitoken_changelist"),
                                 {"action": "revoke_tokens", "_selected_action": [token.pk]})
    assert response.status_code == 302
    assert client.get(f"{API}/wallets", **bearer(text)).json()["code"] == "token_revoked"
