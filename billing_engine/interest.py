"""Statutory interest for delay (odsetki ustawowe za opóźnienie), day by day across rates.

Consumers (art. 481 § 2 of the Civil Code): the NBP reference rate in force on each day plus
5.5 points. Businesses (commercial transactions act, art. 4 pkt 3): the reference rate in
force on 1 January for the first half-year and on 1 July for the second, plus 10 points.
Interest runs from the day after the due date to the payment day inclusive, actual days
over a 365-day year; spans keep exact fractions and the total is rounded half up once.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal
from importlib import resources
from pathlib import Path

from billing_engine.model import InterestResult, InterestSpan, Party, ReferenceRate
from billing_engine.money import grosze_of
from meterflow.errors import BillingError

MARGIN_POINTS: dict[str, Decimal] = {"consumer": Decimal("5.5"), "business": Decimal("10")}
YEAR_DAYS = Decimal(365)


def load_reference_rates(path: Path | None = None) -> tuple[ReferenceRate, ...]:
    """The NBP reference rate table (``effective_from,rate_percent``), oldest first.

    Reads the table shipped with the package unless ``path`` is given.
    Raises BillingError if a row is malformed.
    """
    if path is None:
        text = resources.files("billing_engine").joinpath("data/nbp_reference_rates.csv")
        content = text.read_text(encoding="utf-8")
    else:
        content = path.read_text(encoding="utf-8")
    rates = []
    for number, row in enumerate(csv.DictReader(io.StringIO(content)), start=2):
        try:
            rates.append(
                ReferenceRate(
                    date.fromisoformat(row["effective_from"]), Decimal(row["rate_percent"])
                )
            )
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
            raise BillingError(f"reference rate table, line {number}: {exc}") from None
    return tuple(sorted(rates, key=lambda r: r.effective_from))


def reference_rate_on(day: date, rates: Sequence[ReferenceRate]) -> Decimal:
    """The reference rate in force on ``day``.

    Raises BillingError if the table starts after ``day``.
    """
    in_force = [r for r in rates if r.effective_from <= day]
    if not in_force:
        raise BillingError(f"no NBP reference rate known for {day}; extend the rate table")
    return max(in_force, key=lambda r: r.effective_from).rate_percent


def statutory_rate(day: date, rates: Sequence[ReferenceRate], party: Party) -> Decimal:
    """The annual statutory interest rate (percent) for delay on ``day``."""
    if party == "business":
        fixing_day = date(day.year, 1 if day.month <= 6 else 7, 1)
        return reference_rate_on(fixing_day, rates) + MARGIN_POINTS["business"]
    return reference_rate_on(day, rates) + MARGIN_POINTS["consumer"]


def interest_for(
    amount_grosze: int,
    due_on: date,
    paid_on: date,
    rates: Sequence[ReferenceRate],
    party: Party,
) -> InterestResult:
    """Interest for ``amount_grosze`` paid on ``paid_on`` though due on ``due_on``.

    Raises BillingError if the amount is negative or the rate table misses a day.
    """
    if amount_grosze < 0:
        raise BillingError(f"interest on a negative amount ({amount_grosze} grosze)")
    spans: list[InterestSpan] = []
    day = due_on + timedelta(days=1)
    while day <= paid_on:
        rate = statutory_rate(day, rates, party)
        end = day
        while end < paid_on and statutory_rate(end + timedelta(days=1), rates, party) == rate:
            end += timedelta(days=1)
        days = (end - day).days + 1
        amount = Decimal(amount_grosze) * rate / 100 * days / YEAR_DAYS
        spans.append(InterestSpan(day, end, days, rate, amount))
        day = end + timedelta(days=1)
    total = grosze_of(sum((s.amount_grosze for s in spans), Decimal(0)))
    return InterestResult(amount_grosze, total, tuple(spans))
