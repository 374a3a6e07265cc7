"""A meter's reading history and the customer's own readings, judged by billing's rule."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from billing_engine.inputs import CUSTOMER_READ_HOUR, VOLUME
from billing_engine.model import ACTUAL_SOURCES, MeterReading
from billing_engine.periods import boundary_instant
from billing_engine.reading_entry import AcceptedReading, rule_history, submit_customer_reading
from portal.db import Conn, tuple_rows


@dataclass(frozen=True)
class HistoryRow:
    """One line of a meter's reading history."""

    day: date
    value_m3: Decimal
    source: str
    used_m3: Decimal | None


def history(conn: Conn, meter_id: str, days: int = 400, limit: int = 120) -> list[HistoryRow]:
    """The meter's newest ``limit`` readings of the last ``days`` (one remote reading per day,
    own, inspector, estimates), newest first, each with the use since the line before it."""
    since = datetime.now(UTC) - timedelta(days=days)
    rows = conn.execute(_HISTORY, {"meter": meter_id, "since": since, "limit": limit + 1})
    out: list[HistoryRow] = []
    previous: Decimal | None = None
    for row in reversed(rows.fetchall()):
        used = row["value"] - previous if previous is not None else None
        out.append(HistoryRow(row["day"], row["value"], row["source"], used))
        previous = row["value"]
    out.reverse()
    return out[:limit]


def reading_instant(read_on: date, now: datetime) -> datetime:
    """When a reading entered for ``read_on`` counts as taken: noon, or now if that is earlier."""
    return min(boundary_instant(read_on) + CUSTOMER_READ_HOUR, now)


def submit(
    conn: Conn, customer_id: int, meter_id: str, read_on: date, value_m3: Decimal, now: datetime
) -> AcceptedReading:
    """Store the customer's reading through billing's one rule; return it as stored.

    Raises ReadingRefused (billing's codes, e.g. ``below_last_actual``, ``same_day``) if the
    rule refuses it; nothing is written then.
    """
    instant = reading_instant(read_on, now)
    with tuple_rows(conn) as billing:
        return submit_customer_reading(billing, customer_id, meter_id, value_m3, instant, now)


def last_actual(conn: Conn, meter_id: str, now: datetime) -> MeterReading | None:
    """The meter's newest actual reading at or before ``now`` (for the refusal message)."""
    with tuple_rows(conn) as billing:
        past = rule_history(billing, meter_id, now)
    earlier = [r for r in past if r.source in ACTUAL_SOURCES and r.read_at <= now]
    return max(earlier, key=lambda r: r.read_at) if earlier else None


_HISTORY = f"""
SELECT day, value, source FROM (
    SELECT DISTINCT ON ((read_at AT TIME ZONE 'Europe/Warsaw')::date)
           (read_at AT TIME ZONE 'Europe/Warsaw')::date AS day, value, 'remote' AS source
    FROM readings WHERE meter_id = %(meter)s AND {VOLUME} AND read_at >= %(since)s
    ORDER BY (read_at AT TIME ZONE 'Europe/Warsaw')::date, read_at DESC
) remote
UNION ALL
SELECT read_on, value_m3, source FROM customer_readings
WHERE meter_id = %(meter)s AND read_on >= (%(since)s AT TIME ZONE 'Europe/Warsaw')::date
UNION ALL
SELECT b.on_date, b.value_m3, 'estimate' FROM billed_readings b
WHERE b.meter_id = %(meter)s AND b.source = 'estimate'
  AND b.on_date >= (%(since)s AT TIME ZONE 'Europe/Warsaw')::date
ORDER BY 1 DESC, 3 DESC LIMIT %(limit)s
"""
