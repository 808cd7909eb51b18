"""A CoinGecko-compatible HTTP price source (/simple/price, /simple/token_price, /coins/{id}/market_chart,
/exchange_rates) through httpx, with a response cache and a shared rate limiter. All outbound price HTTP
goes through ``CoinGeckoClient``, so tests point it at a local fake (tests/fakes/coingecko.py)."""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import datetime, timezone as dt_timezone
from decimal import Decimal
from typing import Any, Callable, Iterable, Sequence
from urllib.parse import urlsplit

import httpx

from chains.base import redact_url
from chains.endpoints import LocalRateLimiter
from portfolio.pricing.base import NewPrice, PriceRateLimited, PricingError
from portfolio.ratelimit import shared_limiter

IDS_PER_REQUEST = 100
ADDRESSES_PER_REQUEST = 50
_shared_limiter = LocalRateLimiter()


class TtlCache:
    """A small thread-safe response cache: URL+params -> parsed JSON for ``ttl_s`` seconds."""

    def __init__(self, ttl_s: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.ttl_s, self._clock = ttl_s, clock
        self._data: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> Any | None:
        with self._lock:
            hit = self._data.get(key)
            if hit and hit[0] > self._clock():
                return hit[1]
            self._data.pop(key, None)
            return None

    def put(self, key: str, value: Any) -> None:
        with self._lock:
            if len(self._data) > 10_000:
                self._data.clear()
            self._data[key] = (self._clock() + self.ttl_s, value)


_shared_cache = TtlCache()


class CoinGeckoClient:
    """The CoinGecko wire format. Numbers are parsed straight to Decimal (never float).

    ``base_url`` e.g. ``https://api.coingecko.com/api/v3``; ``api_key`` is sent as
    ``x-cg-pro-api-key`` on a pro-api host, else ``x-cg-demo-api-key``. Every request first takes a
    token from ``limiter`` (key ``coingecko``) at ``rate_per_s``. Raises ``PriceRateLimited`` on 429
    (with Retry-After seconds) and ``PricingError`` for other failures; messages never carry the key.
    """

    def __init__(self, base_url: str, *, api_key: str = "", rate_per_s: float = 0.5, timeout_s: float = 10.0,
                 limiter=None, cache: TtlCache | None = None, transport: httpx.BaseTransport | None = None):
        self.base_url = base_url.rstrip("/")
        headers = {"accept": "application/json", "user-agent": "chainfolio"}
        if api_key:
            host = urlsplit(self.base_url).hostname or ""
            headers["x-cg-pro-api-key" if host.startswith("pro-api") else "x-cg-demo-api-key"] = api_key
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout_s, transport=transport,
                                  follow_redirects=False)
        self.rate_per_s = rate_per_s
        self.limiter = limiter or _shared_limiter
        self.cache = cache if cache is not None else _shared_cache
        self.request_count = 0

    @classmethod
    def from_settings(cls, **overrides) -> "CoinGeckoClient | None":
        """The client configured in settings, or ``None`` when COINGECKO_API_URL is empty (source off)."""
        from django.conf import settings

        if not settings.COINGECKO_API_URL:
            return None
        kwargs = {
            "api_key": os.environ.get(settings.COINGECKO_API_KEY_ENV, "") if settings.COINGECKO_API_KEY_ENV else "",
            "rate_per_s": float(settings.COINGECKO_RATE_PER_S),
        }
        if "limiter" not in overrides:  # one budget for every worker process (Redis when the broker is)
            kwargs["limiter"] = shared_limiter()
        kwargs.update(overrides)
        return cls(settings.COINGECKO_API_URL, **kwargs)

    def close(self) -> None:
        self._http.close()

    # ------------------------------------------------------------------ wire

    def _get(self, path: str, params: dict[str, str]) -> Any:
        key = f"{self.base_url}{path}?{sorted(params.items())}"
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        self.limiter.acquire("coingecko", self.rate_per_s)
        self.request_count += 1
        where = redact_url(self.base_url + path)
        try:
            response = self._http.get(path, params=params)
        except httpx.HTTPError as exc:
            raise PricingError(f"price API unreachable: {type(exc).__name__} ({where})") from None
        if response.status_code == 429:
            retry_after = _retry_after(response.headers.get("retry-after"))
            raise PriceRateLimited(f"price API rate limit reached ({where})", retry_after=retry_after)
        if response.status_code != 200:
            raise PricingError(f"price API answered HTTP {response.status_code} ({where})")
        try:
            data = json.loads(response.content, parse_float=Decimal)
        except ValueError:
            raise PricingError(f"price API answered something that is not JSON ({where})") from None
        self.cache.put(key, data)
        return data

    def simple_price(self, ids: Iterable[str], vs: str = "usd") -> dict[str, Decimal]:
        """Current prices by coin id: ``{"ethereum": Decimal("2500.12")}``; unknown ids are absent."""
        out: dict[str, Decimal] = {}
        for chunk in _chunks(sorted(set(ids)), IDS_PER_REQUEST):
            data = self._get("/simple/price", {"ids": ",".join(chunk), "vs_currencies": vs})
            for coin, quotes in _as_dict(data).items():
                price = _decimal(_as_dict(quotes).get(vs))
                if price is not None:
                    out[coin] = price
        return out

    def token_price(self, platform: str, addresses: Iterable[str], vs: str = "usd") -> dict[str, Decimal]:
        """Current prices by contract on an asset platform; keys are lower-cased addresses."""
        out: dict[str, Decimal] = {}
        for chunk in _chunks(sorted({a.lower() for a in addresses}), ADDRESSES_PER_REQUEST):
            data = self._get(f"/simple/token_price/{platform}", {"contract_addresses": ",".join(chunk), "vs_currencies": vs})
            for address, quotes in _as_dict(data).items():
                price = _decimal(_as_dict(quotes).get(vs))
                if price is not None:
                    out[address.lower()] = price
        return out

    def market_chart(self, coin_id: str, days: int | str, vs: str = "usd") -> list[tuple[datetime, Decimal]]:
        """Price history ``[(at, price)]`` oldest first (``/coins/{id}/market_chart``)."""
        return _chart(self._get(f"/coins/{coin_id}/market_chart", {"vs_currency": vs, "days": str(days)}))

    def market_chart_range(self, coin_id: str, start: datetime, end: datetime, vs: str = "usd") -> list[tuple[datetime, Decimal]]:
        """Price history between two moments ``[(at, price)]`` oldest first (``/coins/{id}/market_chart/range``;
        daily points for ranges over 90 days)."""
        params = {"vs_currency": vs, "from": str(int(start.timestamp())), "to": str(int(end.timestamp()))}
        return _chart(self._get(f"/coins/{coin_id}/market_chart/range", params))

    def exchange_rates(self) -> dict[str, Decimal]:
        """Fiat units per 1 USD, from ``/exchange_rates`` (which quotes everything per BTC)."""
        rates = _as_dict(_as_dict(self._get("/exchange_rates", {})).get("rates"))
        usd = _decimal(_as_dict(rates.get("usd")).get("value"))
        if not usd:
            raise PricingError("price API /exchange_rates has no usd rate")
        out = {}
        for code, row in rates.items():
            value = _decimal(_as_dict(row).get("value"))
            if value is not None and _as_dict(row).get("type") == "fiat":
                out[code.upper()] = value / usd
        return out


class CoinGeckoSource:
    """Prices from the CoinGecko-compatible API: by ``Asset.coingecko_id``, the chain's
    ``native_coingecko_id`` for a native coin, or by contract on the chain's ``coingecko_platform``."""

    name = "coingecko"
    stored_prefixes = ("coingecko",)
    never_stale = False

    def __init__(self, client: CoinGeckoClient | None = None):
        self._client = client

    def client(self) -> CoinGeckoClient | None:
        return self._client or CoinGeckoClient.from_settings()

    def refresh(self, assets: Sequence, *, now: datetime, client: CoinGeckoClient | None = None) -> list[NewPrice]:
        client = client or self.client()
        if client is None:
            return []
        by_id: dict[str, list[int]] = {}
        by_platform: dict[str, dict[str, list[int]]] = {}
        for asset in assets:
            coin = asset.coingecko_id or (asset.chain.native_coingecko_id if asset.kind == "native" else "")
            if coin:
                by_id.setdefault(coin, []).append(asset.id)
            elif asset.address and asset.chain.coingecko_platform:
                by_platform.setdefault(asset.chain.coingecko_platform, {}).setdefault(asset.address.lower(), []).append(asset.id)
        out: list[NewPrice] = []
        if by_id:
            for coin, price in client.simple_price(by_id).items():
                out += [NewPrice(a, price, "USD", self.name, now) for a in by_id.get(coin, ())]
        for platform, addresses in by_platform.items():
            for address, price in client.token_price(platform, addresses).items():
                out += [NewPrice(a, price, "USD", self.name, now) for a in addresses.get(address, ())]
        return out


def _chart(data: Any) -> list[tuple[datetime, Decimal]]:
    """The ``prices`` rows ``[[ms, price], ...]`` of a market chart answer, malformed rows left out."""
    out = []
    for row in _as_dict(data).get("prices") or []:
        if isinstance(row, list) and len(row) == 2 and _decimal(row[1]) is not None:
            out.append((datetime.fromtimestamp(int(Decimal(row[0])) / 1000, tz=dt_timezone.utc), _decimal(row[1])))
    return out


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _as_dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        dec = Decimal(str(value)) if not isinstance(value, Decimal) else value
    except Exception:
        return None
    return dec if dec.is_finite() and dec >= 0 else None


def _retry_after(header: str | None) -> float | None:
    try:
        return max(0.0, float(header)) if header else None
    except ValueError:
        return None
