"""Helpers the chain families share to turn dated balance changes into end-of-UTC-day balances."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from typing import Callable, Iterable, Mapping

from chains.base import HistoryPage, HistoryRequest

DAY_S = 86_400


def utc_day(timestamp: int) -> date:
    """The UTC day a unix time falls on."""
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).date()


def utc_time(timestamp: int) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=timezone.utc)


def day_start(day: date) -> int:
    """Unix time of 00:00 UTC on ``day``."""
    return int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp())


def days(first: date, last: date) -> list[date]:
    """Every day from ``first`` to ``last`` inclusive (empty when ``first`` is later)."""
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def daily_from_changes(
    changes: Iterable[tuple[int, Mapping[str, int]]], first: date, last: date
) -> dict[date, dict[str, int]]:
    """Balances at the end of each day ``first``..``last`` from ``(unix time, {asset key: change})``
    summed from zero (the whole history). Zero balances are left out, as ``HistoryPage.daily`` allows."""
    ordered = sorted(changes, key=lambda c: c[0])
    out: dict[date, dict[str, int]] = {}
    running: dict[str, int] = {}
    i = 0
    for day in days(first, last):
        end = day_start(day) + DAY_S
        while i < len(ordered) and ordered[i][0] < end:
            for key, delta in ordered[i][1].items():
                running[key] = running.get(key, 0) + delta
            i += 1
        out[day] = {k: v for k, v in running.items() if v}
    return out


def read_all_pages(history: Callable[[HistoryRequest], HistoryPage], request: HistoryRequest) -> tuple[HistoryPage, int]:
    """Every page of one backfill merged into one ``HistoryPage`` (and how many pages it took), the
    cursor passed back through JSON as a caller that stores it does: for tools, benchmarks and tests."""
    daily: dict[date, dict[str, int]] = {}
    transfers, requests, pages = [], 0, 0
    while True:
        page = history(request)
        pages += 1
        if set(page.daily) & set(daily):
            raise ValueError("a page repeated a day")
        daily.update(page.daily)
        transfers.extend(page.transfers)
        requests += page.request_count
        if page.done:
            return replace(page, daily=daily, transfers=tuple(transfers), request_count=requests), pages
        request = replace(request, cursor=json.loads(json.dumps(page.cursor)))
