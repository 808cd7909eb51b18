"""Template filters for numbers a user reads: token amounts, money, percentages, ages. Decimal only, never float.

    {% load money %}
    {{ row.amount|amount }}             1,234.5678          (trimmed, up to the asset's decimals)
    {{ row.amount|amount:8 }}           at most 8 places, rounded down (never shows more than is held)
    {{ row.amount|amount:"exact" }}     1234.56789012345678 (every digit, no grouping: titles, copy-paste)
    {{ row.value|money:"EUR" }}         €1,234.57  ·  "< €0.01" for tiny non-zero values
    {{ row.change_24h|pct }}            +1.23%  (signed)  ·  {{ share|pct:"unsigned" }}
    {{ ts|ago }}                        "3 min ago" ("just now" under a minute)
    {{ value|signclass }}               "pos" | "neg" | ""  (CSS class)
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal, InvalidOperation

from django import template
from django.utils import timezone

from portfolio.valuation import exact, exact_text

register = template.Library()

CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "CHF": "CHF "}
ZERO_PLACES = {"JPY"}  # currencies shown without minor units


def _to_decimal(value) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        # Floats are refused upstream; str() keeps what the float shows rather than its binary expansion.
        return Decimal(str(value))
    try:
        return Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None


def _group(d: Decimal, places: int | None = None) -> str:
    """Thousands separators, fixed-point (no exponent), trailing zeros trimmed when places is None."""
    text = format(d, "f")
    sign = ""
    if text.startswith("-"):
        sign, text = "-", text[1:]
    whole, _, frac = text.partition(".")
    if places is None:
        frac = frac.rstrip("0")
    whole = f"{int(whole):,}"
    return sign + whole + (("." + frac) if frac else "")


@register.filter
def amount(value, places=None) -> str:
    """A token amount in whole units, from ``valuation.to_units``. ``{{ x|amount }}``: exact, grouped;
    ``{{ x|amount:8 }}``: at most 8 decimals, rounded down (never shows more than is held);
    ``{{ x|amount:"exact" }}``: every digit, no grouping (hover titles, copy-paste), as in the CSV and API."""
    d = _to_decimal(value)
    if places == "exact":
        return "" if d is None else exact_text(d)
    if d is None:
        return "—"
    if places not in (None, ""):
        places = int(places)
        if -d.as_tuple().exponent > places:
            with exact():  # a uint256 amount has 78 digits: the default 28-digit context would fail
                q = d.quantize(Decimal(1).scaleb(-places), rounding=ROUND_DOWN)
            if q == 0 and d != 0:
                return ("< " if d > 0 else "> -") + "0." + "0" * (places - 1) + "1"
            d = q
    return _group(d)


def _money_text(d: Decimal, currency: str, signed: bool = False) -> str:
    currency = (currency or "USD").upper()
    symbol = CURRENCY_SYMBOLS.get(currency)
    places = 0 if currency in ZERO_PLACES else 2
    unit = Decimal(1).scaleb(-places)
    with exact():  # values beyond 28 digits (a uint256 amount times a price) must not fail here
        q = d.quantize(unit, rounding=ROUND_HALF_EVEN)
    prefix_sign = ""
    if d < 0:
        prefix_sign = "-"
    elif signed and d > 0:
        prefix_sign = "+"

    def fmt(x: Decimal) -> str:
        body = _group(abs(x), places)
        if places and "." not in body:
            body += "." + "0" * places
        elif places:
            whole, frac = body.split(".")
            body = whole + "." + frac.ljust(places, "0")
        return f"{symbol}{body}" if symbol else f"{body} {currency}"

    if q == 0 and d != 0:
        return ("< " if d > 0 else "> -") + fmt(unit)
    return prefix_sign + fmt(q)


@register.filter
def money(value, currency="USD") -> str:
    """A value in the quote currency: 2 decimals (0 for JPY), grouped; ``< $0.01`` for tiny non-zero values."""
    d = _to_decimal(value)
    if d is None:
        return "—"
    return _money_text(d, currency)


@register.filter
def money_signed(value, currency="USD") -> str:
    """Like ``money`` with an explicit + for gains."""
    d = _to_decimal(value)
    if d is None:
        return "—"
    return _money_text(d, currency, signed=True)


@register.filter
def price(value, currency="USD") -> str:
    """A unit price: 2 decimals at or above 1, up to 4 significant digits below 1 (0.0001234)."""
    d = _to_decimal(value)
    if d is None:
        return "—"
    if d == 0 or abs(d) >= 1:
        return _money_text(d, currency)
    currency = (currency or "USD").upper()
    symbol = CURRENCY_SYMBOLS.get(currency)
    exp = d.adjusted()  # e.g. -4 for 0.0001234
    places = min(max(2, -exp + 3), 18)
    with exact():
        q = d.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
    body = format(q, "f").rstrip("0")
    if body.endswith("."):
        body += "00"
    whole, _, frac = body.partition(".")
    body = whole + "." + frac.ljust(2, "0")
    return f"{symbol}{body}" if symbol else f"{body} {currency}"


@register.filter
def pct(value, mode="signed") -> str:
    """A ratio as a percentage: ``Decimal("0.0123")|pct`` -> ``+1.23%``. ``mode="unsigned"`` for shares.

    Values are ratios (0.5 = 50%), as the query layer returns them.
    """
    d = _to_decimal(value)
    if d is None:
        return "—"
    with exact():
        p = (d * 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)
    if p == 0 and d != 0 and mode == "unsigned":
        return "< 0.01%"
    text = _group(abs(p), 2)
    if "." not in text:
        text += ".00"
    if mode == "unsigned":
        return f"{'-' if p < 0 else ''}{text}%"
    sign = "+" if p > 0 else ("-" if p < 0 else "")
    return f"{sign}{text}%"


@register.filter
def pct_width(value) -> str:
    """A ratio as a CSS width percentage clamped to 0..100, for share bars."""
    d = _to_decimal(value)
    if d is None or d <= 0:
        return "0"
    p = min(d * 100, Decimal(100))
    return format(p.quantize(Decimal("0.1"), rounding=ROUND_DOWN), "f")


@register.filter
def signclass(value) -> str:
    """``pos``/``neg``/empty: the CSS class for a signed figure."""
    d = _to_decimal(value)
    if d is None or d == 0:
        return ""
    return "pos" if d > 0 else "neg"


@register.filter
def ago(value, now=None) -> str:
    """A past moment as a short age: ``just now`` (under a minute), ``5 min ago``, ``3 h ago``, ``2 d ago``."""
    if not isinstance(value, datetime):
        return "never"
    now = now if isinstance(now, datetime) else timezone.now()
    seconds = int((now - value).total_seconds())
    if seconds < 0:
        seconds = 0
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} d ago"


@register.filter
def stale(value, minutes=60) -> bool:
    """True when a moment is older than ``minutes`` (or missing): data needing a refresh."""
    if not isinstance(value, datetime):
        return True
    return timezone.now() - value > timedelta(minutes=int(minutes))


@register.filter
def intcomma_exact(value) -> str:
    """An integer (block height) with thousands separators."""
    d = _to_decimal(value)
    if d is None:
        return "—"
    return _group(d.to_integral_value())


@register.filter
def short_address(value, keep=6) -> str:
    """``0x1234ab…89cdef`` for long addresses/keys; the full text stays in a title attribute."""
    text = str(value or "")
    keep = int(keep)
    if len(text) <= 2 * keep + 3:
        return text
    return f"{text[:keep + 2]}…{text[-keep:]}"


@register.filter
def source_label(value) -> str:
    """A short label for a stored price source: ``oracle:chainlink:0x5FbD…0aa3`` -> ``chainlink 0x5FbD…0aa3``;
    ``manual`` and ``coingecko`` as they are (the full source stays in a title attribute)."""
    parts = [p for p in str(value or "").split(":") if p and p != "oracle"]
    return " ".join(short_address(p, 4) if p.startswith("0x") or len(p) > 20 else p for p in parts)


@register.filter
def source_name(value) -> str:
    """The kind of a stored price source: ``oracle:chainlink:0x5FbD…`` -> ``oracle``; ``coingecko``, ``manual``."""
    return str(value or "").split(":", 1)[0]


@register.filter
def initials(value) -> str:
    """Up to 3 characters for an icon placeholder (escaped by autoescape like any other string)."""
    text = "".join(ch for ch in str(value or "?") if ch.isalnum())
    return (text[:3] or "?").upper()


@register.filter
def safe_image_url(value) -> str:
    """Only http(s) URLs and raster data: URLs pass; anything else (javascript:, SVG data:, ...) becomes empty.

    The result is still autoescaped in the attribute; this just decides whether to render an <img> at all.
    """
    text = str(value or "").strip()
    lower = text.lower()
    if lower.startswith(("https://", "http://")):
        if any(ch in text for ch in ('"', "'", "<", ">", " ", "\n", "\r", "\t", "\\")):
            return ""
        return text
    if lower.startswith("data:image/"):
        mime = lower[len("data:"):].split(";", 1)[0].split(",", 1)[0]
        if mime in ("image/png", "image/jpeg", "image/jpg", "image/gif", "image/webp", "image/avif") and ";base64," in lower:
            return text
    return ""


@register.simple_tag(takes_context=True)
def query_update(context, **changes) -> str:
    """The current GET query string with some parameters changed (``None``/"" removes one): for sort links."""
    request = context["request"]
    params = request.GET.copy()
    for key, value in changes.items():
        if value is None or value == "":
            params.pop(key, None)
        else:
            params[key] = value
    encoded = params.urlencode()
    return f"?{encoded}" if encoded else "?"
