"""Small builders for the billing rules tests (no database)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from billing_engine.model import BillingPeriod, MeterInstallation, MeterReading, ReadingSource
from billing_engine.periods import boundary_instant

NOW = datetime(2027, 6, 1, tzinfo=UTC)
OCTOBER = BillingPeriod(date(2026, 10, 1), date(2026, 10, 31))
NOVEMBER = BillingPeriod(date(2026, 11, 1), date(2026, 11, 30))


def reading(
    at: datetime | date,
    value: str,
    source: ReadingSource = "remote",
    meter: str = "M1",
    backward: str | None = None,
) -> MeterReading:
    """A reading at an instant, or at the Warsaw midnight starting ``at`` if given a date."""
    when = at if isinstance(at, datetime) else boundary_instant(at)
    return MeterReading(
        meter, when, Decimal(value), source, None if backward is None else Decimal(backward)
    )


def meter(
    meter_id: str = "M1",
    installed: date = date(2020, 1, 1),
    removed: date | None = None,
    initial: str = "0",
    final: str | None = None,
    role: str = "main",
) -> MeterInstallation:
    """A meter installation."""
    return MeterInstallation(
        meter_id,
        installed,
        removed,
        Decimal(initial),
        None if final is None else Decimal(final),
        role,  # type: ignore[arg-type]
    )
