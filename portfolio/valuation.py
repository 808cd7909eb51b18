"""Valuation math on exact Decimals: amounts, values, flow/market attribution, time-weighted return, allocation.

Pure functions, no ORM, no floats. Conventions:

* amounts travel as ``int`` base units until they meet their ``decimals``; ``to_units`` makes a Decimal
  of whole units exactly (``Decimal.scaleb`` never rounds);
* a price is ``None`` when no source has one: the asset is *unpriced*, excluded from value and return
  and reported, never counted as 0;
* between two points of one series (amounts ``a0 -> a1``, prices ``p0 -> p1``) the value change splits
  exactly into ``flow = (a1 - a0) * p1`` and ``market = a0 * (p1 - p0)``;
* divisions (returns, shares) run in a 50-digit context; sums and products of exact inputs are exact.
"""

from __future__ import annotations

from dataclasses import dataclass
import functools
from contextlib import contextmanager
from decimal import Context, Decimal, localcontext
from typing import Hashable, Iterable, Sequence

ZERO = Decimal(0)
ONE = Decimal(1)
_DIV = Context(prec=50)  # divisions only
# Products and sums of uint256 amounts (78 digits) and prices (50 digits) need ~130 digits; the default
# context (28) would round them silently. Code that adds or multiplies money runs inside ``exact()``.
EXACT = Context(prec=300, Emax=999_999, Emin=-999_999)


@contextmanager
def exact():
    """``with exact(): ...``: Decimal arithmetic in the block does not round (up to 300 digits)."""
    with localcontext(EXACT) as ctx:
        yield ctx


# --------------------------------------------------------------------------- amounts


def _in_exact(fn):
    """Run ``fn`` inside ``exact()`` (functools.wraps keeps its name and docstring)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with localcontext(EXACT):
            return fn(*args, **kwargs)

    return wrapper


def to_units(amount_raw: int, decimals: int) -> Decimal:
    """Base units -> whole units, exactly: ``to_units(1_500_000, 6) == Decimal("1.5")``."""
    amount_raw = int(amount_raw)
    digits = tuple(int(c) for c in str(abs(amount_raw)))
    return Decimal((1 if amount_raw < 0 else 0, digits, -int(decimals)))


def exact_text(value: int | Decimal) -> str:
    """An exact number as plain text, every digit kept: no exponent, no trailing zeros, never a float on
    the way (``Decimal("1.500") -> "1.5"``, ``Decimal("1E+2") -> "100"``, ``-0 -> "0"``). The one way
    amounts, prices and values become text: pages (the ``amount`` filter), the CSV and the API."""
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise TypeError(f"exact numbers only (an int or a Decimal), not {type(value).__name__}")
    if isinstance(value, Decimal) and not value.is_finite():
        raise ValueError("not a finite number")
    text = format(value, "f") if isinstance(value, Decimal) else str(value)  # formatting never rounds
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


@_in_exact
def value_of(amount_raw: int, decimals: int, price: Decimal | None) -> Decimal | None:
    """Value of a base-unit amount at a price per whole unit; ``None`` when unpriced."""
    if price is None:
        return None
    return to_units(amount_raw, decimals) * price


@_in_exact
def convert(value: Decimal | None, rate: Decimal | None) -> Decimal | None:
    """USD -> quote currency with ``rate`` units of the currency per 1 USD (FxRate convention)."""
    if value is None or rate is None:
        return None
    return value * rate


# --------------------------------------------------------------------------- attribution


@dataclass(frozen=True)
class Change:
    """The change of one asset's value between two points, split so ``flow + market + opening ==
    value1 - value0``. ``opening`` is the value of an account seen for the first time (a wallet just
    added, a chain just enabled for it): its starting point, neither a flow nor growth."""

    flow: Decimal
    market: Decimal
    opening: Decimal = ZERO

    @property
    def total(self) -> Decimal:
        return self.flow + self.market + self.opening


@_in_exact
def opening_change(a1: Decimal, p1: Decimal | None) -> Change:
    """The first point of an account: its priced value is an opening balance."""
    return Change(ZERO, ZERO, a1 * p1 if p1 is not None else ZERO)


@_in_exact
def split_change(a0: Decimal, p0: Decimal | None, a1: Decimal, p1: Decimal | None) -> Change:
    """Split ``a1*p1 - a0*p0`` into a flow part ``(a1-a0)*p1`` and a market part ``a0*(p1-p0)``.

    ``a0``/``a1`` are whole units. An unpriced side contributes no value: when the asset only becomes
    priced at the later point its whole value ``a1*p1`` counts as flow (no market move can be measured),
    and when it loses its price the earlier value ``a0*p0`` leaves as a (negative) flow. That way
    ``flow + market`` always equals the change of the *priced* value, and returns are never made up.
    """
    if p1 is None and p0 is None:
        return Change(ZERO, ZERO)
    if p0 is None:
        return Change(a1 * p1, ZERO)
    if p1 is None:
        return Change(-(a0 * p0), ZERO)
    return Change((a1 - a0) * p1, a0 * (p1 - p0))


@dataclass(frozen=True)
class Period:
    """One sub-period of a series: value at its end, and the flow/market/opening split of the change into it."""

    value: Decimal
    flow: Decimal = ZERO
    market: Decimal = ZERO
    opening: Decimal = ZERO


@_in_exact
def time_weighted_return(start_value: Decimal, periods: Iterable[Period]) -> Decimal | None:
    """Chain-linked return ``prod(1 + market_i / value_{i-1}) - 1``.

    ``start_value`` is the value before the first period. A sub-period whose previous value is 0
    contributes nothing (no capital at work). ``None`` when no sub-period had capital at work.
    """
    growth, measured, previous = ONE, False, start_value
    for period in periods:
        if previous != 0:
            growth = _DIV.multiply(growth, ONE + _DIV.divide(period.market, previous))
            measured = True
        previous = period.value
    return growth - ONE if measured else None


@dataclass(frozen=True)
class RangeFigures:
    """Headline figures of a series over a range."""

    start_value: Decimal
    end_value: Decimal
    change: Decimal  # end - start - openings: accounts that join are never growth
    pct: Decimal | None  # change / start, None when start is 0
    net_flows: Decimal  # sum of flows inside the range
    market: Decimal  # sum of market parts inside the range
    profit: Decimal  # change - net flows (== market when the series is consistent)
    twr: Decimal | None
    openings: Decimal = ZERO  # opening balances of accounts first seen inside the range


@_in_exact
def range_figures(start_value: Decimal, periods: Sequence[Period]) -> RangeFigures:
    """Change, percent change, net flows, profit and time-weighted return of ``periods`` after a point
    worth ``start_value`` (the periods' flow/market describe the change *into* each period)."""
    end_value = periods[-1].value if periods else start_value
    flows = sum((p.flow for p in periods), ZERO)
    market = sum((p.market for p in periods), ZERO)
    openings = sum((p.opening for p in periods), ZERO)
    change = end_value - start_value - openings
    return RangeFigures(
        start_value=start_value,
        end_value=end_value,
        change=change,
        pct=_DIV.divide(change, start_value) if start_value != 0 else None,
        net_flows=flows,
        market=market,
        profit=change - flows,
        twr=time_weighted_return(start_value, periods),
        openings=openings,
    )


def pct_change(old: Decimal | None, new: Decimal | None) -> Decimal | None:
    """``(new - old) / old``; ``None`` when either is missing or ``old`` is 0."""
    if old is None or new is None or old == 0:
        return None
    return _DIV.divide(new - old, old)


# --------------------------------------------------------------------------- allocation


@dataclass(frozen=True)
class Slice:
    """One slice of an allocation: a key (asset, chain, wallet or kind label), its value and share (0..1)."""

    key: Hashable
    label: str
    value: Decimal
    share: Decimal | None


@_in_exact
def allocation(items: Iterable[tuple[Hashable, str, Decimal | None]]) -> list[Slice]:
    """Group ``(key, label, value)`` by key, sum values, largest first, with each slice's share of the
    priced total. Unpriced (``None``) values are left out: they are reported separately by the caller.
    Negative slices (debt) count towards the total, so shares still add up to 1."""
    sums: dict[Hashable, Decimal] = {}
    labels: dict[Hashable, str] = {}
    for key, label, value in items:
        if value is None:
            continue
        sums[key] = sums.get(key, ZERO) + value
        labels.setdefault(key, label)
    total = sum(sums.values(), ZERO)
    slices = [Slice(k, labels[k], v, _DIV.divide(v, total) if total != 0 else None) for k, v in sums.items()]
    slices.sort(key=lambda s: (-s.value, str(s.label)))
    return slices


def share_of(value: Decimal | None, total: Decimal) -> Decimal | None:
    """``value / total`` (None when unpriced or the total is 0)."""
    if value is None or total == 0:
        return None
    return _DIV.divide(value, total)
