"""The REST API v1: what an API client of the owner gets, what an outsider or an anonymous client gets,
CSRF on the session auth, watch-only input, exact amounts, and an OpenAPI schema that tells the truth."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from chains.secrets import WATCH_ONLY_MESSAGE
from portfolio.fields import UINT256_MAX
from portfolio.models import Asset, Chain, Holding, Portfolio, PricePoint, SyncRun, SyncRunItem, Wallet, WalletChain
from portfolio.sync.run import do_expand_run

pytestmark = pytest.mark.django_db

API = "/api/v1"
SEED_PHRASE = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"
HEX_PRIVATE_KEY = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
ALICE_ADDRESS = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


@pytest.fixture
def chain():
    # Only this EVM chain is enabled, so a new EVM wallet gets exactly one WalletChain.
    Chain.objects.filter(family="evm").update(enabled=False)
    return Chain.objects.create(slug="testnet-evm", name="Test EVM", family="evm", chain_id=777_001, network="devnet",
                                native_symbol="ETH", native_decimals=18, enabled=True)


@pytest.fixture
def native(chain):
    return Asset.objects.create(chain=chain, kind=Asset.NATIVE, address="", symbol="ETH", name="Ether", decimals=18,
                                listed=True)


@pytest.fixture
def wallet(owner, chain):
    w = Wallet.objects.create(owner=owner, family="evm", address=ALICE_ADDRESS, label="Alice hot")
    WalletChain.objects.create(wallet=w, chain=chain, status=WalletChain.OK, last_ok_at=timezone.now(), height=1234,
                               endpoint="http://127.0.0.1:8545")
    return w


@pytest.fixture
def portfolio(owner, wallet):
    p = Portfolio.objects.create(owner=owner, name="Main")
    p.wallets.add(wallet)
    return p


@pytest.fixture
def holding(wallet, native):
    wc = wallet.wallet_chains.get()
    return Holding.objects.create(wallet_chain=wc, asset=native, amount=1_500_000_000_000_000_000, height=1234)


@pytest.fixture
def run(owner, portfolio):
    from portfolio.sync.run import do_request_sync

    run = do_request_sync(owner, portfolio=portfolio)
    do_expand_run(run.pk)  # what the worker does with it
    return run


@pytest.fixture
def outsiders_things(outsider, chain):
    w = Wallet.objects.create(owner=outsider, family="evm", address="0x" + "11" * 20, label="Mallory")
    WalletChain.objects.create(wallet=w, chain=chain)
    p = Portfolio.objects.create(owner=outsider, name="Mallory's")
    p.wallets.add(w)
    return w, p


def post_json(client: Client, path: str, data=None, **headers):
    return client.post(API + path, data, content_type="application/json", **headers)


def csrf_client(user) -> Client:
    """A client that enforces CSRF like a browser session would."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def with_csrf_token(client: Client) -> dict:
    """Headers carrying a CSRF token whose cookie the client now holds (as a page with the token would set)."""
    from django.middleware.csrf import _get_new_csrf_string

    token = _get_new_csrf_string()
    client.cookies["csrftoken"] = token
    return {"HTTP_X_CSRFTOKEN": token}


# --------------------------------------------------------------------------- the owner


def test_the_owner_lists_and_reads_portfolios(owner_client, portfolio, wallet):
    listed = owner_client.get(f"{API}/portfolios").json()
    assert listed["count"] == 1
    assert listed["items"] == [{"id": portfolio.pk, "name": "Main", "created_at": listed["items"][0]["created_at"],
                                "wallet_ids": [wallet.pk]}]
    one = owner_client.get(f"{API}/portfolios/{portfolio.pk}")
    assert one.status_code == 200 and one.json()["name"] == "Main"


def test_the_owner_lists_wallets_and_reads_one_with_its_sync_state_per_chain(owner_client, wallet, portfolio):
    listed = owner_client.get(f"{API}/wallets").json()
    assert [w["address"] for w in listed["items"]] == [ALICE_ADDRESS]
    assert listed["items"][0]["portfolio_ids"] == [portfolio.pk]
    detail = owner_client.get(f"{API}/wallets/{wallet.pk}").json()
    assert detail["label"] == "Alice hot" and detail["kind"] == "address"
    (state,) = detail["chains"]
    assert state["chain"] == "testnet-evm" and state["chain_name"] == "Test EVM"
    assert state["status"] == "ok" and state["height"] == 1234 and state["last_ok_at"] and state["last_error"] == ""
    assert state["endpoint"] == "http://127.0.0.1:8545"


def test_wallet_lists_page_with_limit_and_offset(owner_client, owner, chain):
    for i in range(3):
        Wallet.objects.create(owner=owner, family="evm", address=f"0x{i:040x}", label=f"w{i}")
    page = owner_client.get(f"{API}/wallets?limit=2&offset=1").json()
    assert page["count"] == 3 and [w["label"] for w in page["items"]] == ["w1", "w2"]


def test_the_owner_adds_a_wallet_into_a_portfolio(owner_client, chain, portfolio):
    address = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
    payload = {"family": "evm", "address": address.lower(), "label": "Cold", "portfolio_ids": [portfolio.pk]}
    response = post_json(owner_client, "/wallets", payload)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["address"] == address  # stored in its canonical (checksummed) form
    assert body["portfolio_ids"] == [portfolio.pk]
    assert [c["chain"] for c in body["chains"]] == ["testnet-evm"] and body["chains"][0]["status"] == "idle"
    assert Wallet.objects.get(pk=body["id"]).portfolios.get() == portfolio


def test_adding_the_same_address_twice_is_refused(owner_client, wallet):
    response = post_json(owner_client, "/wallets", {"family": "evm", "address": ALICE_ADDRESS})
    assert response.status_code == 409
    assert response.json() == {"detail": "You already track this address.", "code": "duplicate"}


def test_an_invalid_address_is_refused_with_a_422(owner_client, chain):
    response = post_json(owner_client, "/wallets", {"family": "evm", "address": "0x1234"})
    assert response.status_code == 422 and response.json()["detail"][0]["type"] == "invalid"
    assert not Wallet.objects.exists()


def test_the_owner_deletes_a_wallet(owner_client, wallet, holding):
    response = owner_client.delete(f"{API}/wallets/{wallet.pk}")
    assert response.status_code == 204 and response.content == b""
    assert not Wallet.objects.filter(pk=wallet.pk).exists() and not Holding.objects.exists()


def test_holdings_carry_exact_amounts_prices_and_values_as_strings(owner_client, holding, native, wallet):
    PricePoint.objects.create(asset=native, price=Decimal("2000.5"), currency="USD", source="manual")
    body = owner_client.get(f"{API}/holdings?currency=USD").json()
    assert body["currency"] == "USD" and body["count"] == 1
    (row,) = body["items"]
    assert row["symbol"] == "ETH" and row["chain"] == "testnet-evm" and row["decimals"] == 18
    assert row["amount_raw"] == "1500000000000000000" and row["amount"] == "1.5"
    assert row["price"] == "2000.5" and row["value"] == "3000.75" and row["price_source"] == "manual"
    assert row["unpriced"] is False and row["share"] == "1" and row["wallets"] is None  # parts only on request
    assert body["net_worth"] == body["holdings_value"] == "3000.75" and body["next_cursor"] is None
    (part,) = owner_client.get(f"{API}/holdings?currency=USD&include=wallets").json()["items"][0]["wallets"]
    assert part["wallet_id"] == wallet.pk and part["amount_raw"] == "1500000000000000000" and part["value"] == "3000.75"
    assert part["height"] == 1234 and part["fetched_at"]


def test_an_unpriced_holding_has_null_price_and_value(owner_client, holding):
    (row,) = owner_client.get(f"{API}/holdings").json()["items"]
    assert row["unpriced"] is True and row["price"] is None and row["value"] is None and row["amount"] == "1.5"


def test_a_uint256_balance_round_trips_exactly_through_holdings(owner_client, wallet, chain):
    token = Asset.objects.create(chain=chain, kind=Asset.FUNGIBLE, address="0x" + "cd" * 20, symbol="HUGE", decimals=18)
    Holding.objects.create(wallet_chain=wallet.wallet_chains.get(), asset=token, amount=UINT256_MAX)
    response = owner_client.get(f"{API}/holdings")
    (row,) = response.json()["items"]
    assert row["amount_raw"] == str(2**256 - 1)
    assert row["amount_raw"] == "115792089237316195423570985008687907853269984665640564039457584007913129639935"
    assert row["amount"] == "115792089237316195423570985008687907853269984665640564039457.584007913129639935"
    assert str(2**256 - 1).encode() in response.content  # a JSON string, not a number a client would round


def test_holdings_of_one_portfolio_leave_other_wallets_out(owner_client, owner, portfolio, holding, chain, native):
    other = Wallet.objects.create(owner=owner, family="evm", address="0x" + "22" * 20)
    other_chain = WalletChain.objects.create(wallet=other, chain=chain)
    Holding.objects.create(wallet_chain=other_chain, asset=native, amount=10**18)
    everything = owner_client.get(f"{API}/holdings").json()["items"][0]
    in_portfolio = owner_client.get(f"{API}/holdings?portfolio_id={portfolio.pk}").json()["items"][0]
    assert everything["amount"] == "2.5" and in_portfolio["amount"] == "1.5"


def test_the_summary_has_exact_figures_and_a_series(owner_client, owner, portfolio, holding, native):
    from portfolio.services.snapshots import do_snapshot

    PricePoint.objects.create(asset=native, price=Decimal("2000"), currency="USD", source="manual")
    do_snapshot([portfolio.wallets.get().pk])
    response = owner_client.get(f"{API}/summary?portfolio_id={portfolio.pk}&range=7d&currency=USD")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["range"] == "7d" and body["currency"] == "USD"
    assert body["net_worth"] == "3000" and body["unpriced_count"] == 0
    assert [p["value"] for p in body["series"]] == ["3000"]
    assert body["allocation"]["chain"][0]["label"] == "Test EVM" and body["allocation"]["chain"][0]["value"] == "3000"
    for key in ("change", "twr", "profit", "net_flows"):
        assert body[key] is None or isinstance(body[key], str)


def test_the_summary_without_wallets_is_zero(owner_client):
    body = owner_client.get(f"{API}/summary").json()
    assert body["net_worth"] == "0" and body["series"] == [] and body["range"] == "30d"


def test_post_sync_queues_a_run_and_answers_202(owner_client, portfolio, wallet):
    response = post_json(owner_client, "/sync", {"portfolio_id": portfolio.pk})
    assert response.status_code == 202, response.content
    body = response.json()
    run = SyncRun.objects.get(pk=body["id"])
    assert run.owner.username == "alice" and run.portfolio == portfolio and body["status"] == "queued"
    assert body["items"] == [] and body["total"] == 0  # the request only records it: a worker fans it out
    assert owner_client.get(f"{API}/sync/{run.pk}").json() == body
    do_expand_run(run.pk)
    item = SyncRunItem.objects.get(run=run)
    assert item.wallet_chain.wallet == wallet
    body = owner_client.get(f"{API}/sync/{run.pk}").json()
    items = [(i["wallet_id"], i["chain_slug"], i["state"]) for i in body["items"]]
    assert items == [(wallet.pk, "testnet-evm", "queued")]


def test_post_sync_with_an_empty_body_refreshes_every_wallet(owner_client, owner, wallet, chain):
    other = Wallet.objects.create(owner=owner, family="evm", address="0x" + "33" * 20)
    WalletChain.objects.create(wallet=other, chain=chain)
    response = post_json(owner_client, "/sync")  # no body at all
    assert response.status_code == 202, response.content
    run = SyncRun.objects.get(pk=response.json()["id"])
    do_expand_run(run.pk)
    assert run.portfolio is None and run.wallet is None and run.items.count() == 2


def test_post_sync_of_one_wallet(owner_client, wallet):
    response = post_json(owner_client, "/sync", {"wallet_id": wallet.pk})
    assert response.status_code == 202 and SyncRun.objects.get().wallet == wallet


def test_post_sync_refuses_a_wallet_and_a_portfolio_at_once(owner_client, wallet, portfolio):
    response = post_json(owner_client, "/sync", {"wallet_id": wallet.pk, "portfolio_id": portfolio.pk})
    assert response.status_code == 422 and not SyncRun.objects.exists()


def test_the_sync_status_follows_the_run(owner_client, run):
    now = timezone.now()
    SyncRunItem.objects.filter(run=run).update(status=SyncRun.FAILED, error="timed out", finished_at=now, attempts=3)
    SyncRun.objects.filter(pk=run.pk).update(status=SyncRun.FAILED, finished_at=now, error="1 of 1 chain syncs failed")
    body = owner_client.get(f"{API}/sync/{run.pk}").json()
    assert body["finished"] is True and body["status"] == "failed" and body["done"] == body["total"] == 1
    (item,) = body["items"]
    assert item["state"] == "failed" and item["error"] == "timed out" and item["attempts"] == 3


# --------------------------------------------------------------------------- watch-only


@pytest.mark.parametrize("secret", [SEED_PHRASE, HEX_PRIVATE_KEY])
@pytest.mark.parametrize("field", ["address", "label"])
def test_it_refuses_private_keys_and_seed_phrases_without_echoing_them(owner_client, chain, secret, field):
    payload = {"family": "evm", "address": ALICE_ADDRESS, field: secret}
    response = post_json(owner_client, "/wallets", payload)
    assert response.status_code == 422
    assert response.json()["detail"][0]["msg"] == WATCH_ONLY_MESSAGE
    assert response.json()["detail"][0]["type"] == "secret"
    assert secret.encode() not in response.content and secret[2:20].encode() not in response.content
    assert not Wallet.objects.exists()


@pytest.mark.parametrize("query", [f"portfolio_id={HEX_PRIVATE_KEY}", f"q={SEED_PHRASE}", f"portfolio_id={int(HEX_PRIVATE_KEY, 16)}"])
def test_a_secret_in_the_query_string_is_refused_in_the_apis_error_shape(owner_client, query):
    """Refused before any view runs, and answered as every other 422 of the API (``detail`` and
    ``code``, the schema's ValidationErrorOut), without the secret."""
    response = owner_client.get(f"{API}/history?{query}")
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "invalid" and body["detail"][0]["type"] == "secret" and body["detail"][0]["msg"] == WATCH_ONLY_MESSAGE
    assert query.split("=", 1)[1][:20].encode() not in response.content


def test_a_secret_in_an_overlong_label_still_gets_the_watch_only_message(owner_client, chain):
    payload = {"family": "evm", "address": ALICE_ADDRESS, "label": SEED_PHRASE + " " + SEED_PHRASE}
    response = post_json(owner_client, "/wallets", payload)
    assert response.status_code == 422 and response.json()["detail"][0]["msg"] == WATCH_ONLY_MESSAGE
    assert b"abandon" not in response.content


def test_a_secret_in_a_field_of_the_wrong_type_is_not_echoed(owner_client, chain):
    payload = {"family": "evm", "address": ALICE_ADDRESS, "gap_limit": HEX_PRIVATE_KEY, "portfolio_ids": [SEED_PHRASE]}
    response = post_json(owner_client, "/wallets", payload)
    assert response.status_code == 422
    assert HEX_PRIVATE_KEY[2:20].encode() not in response.content and b"abandon" not in response.content


# --------------------------------------------------------------------------- isolation


def test_an_outsider_gets_404_for_every_id_of_the_owner(outsider_client, portfolio, wallet, run, holding):
    for url in (f"{API}/portfolios/{portfolio.pk}", f"{API}/wallets/{wallet.pk}", f"{API}/sync/{run.pk}",
                f"{API}/holdings?portfolio_id={portfolio.pk}", f"{API}/summary?portfolio_id={portfolio.pk}"):
        response = outsider_client.get(url)
        assert response.status_code == 404, url
        assert response.json() == {"detail": "Not Found", "code": "not_found"}
    assert outsider_client.delete(f"{API}/wallets/{wallet.pk}").status_code == 404
    assert Wallet.objects.filter(pk=wallet.pk).exists()
    runs = SyncRun.objects.count()
    for body in ({"wallet_id": wallet.pk}, {"portfolio_id": portfolio.pk}):
        assert post_json(outsider_client, "/sync", body).status_code == 404
    assert SyncRun.objects.count() == runs


def test_an_outsider_cannot_add_a_wallet_into_the_owners_portfolio(outsider_client, chain, portfolio):
    payload = {"family": "evm", "address": "0x" + "44" * 20, "portfolio_ids": [portfolio.pk]}
    response = post_json(outsider_client, "/wallets", payload)
    assert response.status_code == 422 and response.json()["detail"][0]["msg"] == "Unknown portfolio."
    assert not Wallet.objects.filter(owner__username="mallory").exists()


def test_lists_show_only_the_users_own_objects(owner_client, outsider_client, portfolio, wallet, holding,
                                               outsiders_things):
    mallory_wallet, mallory_portfolio = outsiders_things
    assert [p["id"] for p in owner_client.get(f"{API}/portfolios").json()["items"]] == [portfolio.pk]
    assert [w["id"] for w in owner_client.get(f"{API}/wallets").json()["items"]] == [wallet.pk]
    assert [p["id"] for p in outsider_client.get(f"{API}/portfolios").json()["items"]] == [mallory_portfolio.pk]
    assert [w["id"] for w in outsider_client.get(f"{API}/wallets").json()["items"]] == [mallory_wallet.pk]
    assert outsider_client.get(f"{API}/holdings").json()["items"] == []
    assert outsider_client.get(f"{API}/summary").json()["net_worth"] == "0"


def test_an_outsiders_refresh_of_everything_touches_only_their_wallets(outsider_client, wallet, outsiders_things):
    response = post_json(outsider_client, "/sync", {})
    run = SyncRun.objects.get(pk=response.json()["id"])
    do_expand_run(run.pk)
    assert {i.wallet_chain.wallet_id for i in run.items.all()} == {outsiders_things[0].pk}


# --------------------------------------------------------------------------- authentication and CSRF


@pytest.mark.parametrize("method, path", [
    ("get", "/portfolios"), ("get", "/portfolios/1"), ("get", "/wallets"), ("post", "/wallets"), ("get", "/wallets/1"),
    ("delete", "/wallets/1"), ("get", "/holdings"), ("get", "/summary"), ("post", "/sync"), ("get", "/sync/1"),
])
def test_without_a_session_every_endpoint_answers_401_json_not_a_redirect(client, method, path):
    response = getattr(client, method)(API + path)
    assert response.status_code == 401
    assert response["Content-Type"].startswith("application/json")
    assert response.json() == {"detail": "Unauthorized", "code": "not_authenticated"}
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_browser_session_must_send_the_csrf_token_to_add_a_wallet(owner, chain):
    client = csrf_client(owner)
    payload = {"family": "evm", "address": ALICE_ADDRESS}
    refused = post_json(client, "/wallets", payload)
    assert refused.status_code == 403 and not Wallet.objects.exists()
    accepted = post_json(client, "/wallets", payload, **with_csrf_token(client))
    assert accepted.status_code == 201


def test_a_browser_session_must_send_the_csrf_token_to_delete_and_to_sync(owner, wallet):
    client = csrf_client(owner)
    assert client.delete(f"{API}/wallets/{wallet.pk}").status_code == 403
    assert post_json(client, "/sync").status_code == 403
    assert Wallet.objects.filter(pk=wallet.pk).exists() and not SyncRun.objects.exists()
    headers = with_csrf_token(client)
    assert post_json(client, "/sync", **headers).status_code == 202
    assert client.delete(f"{API}/wallets/{wallet.pk}", **headers).status_code == 204


def test_reads_need_no_csrf_token(owner, wallet):
    assert csrf_client(owner).get(f"{API}/wallets/{wallet.pk}").status_code == 200


def test_an_unreadable_body_is_a_400(owner_client, chain):
    response = post_json(owner_client, "/wallets", "{not json")
    assert response.status_code == 400
    assert response.json() == {"detail": "Cannot parse request body", "code": "unreadable_body"}


# --------------------------------------------------------------------------- OpenAPI


def test_the_openapi_schema_lists_every_route_with_its_responses(owner_client):
    schema = owner_client.get(f"{API}/openapi.json").json()
    operations = {(method.upper(), path): op for path, ops in schema["paths"].items() for method, op in ops.items()}
    every = {"401", "422", "429"}
    read, lookup = every | {"200"}, every | {"200", "404"}
    write = every | {"400", "403"}
    expected = {
        ("GET", "/api/v1/portfolios"): read,
        ("POST", "/api/v1/portfolios"): write | {"201", "409"},
        ("GET", "/api/v1/portfolios/{portfolio_id}"): lookup,
        ("PATCH", "/api/v1/portfolios/{portfolio_id}"): write | {"200", "404", "409"},
        ("DELETE", "/api/v1/portfolios/{portfolio_id}"): write | {"204", "404"},
        ("POST", "/api/v1/portfolios/{portfolio_id}/wallets"): write | {"200", "404"},
        ("DELETE", "/api/v1/portfolios/{portfolio_id}/wallets/{wallet_id}"): write | {"200", "404"},
        ("GET", "/api/v1/wallets"): read,
        ("POST", "/api/v1/wallets"): write | {"201", "409"},
        ("GET", "/api/v1/wallets/{wallet_id}"): lookup,
        ("PATCH", "/api/v1/wallets/{wallet_id}"): write | {"200", "404"},
        ("DELETE", "/api/v1/wallets/{wallet_id}"): write | {"204", "404"},
        ("GET", "/api/v1/holdings"): lookup,
        ("GET", "/api/v1/positions"): lookup,
        ("GET", "/api/v1/nfts"): lookup,
        ("GET", "/api/v1/activity"): lookup,
        ("GET", "/api/v1/summary"): lookup,
        ("GET", "/api/v1/history"): lookup,
        ("GET", "/api/v1/performance"): lookup,
        ("GET", "/api/v1/allocation"): lookup,
        ("GET", "/api/v1/chains"): read,
        ("POST", "/api/v1/sync"): write | {"202", "404", "503"},
        ("GET", "/api/v1/sync/{run_id}"): lookup,
    }
    assert {key: set(op["responses"]) for key, op in operations.items()} == expected
    amount = schema["components"]["schemas"]["HoldingOut"]["properties"]["amount_raw"]
    assert amount["type"] == "string"  # exact numbers are strings in the contract too
    schemes = schema["components"]["securitySchemes"]
    assert schemes["SignedInSession"]["in"] == "cookie"
    assert schemes["PersonalToken"] == {"type": "http", "scheme": "bearer"}
    error = schema["components"]["schemas"]["ErrorOut"]
    assert set(error["required"]) == {"detail", "code"}  # one shape for every refusal


def test_the_docs_page_is_served_to_a_signed_in_user(owner_client, client):
    assert owner_client.get(f"{API}/docs").status_code == 200
    assert client.get(f"{API}/docs").status_code == 302  # like every page: sign in first


def test_a_malformed_id_is_a_json_422_and_a_negative_one_a_json_404(owner_client):
    malformed = owner_client.get(f"{API}/wallets/abc")
    assert malformed.status_code == 422 and malformed.json()["detail"][0]["loc"] == ["path", "wallet_id"]
    assert owner_client.get(f"{API}/sync/-5").json() == {"detail": "Not Found", "code": "not_found"}


def test_an_id_beyond_any_integer_column_is_a_404_not_a_server_error(owner_client):
    assert owner_client.get(f"{API}/wallets/{2**70}").status_code == 404
    assert owner_client.get(f"{API}/portfolios?offset={2**70}").status_code == 422


def test_the_docs_page_loads_swagger_from_our_own_static_files(owner_client, settings):
    if "ninja" not in settings.INSTALLED_APPS:
        pytest.skip('"ninja" is not in INSTALLED_APPS yet: ninja falls back to a CDN page the CSP blocks')
    html = owner_client.get(f"{API}/docs").content.decode()
    assert "/static/ninja/swagger-ui-bundle.js" in html and "cdn." not in html


def test_every_refusal_has_the_same_json_shape_even_an_unknown_route_or_method(owner_client):
    unknown = owner_client.get(f"{API}/no-such-thing/1")
    assert unknown.status_code == 404 and unknown.json() == {"detail": "Not Found", "code": "not_found"}
    wrong_method = owner_client.put(f"{API}/wallets", {}, content_type="application/json")
    assert wrong_method.status_code == 405 and wrong_method.json()["code"] == "method_not_allowed"
    assert set(wrong_method["Allow"].replace(" ", "").split(",")) == {"GET", "POST"}
