"""Consumption of a billing period from cumulative register readings.

The boundary reading is the utility's (remote or inspector) reading nearest the boundary
within a window, else the customer's, else an estimate (see ``estimates``). A replaced meter
adds the old meter's run up to its final reading and the new one's from its initial reading.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from billing_engine.estimates import average_daily_use, days_between, estimate_boundary
from billing_engine.model import (
    UTILITY_SOURCES,
    BillingPeriod,
    BoundaryReading,
    ConsumptionRules,
    MeterInstallation,
    MeterReading,
    MeterRole,
    PeriodConsumption,
)
from billing_engine.periods import boundary_instant
from meterflow.errors import BillingError

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class _Segment:
    start: BoundaryReading
    end: BoundaryReading
    volume_m3: Decimal
    note: str
    hold_reason: str | None


def _check_readings(readings: Sequence[MeterReading], now: datetime) -> None:
    for reading in readings:
        if reading.read_at.tzinfo is None:
            raise BillingError(f"reading of meter {reading.meter_id} at {reading.read_at} is naive")
        if reading.read_at > now:
            raise BillingError(
                f"reading of meter {reading.meter_id} at {reading.read_at:%Y-%m-%d %H:%M} UTC "
                "is in the future; fix the meter clock or the entry"
            )


def find_boundary(
    meter_id: str, at: datetime, readings: Sequence[MeterReading], window_days: int
) -> BoundaryReading | None:
    """The reading for ``at``: the utility's nearest within the window, else the customer's."""
    window = timedelta(days=window_days)
    near = [r for r in readings if r.meter_id == meter_id and abs(r.read_at - at) <= window]
    for sources in (UTILITY_SOURCES, frozenset({"customer"})):
        found = [r for r in near if r.source in sources]
        if found:
            best = min(found, key=lambda r: (abs(r.read_at - at), r.read_at))
            basis = f"{best.source} reading of {best.read_at:%Y-%m-%d %H:%M} UTC"
            return BoundaryReading(meter_id, at, best.value_m3, best.source, basis)
    return None


def _latest_known(
    installation: MeterInstallation,
    at: datetime,
    readings: Sequence[MeterReading],
    opening: BoundaryReading | None,
) -> BoundaryReading:
    installed_at = boundary_instant(installation.installed_on)
    known = [
        BoundaryReading(
            installation.meter_id, installed_at, installation.initial_m3, "inspector", "initial"
        )
    ]
    if opening is not None and opening.meter_id == installation.meter_id:
        known.append(opening)
    known.extend(
        BoundaryReading(r.meter_id, r.read_at, r.value_m3, r.source, f"{r.source} reading")
        for r in readings
        if r.meter_id == installation.meter_id
        and r.source != "estimate"
        and installed_at <= r.read_at <= at
    )
    return max(known, key=lambda b: b.at)


def _boundary(
    installation: MeterInstallation,
    at: datetime,
    readings: Sequence[MeterReading],
    opening: BoundaryReading | None,
    norm_m3_per_day: Decimal,
    rules: ConsumptionRules,
) -> BoundaryReading:
    found = find_boundary(installation.meter_id, at, readings, rules.boundary_window_days)
    if found is not None:
        return found
    base = _latest_known(installation, at, readings, opening)
    own = [r for r in readings if r.meter_id == installation.meter_id]
    return estimate_boundary(
        at, own, base, norm_m3_per_day, rules, installation.register_modulus_m3
    )


def _backward_rise(
    meter_id: str, start: datetime, end: datetime, readings: Sequence[MeterReading], window: int
) -> Decimal:
    margin = timedelta(days=window)
    values = [
        r.backward_m3
        for r in readings
        if r.meter_id == meter_id
        and r.backward_m3 is not None
        and start - margin <= r.read_at <= end + margin
    ]
    return max(values) - min(values) if values else Decimal(0)


def register_delta(
    start: BoundaryReading,
    end: BoundaryReading,
    modulus_m3: Decimal,
    backward_rise_m3: Decimal,
) -> tuple[Decimal, BoundaryReading, str, str | None]:
    """Volume between two register values: (volume, end to carry, note, hold reason or None).

    Handles roll-over past ``modulus_m3``, reversed flow proven by the backward register
    (bills zero and carries the start value, so the water is netted against later use), and
    an overestimated start (negative volume: the refund of the estimate).
    """
    delta = end.value_m3 - start.value_m3
    if delta >= 0:
        return delta, end, "", None
    tenth = modulus_m3 / 10
    if start.value_m3 >= modulus_m3 - tenth and end.value_m3 < tenth:
        return delta + modulus_m3, end, "register rolled over", None
    if start.estimated:
        return delta, end, "actual reading below the estimate: estimate refunded", None
    if backward_rise_m3 >= -delta:
        carried = BoundaryReading(
            end.meter_id, end.at, start.value_m3, end.source, f"{end.basis}; reversed flow"
        )
        return Decimal(0), carried, f"reversed flow of {-delta} m3 netted", None
    return Decimal(0), end, "", f"register went back by {-delta} m3 without reversed-flow record"


def _segment(
    installation: MeterInstallation,
    period: BillingPeriod,
    readings: Sequence[MeterReading],
    opening: BoundaryReading | None,
    norm_m3_per_day: Decimal,
    rules: ConsumptionRules,
) -> _Segment:
    meter = installation.meter_id
    period_start, period_end = (
        boundary_instant(period.start),
        boundary_instant(period.end + timedelta(days=1)),
    )
    if installation.installed_on >= period.start:
        start = BoundaryReading(
            meter,
            boundary_instant(installation.installed_on),
            installation.initial_m3,
            "inspector",
            f"initial reading of meter {meter} installed {installation.installed_on}",
        )
    elif opening is not None and opening.meter_id == meter and opening.at == period_start:
        start = opening
    else:
        start = _boundary(installation, period_start, readings, None, norm_m3_per_day, rules)
    removed = installation.removed_on
    if removed is not None and removed < period.end:
        if installation.final_m3 is None:
            raise BillingError(f"meter {meter} was removed on {removed} without a final reading")
        end = BoundaryReading(
            meter,
            boundary_instant(removed + timedelta(days=1)),
            installation.final_m3,
            "inspector",
            f"final reading of meter {meter} removed {removed}",
        )
    else:
        end = _boundary(installation, period_end, readings, start, norm_m3_per_day, rules)
    rise = _backward_rise(meter, start.at, end.at, readings, rules.boundary_window_days)
    volume, end, note, hold = register_delta(start, end, installation.register_modulus_m3, rise)
    return _Segment(start, end, volume, note, hold)


def _installed(
    installations: Sequence[MeterInstallation], period: BillingPeriod, role: MeterRole
) -> list[MeterInstallation]:
    fitted = [
        i
        for i in installations
        if i.role == role
        and i.installed_on <= period.end
        and (i.removed_on is None or i.removed_on >= period.start)
    ]
    return sorted(fitted, key=lambda i: i.installed_on)


def _jump_hold(
    volume: Decimal,
    period: BillingPeriod,
    start: BoundaryReading,
    readings: Sequence[MeterReading],
    norm_m3_per_day: Decimal,
    rules: ConsumptionRules,
) -> str | None:
    history = [r for r in readings if r.meter_id == start.meter_id]
    usual = average_daily_use(
        history, start.at - timedelta(days=rules.history_days), start.at, rules.min_history_days
    )
    usual = norm_m3_per_day if usual is None else usual
    daily = volume / days_between(start.at, boundary_instant(period.end + timedelta(days=1)))
    if daily > rules.jump_floor_m3_per_day and daily > usual * rules.jump_factor:
        return (
            f"implausible jump: {daily:.3f} m3/day against a usual {usual:.3f} m3/day "
            f"(limit {rules.jump_factor}x); held for staff review"
        )
    return None


def consumption_for_period(
    period: BillingPeriod,
    installations: Sequence[MeterInstallation],
    readings: Sequence[MeterReading],
    *,
    norm_m3_per_day: Decimal,
    now: datetime,
    role: MeterRole = "main",
    opening: BoundaryReading | None = None,
    rules: ConsumptionRules | None = None,
) -> PeriodConsumption:
    """The volume of the ``role`` meter(s) over ``period``, each boundary marked by source.

    ``opening`` is the previous period's billed end reading; pass it so consecutive periods
    chain (an estimate is then corrected by the next period's actual reading). A period with
    no readings at all is estimated from the norm rather than refused. A held result
    (implausible jump, unexplained backward register) must go to staff review, not billing.
    Raises BillingError if no meter is installed, a reading is in the future or naive, the
    period has not ended by ``now``, or a removed meter lacks its final reading.
    """
    rules = rules or ConsumptionRules()
    if boundary_instant(period.end + timedelta(days=1)) > now:
        raise BillingError(f"period {period.start}..{period.end} has not ended yet")
    _check_readings(readings, now)
    fitted = _installed(installations, period, role)
    if not fitted:
        raise BillingError(f"no {role} meter installed during {period.start}..{period.end}")
    segments = [_segment(i, period, readings, opening, norm_m3_per_day, rules) for i in fitted]
    volume = sum((s.volume_m3 for s in segments), Decimal(0))
    holds = [s.hold_reason for s in segments if s.hold_reason]
    if not holds and role == "main":
        jump = _jump_hold(volume, period, segments[0].start, readings, norm_m3_per_day, rules)
        holds = [jump] if jump else []
    notes = [s.note for s in segments if s.note]
    if len(segments) > 1:
        notes.append("meter replaced: " + " + ".join(s.start.meter_id for s in segments))
    basis = "; ".join([f"from {segments[0].start.basis}", f"to {segments[-1].end.basis}", *notes])
    return PeriodConsumption(
        period,
        role,
        segments[0].start,
        segments[-1].end,
        volume,
        basis,
        held=bool(holds),
        hold_reason="; ".join(holds) if holds else None,
    )


def daily_use_series(readings: Sequence[MeterReading]) -> pd.DataFrame:
    """Actual readings of one meter as a frame of exact litres and litres per day (int64).

    Columns: ``read_at`` (UTC), ``litres``, ``delta_litres``, ``seconds``, ``litres_per_day``
    (integer division; the first row's deltas are 0). Used for use analysis and reports.
    """
    # Imported here: pandas takes ~0.2 s to import, and a settlement run never needs it.
    import pandas as pd

    rows = sorted((r for r in readings if r.source != "estimate"), key=lambda r: r.read_at)
    frame = pd.DataFrame(
        {
            "read_at": pd.to_datetime([r.read_at for r in rows], utc=True),
            "litres": pd.Series([int(r.value_m3 * 1000) for r in rows], dtype="int64"),
        }
    )
    litres = frame["litres"]
    epoch_s = pd.Series([int(r.read_at.timestamp()) for r in rows], dtype="int64")
    frame["delta_litres"] = litres - litres.shift(1, fill_value=litres.iloc[0] if rows else 0)
    frame["seconds"] = epoch_s - epoch_s.shift(1, fill_value=epoch_s.iloc[0] if rows else 0)
    frame["litres_per_day"] = (frame["delta_litres"] * 86400) // frame["seconds"].clip(lower=1)
    return frame
