"""Billing calendars (monthly, bi-monthly, quarterly) in Europe/Warsaw days."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from billing_engine.model import BillingPeriod, PeriodKind
from meterflow.errors import BillingError

WARSAW = ZoneInfo("Europe/Warsaw")
MONTHS: dict[str, int] = {"monthly": 1, "bimonthly": 2, "quarterly": 3}
_LABEL = re.compile(r"^(\d{4})-(\d{2})$")


def boundary_instant(day: date) -> datetime:
    """Midnight at the start of ``day`` in Europe/Warsaw, as a UTC datetime."""
    return datetime.combine(day, time(0), tzinfo=WARSAW).astimezone(UTC)


def warsaw_day(at: datetime) -> date:
    """The Europe/Warsaw calendar day of an aware instant.

    Raises BillingError if ``at`` is naive.
    """
    if at.tzinfo is None:
        raise BillingError(f"timestamp {at} has no time zone; give it in UTC")
    return at.astimezone(WARSAW).date()


def _add_months(year: int, month: int, months: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + months
    return index // 12, index % 12 + 1


def period_containing(day: date, kind: PeriodKind, anchor_month: int = 1) -> BillingPeriod:
    """The billing period of ``kind`` that contains ``day``.

    Periods start on the first of ``anchor_month`` and every 1, 2 or 3 months from it.
    Raises BillingError if the kind or anchor month is unknown.
    """
    if kind not in MONTHS or not 1 <= anchor_month <= 12:
        raise BillingError(f"unknown billing calendar {kind!r} anchored at month {anchor_month}")
    length = MONTHS[kind]
    offset = (day.month - anchor_month) % length
    start_year, start_month = _add_months(day.year, day.month, -offset)
    end_year, end_month = _add_months(start_year, start_month, length)
    start = date(start_year, start_month, 1)
    end = date(end_year, end_month, 1) - timedelta(days=1)
    return BillingPeriod(start, end, kind)


def period_for_label(label: str, kind: PeriodKind, anchor_month: int = 1) -> BillingPeriod:
    """The period of ``kind`` containing the first day of month ``label`` (``YYYY-MM``).

    Raises BillingError if the label is not ``YYYY-MM``.
    """
    match = _LABEL.match(label)
    if match is None or not 1 <= int(match.group(2)) <= 12:
        raise BillingError(f"billing period {label!r} is not a month like 2026-10")
    return period_containing(date(int(match.group(1)), int(match.group(2)), 1), kind, anchor_month)


def next_period(period: BillingPeriod) -> BillingPeriod:
    """The period right after ``period`` in the same calendar."""
    day = period.end + timedelta(days=1)
    end_year, end_month = _add_months(day.year, day.month, period.months)
    return BillingPeriod(day, date(end_year, end_month, 1) - timedelta(days=1), period.kind)


def previous_period(period: BillingPeriod) -> BillingPeriod:
    """The period right before ``period`` in the same calendar."""
    start_year, start_month = _add_months(period.start.year, period.start.month, -period.months)
    start = date(start_year, start_month, 1)
    return BillingPeriod(start, period.start - timedelta(days=1), period.kind)


def periods_between(
    first_day: date, last_day: date, kind: PeriodKind, anchor_month: int = 1
) -> list[BillingPeriod]:
    """Every period of ``kind`` that overlaps ``first_day``..``last_day``, in order."""
    periods: list[BillingPeriod] = []
    period = period_containing(first_day, kind, anchor_month)
    while period.start <= last_day:
        periods.append(period)
        period = next_period(period)
    return periods
