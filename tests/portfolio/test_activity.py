"""The activity feed: the scope's transfers newest first in keyset pages (a fixed number of queries a page),
valued at the price of their time in the user's currency, internal transfers marked and cancelling in
flows, filters, the CSV of what is shown with exact amounts, the API's cursor pages and errors, and
another user's transfers never visible."""

from __future__ import annotations

import csv
import io
from decimal import Decimal as D

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from portfolio.models import ApiToken, Chain, FxRate, Portfolio, PricePoint, Profile, Transfer, Wallet, WalletChain
from portfolio.services.tokens import do_create_api_token
from tests.portfolio.test_costbasis import DAY, ETH, EXTERNAL, HOUR, T0, book, transfer  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db


def api(user):
    _, text = do_create_api_token(user, "t", ApiToken.READ)
    client = Client()
    return lambda path, **params: client.get("/api/v1" + path, params, HTTP_AUTHORIZATION=f"Bearer {text}")


# --------------------------------------------------------------------------- the page


def test_the_page_lists_the_scopes_transfers_newest_first_valued_then(owner_client, book):
    response = owner_client.get("/activity/")
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('data-testid="activity-row"') == 6
    # newest first: the airdrop, the internal pair, the sale, the two buys
    order = [html.index(f'title="{tx}"') for tx in ("0xa1", "0xi1", "0xs1", "0xb2", "0xb1")]
    assert order == sorted(order)
    assert "$300.00" in html                     # the sale: 1 ETH at the day's 300
    assert "$400.00" in html and "$200.00" in html  # the buys: 2 at 200, 2 at 100
    assert "internal out" in html and "internal in" in html
    assert "https://etherscan.io/tx/0xs1" in html and f"https://etherscan.io/address/{EXTERNAL}" in html
    assert f'data-copy="{EXTERNAL}"' in html
    # flows: 600 in (the buys; the unpriced airdrop is not a figure), 300 out; the internal pair cancels
    assert "in $600.00 · out $300.00 · net <span" in html and '"pos">+$300.00</span>' in html
    assert "1 without a price of the time" in html


def test_an_internal_transfer_is_a_flow_of_a_portfolio_holding_one_side(owner, owner_client, book):
    portfolio = Portfolio.objects.create(owner=owner, name="Hot only")
    portfolio.wallets.add(book["hot"])
    html = owner_client.get("/activity/", {"portfolio": portfolio.pk}).content.decode()
    assert html.count('data-testid="activity-row"') == 5  # cold's leg is outside
    assert "internal out" in html and "in $600.00 · out $600.00" in html  # the sale and the 1 ETH sent to cold


def test_filters_narrow_the_feed(owner_client, book):
    def count(**params):
        return owner_client.get("/activity/", params).content.decode().count('data-testid="activity-row"')

    assert count(direction="out") == 2
    assert count(direction="in", wallet=book["hot"].pk) == 3
    assert count(asset=book["air"].pk) == 1
    assert count(chain="ethereum") == 6 and count(chain="bitcoin") == 0
    assert count(wallet=book["cold"].pk) == 1


def test_pages_follow_each_other_and_cost_the_same_queries_however_many_transfers(owner, owner_client, book):
    chain, eth = Chain.objects.get(slug="ethereum"), book["eth"]
    wallets = []
    for n in range(10, 16):
        w = Wallet.objects.create(owner=owner, family="evm", address=f"0x{n:040x}", label=f"w{n}")
        wallets.append(WalletChain.objects.create(wallet=w, chain=chain))
    for i in range(120):  # 120 transfers at 60 moments: ties on time are kept apart by id
        transfer(wallets[i % 6], eth, "in", i + 1, T0 + 3 * DAY + (i // 2) * HOUR, f"0xp{i:03d}")
    owner_client.get("/activity/")  # the flows of the whole set are computed once, then kept (see below)
    seen, url, pages, counts = [], "/activity/", 0, []
    while url:
        with CaptureQueriesContext(connection) as queries:
            response = owner_client.get(url)
        counts.append(len(queries))
        html = response.content.decode()
        seen += [chunk.split('"', 1)[0] for chunk in html.split('title="0xp')[1:]]
        pages += 1
        nxt = html.split('rel="next"')[0].rsplit('href="', 1)[-1].split('"')[0] if 'rel="next"' in html else ""
        url = "/activity/" + nxt.replace("&amp;", "&") if nxt else ""
    assert pages == 3  # 126 transfers, 50 a page
    assert seen == [f"{i:03d}" for i in reversed(range(120))]
    assert len(set(counts)) == 1, counts


def test_the_flows_line_covers_every_transfer_the_filters_keep_not_only_the_page(owner_client, book):
    for i in range(60):  # 60 more buys of 0.001 ETH at the day's 300: $0.30 each, $18 in all
        transfer(book["hot_wc"], book["eth"], "in", ETH // 1000, T0 + 3 * DAY + i * HOUR / 5, f"0xm{i:02d}")
    first = owner_client.get("/activity/").content.decode()
    nxt = first.split('rel="next"')[0].rsplit('href="', 1)[-1].split('"')[0].replace("&amp;", "&")
    last = owner_client.get("/activity/" + nxt).content.decode()
    assert first.count('data-testid="activity-row"') == 50 and last.count('data-testid="activity-row"') == 16
    for html in (first, last):  # 600 + 18 in, 300 out; the internal pair cancels; the airdrop is unpriced
        assert "All 66 transfers: in $618.00 · out $300.00 · net" in html and '"pos">+$318.00</span>' in html
        assert "1 without a price of the time" in html
    outs = owner_client.get("/activity/", {"direction": "out"}).content.decode()
    assert "All 2 transfers these filters keep: in $0.00 · out $300.00" in outs  # the sale; the internal out cancels
    cold = owner_client.get("/activity/", {"wallet": book["cold"].pk}).content.decode()
    assert "All 1 transfer these filters keep: in $0.00 · out $0.00" in cold  # hot, its other side, is in the scope


def test_the_kept_flows_follow_a_new_transfer_a_price_of_its_day_and_an_asset_marked_spam(owner_client, book):
    def line():
        with CaptureQueriesContext(connection) as queries:
            html = owner_client.get("/activity/").content.decode()
        return html.split(" · net", 1)[0].rsplit("All ", 1)[1], len(queries)

    first, cold = line()
    assert first == "6 transfers: in $600.00 · out $300.00"
    assert line() == (first, cold - 8)  # the second view reads the kept figure, not the history and its prices
    transfer(book["hot_wc"], book["eth"], "in", ETH, T0 + 3 * DAY + 2 * HOUR, "0xnew")  # 1 ETH at the day's 300
    assert line()[0] == "7 transfers: in $900.00 · out $300.00"
    PricePoint.objects.create(asset=book["eth"], at=T0 + 5 * DAY, price=D(999), source="manual")  # after the history
    assert line() == ("7 transfers: in $900.00 · out $300.00", cold - 7)  # kept: one query to tell
    PricePoint.objects.create(asset=book["eth"], at=T0 + 3 * DAY + HOUR, price=D(400), source="manual")  # of its day
    assert line()[0] == "7 transfers: in $1,000.00 · out $300.00"
    book["eth"].is_spam = True
    book["eth"].save(update_fields=["is_spam"])  # spam is never valued: every ETH transfer loses its value
    assert line()[0] == "7 transfers: in $0.00 · out $0.00"


def test_another_users_transfers_are_never_visible(owner, owner_client, outsider, book):
    theirs = Wallet.objects.get(owner=outsider)
    their_portfolio = Portfolio.objects.create(owner=outsider, name="theirs")
    html = owner_client.get("/activity/").content.decode()
    assert "theirs" not in html and html.count('title="0xb1"') == 1  # alice's leg of the shared hash only
    assert owner_client.get("/activity/", {"wallet": theirs.pk}).content.decode().count('data-testid="activity-row"') == 6
    assert owner_client.get("/activity/", {"portfolio": their_portfolio.pk}).status_code == 404
    body = owner_client.get("/activity.csv").content.decode()
    assert "theirs" not in body and "7000000000000000000" not in body
    assert api(owner)("/activity", wallet_id=theirs.pk).status_code == 404


def test_an_account_reached_through_two_wallets_counts_once(owner, owner_client, book):
    Wallet.objects.filter(pk=book["hot"].pk).update(address="0x" + "ab" * 20)
    twin = Wallet.objects.create(owner=owner, family="evm", address="0x" + "AB" * 20, label="twin")  # the same account
    twin_wc = WalletChain.objects.create(wallet=twin, chain=book["hot_wc"].chain)
    for t in Transfer.objects.filter(wallet_chain=book["hot_wc"]):
        transfer(twin_wc, t.asset, t.direction, t.amount, t.at, t.tx, t.counterparty, t.fee)
    assert owner_client.get("/activity/").content.decode().count('data-testid="activity-row"') == 6


# --------------------------------------------------------------------------- currency and CSV


def test_values_are_in_the_users_currency_at_the_rate_of_the_moment(owner, owner_client, book):
    Profile.objects.update_or_create(user=owner, defaults={"quote_currency": "EUR"})
    FxRate.objects.create(at=T0 - 10 * DAY, currency="EUR", rate=D("0.5"), source="manual")  # long before: still the rate then
    FxRate.objects.create(at=T0 + 2 * DAY, currency="EUR", rate=D("0.8"), source="manual")
    FxRate.objects.create(at=T0 + 9 * DAY, currency="EUR", rate=D("0.9"), source="manual")  # now: never used for the past
    rows = {r["tx"]: r for r in api(owner)("/activity").json()["items"]}
    assert rows["0xs1"]["value"] == "240" and rows["0xb1"]["value"] == "100"  # 300 x 0.8; 200 x 0.5


def test_the_csv_holds_what_the_filters_keep_with_exact_amounts(owner_client, book):
    transfer(book["hot_wc"], book["eth"], "out", ETH + 1, T0 + 2 * DAY + 5 * HOUR, "0xodd")
    body = owner_client.get("/activity.csv", {"direction": "out"}).content.decode()
    rows = list(csv.DictReader(io.StringIO(body)))
    assert [r["tx"] for r in rows] == ["0xodd", "0xi1", "0xs1"]
    assert rows[0]["amount"] == "1.000000000000000001" and rows[0]["amount_raw"] == "1000000000000000001"
    assert rows[0]["price_USD"] == "300" and rows[0]["value_USD"] == "300.00"
    assert rows[1]["internal"] == "yes" and rows[1]["counted_in_flows"] == "no"
    assert rows[2]["fee_raw"] == "10000000000000000" and rows[2]["price_source"] == "coingecko"
    assert "e" not in rows[0]["amount"].lower()


def test_the_export_reads_the_history_in_chunks_that_add_up_to_the_feed(owner, book):
    from portfolio.activity import activity_page, all_rows

    ids = [book["hot"].pk, book["cold"].pk]
    feed = [(r.id, r.value) for r in activity_page(owner, ids, "USD").rows]
    assert [(r.id, r.value) for r in all_rows(owner, ids, "USD", chunk=4)] == feed and len(feed) == 6


# --------------------------------------------------------------------------- the API


def test_the_api_pages_by_cursor_and_the_pages_add_up(owner, book):
    get = api(owner)
    whole = [r["tx"] for r in get("/activity").json()["items"]]
    assert len(whole) == 6
    seen, cursor = [], None
    while True:
        body = get("/activity", limit=4, **({"cursor": cursor} if cursor else {})).json()
        assert body["count"] == 6
        seen += [r["tx"] for r in body["items"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert seen == whole
    first = get("/activity").json()["items"]
    sale = next(r for r in first if r["tx"] == "0xs1")
    assert sale["amount_raw"] == str(ETH) and sale["amount"] == "1" and sale["price"] == "300"
    assert sale["price_source"] == "coingecko" and not sale["internal"] and sale["tx_url"] == "https://etherscan.io/tx/0xs1"
    internal = next(r for r in first if r["tx"] == "0xi1" and r["direction"] == "out")
    assert internal["internal"] and internal["cancels"] and internal["counterparty_wallet_id"] == book["cold"].pk
    airdrop = next(r for r in first if r["tx"] == "0xa1")
    assert airdrop["value"] is None and airdrop["price"] is None


def test_the_api_filters_like_the_page(owner, book):
    get = api(owner)
    assert [r["tx"] for r in get("/activity", direction="out").json()["items"]] == ["0xi1", "0xs1"]
    assert get("/activity", asset_id=book["air"].pk).json()["count"] == 1
    assert get("/activity", wallet_id=book["cold"].pk).json()["count"] == 1
    assert get("/activity", chain="bitcoin").json()["count"] == 0


@pytest.mark.parametrize("cursor", ["garbage", "W10", "WyJub3QgYSB0aW1lIiwgMV0", "WyIyMDI2LTAzLTAxVDAwOjAwOjAwIiwxXQ"])
def test_a_bad_cursor_or_filter_is_a_422_in_the_apis_shape(owner, book, cursor):
    response = api(owner)("/activity", cursor=cursor)
    assert response.status_code == 422
    assert response.json()["code"] == "invalid" and response.json()["detail"][0]["loc"] == ["query", "cursor"]
    bad = api(owner)("/activity", direction="sideways")
    assert bad.status_code == 422 and bad.json()["code"] == "invalid"


def test_the_api_without_a_token_is_a_401_json(book):
    response = Client().get("/api/v1/activity")
    assert response.status_code == 401 and response.json()["code"] == "not_authenticated"


def test_the_holdings_api_and_page_carry_the_cost_basis(owner, owner_client, book):
    items = {r["symbol"]: r for r in api(owner)("/holdings").json()["items"]}
    assert items["ETH"]["cost_basis"] == {"complete": True, "incomplete": "", "average_cost": "150", "cost": "448.5",
                                          "unrealised": "448.5", "unrealised_pct": "1"}
    assert items["AIR"]["cost_basis"]["complete"] is False and items["AIR"]["cost_basis"]["cost"] is None
    html = owner_client.get("/holdings/").content.decode()
    assert "+$448.50" in html and "avg $150.00 · cost $448.50" in html
    assert "cost basis incomplete: no price on the day of 1 inflow (first 2026-03-03)" in html


def test_the_holdings_csv_carries_the_cost_basis_exactly_or_why_it_is_incomplete(owner, owner_client, book):
    cold = Portfolio.objects.create(owner=owner, name="Cold only")
    cold.wallets.add(book["cold"])
    response = owner_client.get("/holdings.csv")
    assert response.status_code == 200
    rows = {r["asset"]: r for r in csv.DictReader(io.StringIO(response.content.decode()))}
    eth, air = rows["ETH"], rows["AIR"]
    # 2 at 100 + 2 at 200 = avg 150; 2.99 held (the fee and the sale left hot, the internal 1 moved) = 448.5
    assert (eth["average_cost_USD"], eth["cost_USD"], eth["unrealised_USD"], eth["unrealised_pct"]) == (
        "150", "448.5", "448.5", "100")
    assert eth["cost_basis_incomplete"] == ""
    assert air["cost_USD"] == air["average_cost_USD"] == air["unrealised_USD"] == ""
    assert air["cost_basis_incomplete"] == "cost basis incomplete: no price on the day of 1 inflow (first 2026-03-03)"
    # a scope holding only the receiving side: the internal transfer is an inflow of unknown cost
    cold_rows = list(csv.DictReader(io.StringIO(owner_client.get("/holdings.csv", {"portfolio": cold.pk}).content.decode())))
    assert [r["asset"] for r in cold_rows] == ["ETH"]
    assert cold_rows[0]["cost_USD"] == "" and "from your wallet outside this scope" in cold_rows[0]["cost_basis_incomplete"]


def test_the_same_transaction_out_of_one_wallet_and_into_another_is_internal_only_for_the_same_amount(owner, book):
    hot_wc, cold_wc, air = book["hot_wc"], book["cold_wc"], book["air"]
    at = T0 + 2 * DAY + 6 * HOUR
    transfer(hot_wc, air, "out", 2, at, "0xm1", counterparty="")
    transfer(cold_wc, air, "in", 2, at, "0xm1", counterparty="")
    transfer(hot_wc, air, "out", 3, at + HOUR, "0xm2", counterparty="")  # pays someone else too
    transfer(cold_wc, air, "in", 1, at + HOUR, "0xm2", counterparty="")
    rows = api(owner)("/activity", asset_id=air.pk).json()["items"]
    internal = {(r["tx"], r["direction"]): r["internal"] for r in rows}
    assert internal == {("0xm2", "out"): False, ("0xm2", "in"): False, ("0xm1", "out"): True, ("0xm1", "in"): True,
                        ("0xa1", "in"): False}
