"""A meter's reading history and the customer's own readings, judged by billing's rule."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from psycopg.rows import DictRow

from billing_engine.customer_readings import check_customer_reading
from billing_engine.inputs import CUSTOMER_READ_HOUR, VOLUME
from billing_engine.model import ACTUAL_SOURCES, MeterReading, ReadingRefused
from billing_engine.periods import boundary_instant, warsaw_day
from portal.db import Conn

# The rule looks back at most three quarterly periods; a little more is loaded.
HISTORY_DAYS = 400


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


def rule_history(conn: Conn, meter_id: str, now: datetime) -> list[MeterReading]:
    """The meter's actual readings the customer-reading rule needs, as billing's values."""
    since = now - timedelta(days=HISTORY_DAYS)
    remote = conn.execute(
        f"SELECT DISTINCT ON ((read_at AT TIME ZONE 'Europe/Warsaw')::date) read_at, value"
        f" FROM readings WHERE meter_id = %s AND {VOLUME} AND read_at >= %s"
        " ORDER BY (read_at AT TIME ZONE 'Europe/Warsaw')::date, read_at DESC",
        (meter_id, since),
    ).fetchall()
    own = conn.execute(
        "SELECT read_on, value_m3, source FROM customer_readings WHERE meter_id = %s"
        " AND read_on >= %s",
        (meter_id, warsaw_day(since)),
    ).fetchall()
    found = [MeterReading(meter_id, r["read_at"], r["value"], "remote") for r in remote]
    found += [
        MeterReading(
            meter_id,
            boundary_instant(r["read_on"]) + CUSTOMER_READ_HOUR,
            r["value_m3"],
            r["source"],
        )
        for r in own
    ]
    return found


def reading_instant(read_on: date, now: datetime) -> datetime:
    """When a reading entered for ``read_on`` counts as taken: noon, or now if that is earlier."""
    return min(boundary_instant(read_on) + CUSTOMER_READ_HOUR, now)


def last_actual(history_: list[MeterReading], before: datetime) -> MeterReading | None:
    """The newest actual reading at or before ``before`` (for the refusal message)."""
    earlier = [r for r in history_ if r.source in ACTUAL_SOURCES and r.read_at <= before]
    return max(earlier, key=lambda r: r.read_at) if earlier else None


def submit(conn: Conn, meter: DictRow, read_on: date, value_m3: Decimal, now: datetime) -> int:
    """Store the customer's reading if billing's rule accepts it; return its id.

    Raises ReadingRefused if the rule refuses it or the day already has the customer's
    reading (code ``same_day``).
    """
    taken = conn.execute(
        "SELECT 1 FROM customer_readings WHERE meter_id = %s AND read_on = %s"
        " AND source = 'customer'",
        (meter["meter_id"], read_on),
    ).fetchone()
    if taken:
        raise ReadingRefused("same_day", "the meter already has your reading of that day")
    reading = MeterReading(meter["meter_id"], reading_instant(read_on, now), value_m3, "customer")
    past = rule_history(conn, meter["meter_id"], now)
    check_customer_reading(reading, past, meter["billing_period"], now)
    row = conn.execute(
        "INSERT INTO customer_readings (contract_id, meter_id, read_on, value_m3, source)"
        " VALUES (%s, %s, %s, %s, 'customer') RETURNING reading_id",
        (meter["contract_id"], meter["meter_id"], read_on, value_m3),
    ).fetchone()
    assert row is not None
    return int(row["reading_id"])


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
