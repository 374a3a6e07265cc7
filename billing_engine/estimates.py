"""Estimated boundary readings and how the next actual reading corrects them.

An estimate is the latest known register value plus a daily rate times the days since it.
The rate is, in order: the average daily use over the previous ``history_days`` of actual
readings, else the daily use over the same days a year before, else the tariff group's norm.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal

from billing_engine.model import (
    ACTUAL_SOURCES,
    BoundaryReading,
    ConsumptionRules,
    EstimateCorrection,
    MeterReading,
    PeriodConsumption,
)
from billing_engine.money import round_half_up
from meterflow.errors import BillingError

LITRE = Decimal("0.001")
SECONDS_PER_DAY = Decimal(86400)


def days_between(earlier: datetime, later: datetime) -> Decimal:
    """Exact days (fractional) from ``earlier`` to ``later``."""
    return Decimal(int((later - earlier).total_seconds())) / SECONDS_PER_DAY


def _actual(readings: Sequence[MeterReading]) -> list[MeterReading]:
    return sorted((r for r in readings if r.source in ACTUAL_SOURCES), key=lambda r: r.read_at)


def average_daily_use(
    readings: Sequence[MeterReading], start: datetime, end: datetime, min_days: int
) -> Decimal | None:
    """Daily use between the first and last actual readings in ``start``..``end``.

    None if those readings are fewer than ``min_days`` apart or the register went down.
    """
    inside = [r for r in _actual(readings) if start <= r.read_at <= end]
    if len(inside) < 2:
        return None
    first, last = inside[0], inside[-1]
    days = days_between(first.read_at, last.read_at)
    if days < min_days or last.value_m3 < first.value_m3:
        return None
    return (last.value_m3 - first.value_m3) / days


def daily_rate(
    at: datetime,
    base: BoundaryReading,
    readings: Sequence[MeterReading],
    norm_m3_per_day: Decimal,
    rules: ConsumptionRules,
) -> tuple[Decimal, str]:
    """The daily rate for an estimate at ``at`` from ``base``, and where the rate came from.

    "Previous days" end at ``base``, the latest known value the estimate extrapolates from.
    """
    recent = average_daily_use(
        readings, base.at - timedelta(days=rules.history_days), base.at, rules.min_history_days
    )
    if recent is not None:
        return recent, f"average daily use of the previous {rules.history_days} days"
    window = timedelta(days=rules.boundary_window_days)
    year = timedelta(days=365)
    last_year = average_daily_use(
        readings, base.at - year - window, at - year + window, rules.min_history_days
    )
    if last_year is not None:
        return last_year, "daily use of the same period last year"
    return norm_m3_per_day, "the tariff group's norm of daily use"


def estimate_boundary(
    at: datetime,
    readings: Sequence[MeterReading],
    base: BoundaryReading,
    norm_m3_per_day: Decimal,
    rules: ConsumptionRules,
    modulus_m3: Decimal = Decimal("100000"),
) -> BoundaryReading:
    """An estimated register value at ``at``, extrapolated from ``base``, marked as estimate.

    Raises BillingError if ``base`` is later than ``at``.
    """
    if base.at > at:
        raise BillingError(f"cannot estimate at {at} from a later reading at {base.at}")
    rate, why = daily_rate(at, base, readings, norm_m3_per_day, rules)
    value = round_half_up(base.value_m3 + rate * days_between(base.at, at), LITRE) % modulus_m3
    basis = f"estimate: {why} ({rate.quantize(LITRE)} m3/day) from {base.source} {base.at:%Y-%m-%d}"
    return BoundaryReading(base.meter_id, at, value, "estimate", basis)


def correction_for(
    previous_estimate: PeriodConsumption, actual: MeterReading
) -> EstimateCorrection:
    """How ``actual`` corrects a period whose end reading was estimated.

    The corrected end value is interpolated linearly in time between the period's start
    reading and the actual reading; the difference to the billed volume is what a
    correction invoice adds or refunds. When no correction invoice is issued, the next
    period opens from the estimated value and its volume absorbs the same difference.
    Raises BillingError if the period's end was not estimated, the reading is not an
    actual one of the same meter, or it is not after the period's start.
    """
    start, end = previous_estimate.start_reading, previous_estimate.end_reading
    if not end.estimated:
        raise BillingError("the period's end reading is not an estimate; nothing to correct")
    if actual.source not in ACTUAL_SOURCES or actual.meter_id != end.meter_id:
        raise BillingError(f"an actual reading of meter {end.meter_id} is needed to correct")
    if actual.read_at <= start.at:
        raise BillingError("the actual reading is not after the estimated period's start")
    share = min(Decimal(1), days_between(start.at, end.at) / days_between(start.at, actual.read_at))
    corrected_value = round_half_up(
        start.value_m3 + (actual.value_m3 - start.value_m3) * share, LITRE
    )
    corrected_end = BoundaryReading(
        end.meter_id,
        end.at,
        corrected_value,
        actual.source,
        f"interpolated from {actual.source} reading of {actual.read_at:%Y-%m-%d}",
    )
    corrected_volume = previous_estimate.volume_m3 + (corrected_value - end.value_m3)
    return EstimateCorrection(corrected_end, previous_estimate.volume_m3, corrected_volume)
