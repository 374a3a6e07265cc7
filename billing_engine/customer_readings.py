"""Rules for meter readings entered by customers (iBOK): when they are refused and why."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from billing_engine.model import (
    ACTUAL_SOURCES,
    UTILITY_SOURCES,
    BillingPeriod,
    MeterReading,
    PeriodKind,
    ReadingRefused,
)
from billing_engine.periods import period_containing, previous_period, warsaw_day

MAX_CUSTOMER_PERIODS = 2


def _in(period: BillingPeriod, reading: MeterReading) -> bool:
    return period.start <= warsaw_day(reading.read_at) <= period.end


def _customer_only(period: BillingPeriod, history: Sequence[MeterReading]) -> bool:
    sources = {r.source for r in history if _in(period, r)}
    return "customer" in sources and not sources & UTILITY_SOURCES


def check_customer_reading(
    reading: MeterReading,
    history: Sequence[MeterReading],
    kind: PeriodKind,
    now: datetime,
    anchor_month: int = 1,
) -> None:
    """Accept a customer's reading silently, or refuse it with a reason a customer can read.

    ``history`` holds the meter's earlier readings. A customer may read the meter for at
    most two consecutive billing periods; the third needs a remote or inspector reading.
    Raises ReadingRefused (code ``not_customer``, ``naive_time``, ``future``,
    ``below_last_actual`` or ``third_period``) if a rule is broken.
    """
    if reading.source != "customer":
        raise ReadingRefused("not_customer", "only readings entered by the customer are checked")
    if reading.read_at.tzinfo is None:
        raise ReadingRefused("naive_time", "the reading time has no time zone")
    if reading.read_at > now:
        raise ReadingRefused("future", "the reading is dated in the future; give today's date")
    own = [r for r in history if r.meter_id == reading.meter_id]
    earlier = [r for r in own if r.source in ACTUAL_SOURCES and r.read_at <= reading.read_at]
    if earlier:
        last = max(earlier, key=lambda r: r.read_at)
        if reading.value_m3 < last.value_m3:
            raise ReadingRefused(
                "below_last_actual",
                f"the reading {reading.value_m3} m3 is below the last actual reading "
                f"{last.value_m3} m3 of {warsaw_day(last.read_at)}; check the black digits",
            )
    _check_consecutive_periods(reading, own, kind, anchor_month)


def _check_consecutive_periods(
    reading: MeterReading, own: Sequence[MeterReading], kind: PeriodKind, anchor_month: int
) -> None:
    period = period_containing(warsaw_day(reading.read_at), kind, anchor_month)
    if any(r.source in UTILITY_SOURCES and _in(period, r) for r in own):
        return
    earlier = previous_period(period)
    for _ in range(MAX_CUSTOMER_PERIODS):
        if not _customer_only(earlier, own):
            return
        earlier = previous_period(earlier)
    raise ReadingRefused(
        "third_period",
        f"the meter was read by the customer in the {MAX_CUSTOMER_PERIODS} periods before; "
        "this period needs a remote or inspector reading, which the utility will arrange",
    )
