"""Consumption analysis of one meter: daily and monthly use, last year, similar households,
average per day, and the leak warning when night flow never stops.

Use is the difference of cumulative register values (exact Decimals), attributed to the
Europe/Warsaw day of the later reading.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from billing_engine.inputs import VOLUME
from billing_engine.periods import boundary_instant
from portal.db import Conn

WARSAW = ZoneInfo("Europe/Warsaw")
NIGHT_START = time(1)
NIGHT_END = time(5)
LEAK_NIGHTS = 3


@dataclass(frozen=True)
class DayUse:
    """Use on one Warsaw day and the register value at its end."""

    day: date
    used_m3: Decimal
    value_m3: Decimal


@dataclass(frozen=True)
class MonthUse:
    """Use in one calendar month and over how many days it was measured."""

    month: date
    used_m3: Decimal
    days: int

    @property
    def per_day_m3(self) -> Decimal:
        """Average use per measured day."""
        return (self.used_m3 / self.days).quantize(Decimal("0.001")) if self.days else Decimal(0)


def daily_use(conn: Conn, meter_id: str, first: date, last: date) -> list[DayUse]:
    """Use per day from ``first`` to ``last`` (days without a reading are left out)."""
    rows = conn.execute(
        _DAILY,
        (
            meter_id,
            boundary_instant(first - timedelta(days=1)),
            boundary_instant(last + timedelta(days=1)),
        ),
    ).fetchall()
    out: list[DayUse] = []
    previous: Decimal | None = None
    for row in rows:
        if previous is not None and row["day"] >= first:
            out.append(DayUse(row["day"], row["value"] - previous, row["value"]))
        previous = row["value"]
    return out


def monthly_use(days: Sequence[DayUse]) -> list[MonthUse]:
    """Sum daily use by calendar month, oldest first."""
    months: dict[date, tuple[Decimal, int]] = {}
    for item in days:
        key = item.day.replace(day=1)
        used, count = months.get(key, (Decimal(0), 0))
        months[key] = (used + item.used_m3, count + 1)
    return [MonthUse(m, used, count) for m, (used, count) in sorted(months.items())]


def average_per_day(days: Sequence[DayUse]) -> Decimal | None:
    """Average use per measured day, or None without data."""
    if not days:
        return None
    return (sum((d.used_m3 for d in days), Decimal(0)) / len(days)).quantize(Decimal("0.001"))


def month_starts(last: date, count: int) -> list[date]:
    """The first days of the ``count`` months ending with the month of ``last``."""
    index = last.year * 12 + last.month - 1
    return [date((index - k) // 12, (index - k) % 12 + 1, 1) for k in range(count - 1, -1, -1)]


def night_flow_never_stops(
    readings: Sequence[tuple[datetime, Decimal]], now: datetime, nights: int = LEAK_NIGHTS
) -> bool | None:
    """True if, on each of the last ``nights`` nights over by ``now``, every interval between
    readings from 01:00 to 05:00 (Warsaw) shows use; None if a night has under two readings."""
    local_now = now.astimezone(WARSAW)
    tonight = local_now.date() if local_now.time() < NIGHT_END else None
    by_night: dict[date, list[tuple[datetime, Decimal]]] = {}
    for at, value in readings:
        local = at.astimezone(WARSAW)
        if local.date() == tonight:
            continue
        if NIGHT_START <= local.time() <= NIGHT_END:
            by_night.setdefault(local.date(), []).append((at, value))
    recent = sorted(by_night)[-nights:]
    if len(recent) < nights:
        return None
    for night in recent:
        points = sorted(by_night[night])
        if len(points) < 2:
            return None
        if any(b[1] - a[1] <= 0 for a, b in zip(points, points[1:], strict=False)):
            return False
    return True


def night_readings(conn: Conn, meter_id: str, now: datetime) -> list[tuple[datetime, Decimal]]:
    """The meter's volume readings of the last LEAK_NIGHTS + 1 days."""
    rows = conn.execute(
        f"SELECT read_at, value FROM readings WHERE meter_id = %s AND {VOLUME}"
        " AND read_at >= %s ORDER BY read_at",
        (meter_id, now - timedelta(days=LEAK_NIGHTS + 1)),
    ).fetchall()
    return [(r["read_at"], r["value"]) for r in rows]


def group_medians(conn: Conn, tariff_id: int, months: Sequence[date]) -> dict[date, Decimal]:
    """Median use per day of the tariff group's households, per month (cached a day)."""
    # A month's median is final once computed after the month ended, else kept for a day.
    cached = conn.execute(
        "SELECT month, m3_per_day FROM group_use_medians WHERE tariff_id = %s"
        " AND month = ANY(%s) AND (computed_at > now() - interval '1 day'"
        "  OR computed_at > month + interval '1 month 1 day')",
        (tariff_id, list(months)),
    ).fetchall()
    found = {r["month"]: r["m3_per_day"] for r in cached}
    missing = [m for m in months if m not in found]
    if missing:
        conn.execute(_MEDIANS, {"tariff": tariff_id, "months": missing})
        found.update(group_medians_cached(conn, tariff_id, missing))
    return found


def group_medians_cached(conn: Conn, tariff_id: int, months: Sequence[date]) -> dict[date, Decimal]:
    """The stored medians of ``months``."""
    rows = conn.execute(
        "SELECT month, m3_per_day FROM group_use_medians WHERE tariff_id = %s AND month = ANY(%s)",
        (tariff_id, list(months)),
    ).fetchall()
    return {r["month"]: r["m3_per_day"] for r in rows}


_DAILY = f"""
SELECT DISTINCT ON ((read_at AT TIME ZONE 'Europe/Warsaw')::date)
       (read_at AT TIME ZONE 'Europe/Warsaw')::date AS day, value
FROM readings WHERE meter_id = %s AND {VOLUME} AND read_at >= %s AND read_at < %s
ORDER BY (read_at AT TIME ZONE 'Europe/Warsaw')::date, read_at DESC
"""

# Per meter and month: the register's rise over the month divided by the days between its
# first and last reading; the median over the group's main meters.
_MEDIANS = """
INSERT INTO group_use_medians (tariff_id, month, m3_per_day, households)
SELECT %(tariff)s, m.month,
       coalesce(round(percentile_disc(0.5) WITHIN GROUP (ORDER BY u.rate), 3), 0),
       count(u.rate)
FROM unnest(%(months)s::date[]) AS m(month)
LEFT JOIN LATERAL (
    SELECT (max(r.value) - min(r.value))
           / (extract(epoch FROM max(r.read_at) - min(r.read_at)) / 86400) AS rate
    FROM contracts c
    JOIN meter_installations mi ON mi.service_point_id = c.service_point_id AND mi.role = 'main'
    JOIN readings r ON r.meter_id = mi.meter_id AND r.quantity = 'volume'
     AND r.function = 'instantaneous' AND r.storage = 0 AND r.tariff = 0 AND r.subunit = 0
     AND r.read_at >= (m.month::timestamp AT TIME ZONE 'Europe/Warsaw')
     AND r.read_at < ((m.month + interval '1 month')::timestamp AT TIME ZONE 'Europe/Warsaw')
    WHERE c.tariff_id = %(tariff)s
    GROUP BY mi.meter_id
    HAVING max(r.read_at) - min(r.read_at) >= interval '1 day'
) u ON true
GROUP BY m.month
ON CONFLICT (tariff_id, month) DO UPDATE
SET m3_per_day = excluded.m3_per_day, households = excluded.households, computed_at = now()
"""
