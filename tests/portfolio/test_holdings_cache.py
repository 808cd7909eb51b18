"""The holdings page and API of "All wallets" and of a portfolio read their valued asset list from the
cache (portfolio/holdings_cache.py): a second view prices nothing, and every view shows exactly what a
computation without the cache shows after a new price, a sync that changes a holding, an asset marked
spam in the admin, a membership change and a price turning stale (now or as of 24 hours ago)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D
from unittest import mock

import re

import pytest
from django.contrib.admin.sites import site
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from portfolio import holdings_cache
from portfolio.models import Asset, Portfolio, PricePoint
from portfolio.services.prices import stale_after
from tests.portfolio.test_list_values import price, synced  # noqa: F401  (the fixture)
from tests.portfolio.test_sync_writes import _reload, _result, _sync, _token

pytestmark = pytest.mark.django_db
API = "/api/v1"


def urls(owner) -> list[str]:
    portfolio = Portfolio.objects.get(owner=owner)
    return [f"{API}/holdings?currency=USD&include_spam=true",
            f"{API}/holdings?portfolio_id={portfolio.pk}&currency=USD",
            reverse("holdings") + "?hide_spam=0", reverse("holdings") + f"?portfolio={portfolio.pk}"]


CSRF = re.compile(rb'("X-CSRFToken": "|name="csrfmiddlewaretoken" value=")[^"]+')


def content(client, url: str) -> bytes:
    return CSRF.sub(rb"\1", client.get(url).content)  # a new CSRF token on each page


def without_cache(client, url: str) -> bytes:
    """The response computed with no kept list (every asset priced again, nothing stored)."""
    with mock.patch.object(holdings_cache, "get", return_value=None), mock.patch.object(holdings_cache, "put"):
        return content(client, url)


def assert_same_as_without_cache(client, owner) -> None:
    for url in urls(owner):
        kept = content(client, url)
        assert kept == without_cache(client, url), url


def totals_reads(client, url: str) -> int:
    """The view's reads of per-asset totals (none when the kept list is used: nothing is priced but the
    page's own 7-day changes)."""
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return sum('FROM "portfolio_assettotal"' in q["sql"] for q in ctx.captured_queries)


def test_a_second_view_prices_nothing_and_shows_the_same(owner_client, owner, synced):
    for url in urls(owner):
        owner_client.get(url)
        assert totals_reads(owner_client, url) == 0, url
    assert_same_as_without_cache(owner_client, owner)


def test_a_new_price_and_a_sync_change_show_on_the_next_view(owner_client, owner, synced):
    assert_same_as_without_cache(owner_client, owner)
    before = owner_client.get(urls(owner)[0]).json()["net_worth"]
    price(_token(2).address, "3")
    after = owner_client.get(urls(owner)[0]).json()["net_worth"]
    assert D(after) - D(before) == D(3) * (3 * (3 * 10**18) + 0 + 1 + 2) / 10**18
    assert_same_as_without_cache(owner_client, owner)
    _sync(synced, _result(synced, 3, 11, amount=lambda w, t: 5 * 10**18 if (w, t) == (0, 0) else 10**18 * (t + 1) + w))
    assert D(owner_client.get(urls(owner)[0]).json()["net_worth"]) == D(after) + 4 * D("1.5")
    assert_same_as_without_cache(owner_client, owner)


def test_an_asset_marked_spam_in_the_admin_and_a_membership_change_show_on_the_next_view(
        owner_client, owner, admin_user, synced):
    assert_same_as_without_cache(owner_client, owner)
    token = Asset.objects.get(address=_token(0).address)
    request = RequestFactory().post("/")
    request.user, request._messages = admin_user, mock.MagicMock()
    site._registry[Asset].mark_spam(request, Asset.objects.filter(pk=token.pk))
    items = owner_client.get(urls(owner)[0]).json()["items"]
    assert [i["is_spam"] for i in items if i["asset_id"] == token.pk] == [True]
    assert_same_as_without_cache(owner_client, owner)
    portfolio = Portfolio.objects.get(owner=owner)
    portfolio.wallets.add(synced[2].wallet)
    assert owner_client.get(urls(owner)[1]).json()["net_worth"] == owner_client.get(urls(owner)[0]).json()["net_worth"]
    assert_same_as_without_cache(owner_client, owner)
    portfolio.wallets.remove(synced[0].wallet)
    assert_same_as_without_cache(owner_client, owner)


def test_a_price_turning_stale_now_or_as_of_24_hours_ago_shows_when_it_does(owner_client, owner, synced):
    price(_token(2).address, "3", source="coingecko", age=stale_after() - timedelta(seconds=30))  # stale in 30 s
    for asset in Asset.objects.filter(address__in=["", _token(0).address]):  # the day before: 24h ago in 20 s
        PricePoint.objects.create(asset=asset, price=D("1.25"), currency="USD", source="manual",
                                  at=timezone.now() - timedelta(hours=24) + timedelta(seconds=20))
    seen, real_now = {}, timezone.now
    for later in (0, 25, 35):
        with mock.patch("django.utils.timezone.now", lambda: real_now() + timedelta(seconds=later)):
            assert_same_as_without_cache(owner_client, owner)
            seen[later] = owner_client.get(urls(owner)[0]).json()
    assert seen[0]["change_24h"] != seen[25]["change_24h"], "the prices of 24 hours ago moved"
    assert seen[25]["net_worth"] != seen[35]["net_worth"], "a price turned stale"


def test_the_kept_list_is_shared_by_every_view_with_the_same_stamp(owner_client, owner, synced):
    url = urls(owner)[0]
    owner_client.get(url)
    stamped = holdings_cache.stamp(owner.pk)
    _sync(_reload(synced), _result(synced, 3, 12))  # nothing changed: no write, the same stamp
    assert holdings_cache.stamp(owner.pk) == stamped
    assert totals_reads(owner_client, url) == 0
    price("", "2001")
    assert holdings_cache.stamp(owner.pk) != stamped
    assert totals_reads(owner_client, url) > 0
