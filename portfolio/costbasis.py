"""Cost basis by the average-cost method on exact Decimals, and the unrealised profit it gives. Pure: no ORM.

An acquisition (an inflow that is not an internal transfer) adds its units and their cost at the price of
its day; a disposal (an outflow, a network fee) removes units and the same fraction of the held cost, so
the average cost per unit is unchanged by it. Internal transfers never reach this module (the caller
leaves out both legs when the scope holds both). What cannot be known (an acquisition without a price
that day, more units leaving than ever came in, a history that does not add up to the balance) makes
the result *incomplete*, with the reasons, instead of a figure that would be wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Iterable

from portfolio.valuation import ZERO, _DIV, _in_exact

INCOMPLETE = "cost basis incomplete"


@dataclass(frozen=True)
class Movement:
    """One change of the held amount: ``units`` (positive, whole units) acquired or disposed of at ``at``;
    ``price`` per unit in the quote currency on that day (acquisitions only; None: no price that day).
    ``unknown`` says why an acquisition's cost cannot be known at all (it is then not "unpriced")."""

    at: datetime
    units: Decimal
    acquired: bool
    price: Decimal | None = None
    unknown: str = ""


@dataclass(frozen=True)
class Ledger:
    """The pool after every movement: ``units`` held and their ``cost``; ``unpriced`` the times of the
    acquisitions without a price; ``oversold`` when more left than had come in (the history starts
    after the asset was first held); ``unknown`` the reasons of acquisitions whose cost cannot be known."""

    units: Decimal
    cost: Decimal
    unpriced: tuple[datetime, ...] = ()
    oversold: bool = False
    unknown: tuple[str, ...] = ()


@_in_exact
def average_cost(movements: Iterable[Movement]) -> Ledger:
    """Run the pool over ``movements`` in time order (acquisitions before disposals at the same time, so
    a transaction that receives and sends at once never looks oversold)."""
    units, cost, unpriced, unknown, oversold = ZERO, ZERO, [], [], False
    for m in sorted(movements, key=lambda m: (m.at, not m.acquired)):
        if m.acquired:
            units += m.units
            if m.unknown:
                unknown.append(m.unknown)
            elif m.price is None:
                unpriced.append(m.at)
            else:
                cost += m.units * m.price
        elif m.units > units:
            oversold, units, cost = True, ZERO, ZERO
        elif units:
            cost -= _DIV.divide(cost * m.units, units) if m.units != units else cost
            units -= m.units
    return Ledger(units, cost, tuple(unpriced), oversold, tuple(dict.fromkeys(unknown)))


@dataclass(frozen=True)
class CostBasis:
    """An asset's cost basis in a scope, money in the quote currency: ``average_cost`` per unit, ``cost``
    of the amount held, ``unrealised`` profit (value now - cost; None without a current price) and
    ``unrealised_pct`` (a fraction; None when the cost is 0). ``reasons`` is empty when complete; when
    not, every figure is None and ``incomplete`` says why."""

    average_cost: Decimal | None
    cost: Decimal | None
    unrealised: Decimal | None
    unrealised_pct: Decimal | None
    reasons: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        return not self.reasons

    @property
    def incomplete(self) -> str:
        return f"{INCOMPLETE}: {'; '.join(self.reasons)}" if self.reasons else ""


def _day(at: datetime) -> str:
    return at.strftime("%Y-%m-%d")


@_in_exact
def cost_basis(ledger: Ledger, held: Decimal, price_now: Decimal | None, problems: Iterable[str] = ()) -> CostBasis:
    """The cost basis of ``held`` units (the scope's balance now) from ``ledger``, with the unrealised
    profit at ``price_now`` (per unit, quote currency; None: unpriced now). ``problems`` are what the
    caller already knows is missing (a history not read yet, ...)."""
    reasons = list(dict.fromkeys([*problems, *ledger.unknown]))
    if ledger.unpriced:
        n = len(ledger.unpriced)
        reasons.append(f"no price on the day of {n} inflow{'s' if n > 1 else ''} (first {_day(min(ledger.unpriced))})")
    if ledger.oversold:
        reasons.append("more left than the history brought in")
    elif ledger.units != held:
        reasons.append(f"the history adds up to {format(ledger.units.normalize(), 'f')}, not the balance of "
                       f"{format(held.normalize(), 'f')}")
    if reasons:
        return CostBasis(None, None, None, None, tuple(reasons))
    average = _DIV.divide(ledger.cost, ledger.units) if ledger.units else None
    unrealised = held * price_now - ledger.cost if price_now is not None else None
    pct = _DIV.divide(unrealised, ledger.cost) if unrealised is not None and ledger.cost else None
    return CostBasis(average, ledger.cost, unrealised, pct)
