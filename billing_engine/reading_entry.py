"""Readings entered by hand into the store: the customer's (iBOK) and the inspector's.

A customer's reading goes through ``customer_readings.check_customer_reading`` first and is
stored only if accepted; an inspector's reading is the utility's own and is refused only
when it cannot be true (in the future, negative, no meter fitted). Both land in the
``customer_readings`` table with their source, dated by their Europe/Warsaw day; a
settlement takes them as boundary readings (the inspector's like a remote one, the
customer's when no utility reading is near the boundary).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from billing_engine.customer_readings import check_customer_reading
from billing_engine.db import Conn, store_errors
from billing_engine.inputs import CUSTOMER_READ_HOUR, VOLUME
from billing_engine.model import MeterReading, PeriodKind, ReadingRefused
from billing_engine.periods import boundary_instant, warsaw_day
from meterflow.errors import BillingError

# Enough history for the rule: the current period and the two before it, quarterly at most.
HISTORY_DAYS = 3 * 92 + 92


@dataclass(frozen=True)
class AcceptedReading:
    """A hand-entered reading as stored."""

    reading_id: int
    contract_id: int
    meter_id: str
    read_on: date
    value_m3: Decimal
    source: str


def submit_customer_reading(
    conn: Conn,
    customer_id: int,
    meter_id: str,
    value_m3: Decimal,
    read_at: datetime,
    now: datetime,
) -> AcceptedReading:
    """Check and store a customer's reading of ``meter_id``; return the stored row.

    Raises ReadingRefused (``not_customer``, ``naive_time``, ``future``, ``negative``,
    ``below_last_actual``, ``third_period``, ``same_day``) with a reason the customer can
    read if the reading is refused; nothing is written then.
    """
    _check_value(value_m3, read_at, now)
    day = warsaw_day(read_at)
    found = _contract_of(conn, meter_id, day, customer_id)
    if found is None:
        raise ReadingRefused(
            "not_customer", f"meter {meter_id} is not fitted at premises under your contract"
        )
    contract_id, kind = found
    if _stored(conn, meter_id, day, "customer"):
        raise ReadingRefused("same_day", "the meter already has your reading of that day")
    reading = MeterReading(meter_id, read_at, value_m3, "customer")
    check_customer_reading(reading, rule_history(conn, meter_id, read_at), kind, now)
    return _insert(conn, contract_id, meter_id, day, value_m3, "customer")


def submit_inspector_reading(
    conn: Conn, meter_id: str, value_m3: Decimal, read_at: datetime, now: datetime
) -> AcceptedReading:
    """Store an inspector's reading of ``meter_id`` (a second entry of the day replaces it).

    Raises ReadingRefused (``naive_time``, ``future``, ``negative``, ``not_fitted``) if the
    reading cannot be stored.
    """
    _check_value(value_m3, read_at, now)
    day = warsaw_day(read_at)
    found = _contract_of(conn, meter_id, day, None)
    if found is None:
        raise ReadingRefused(
            "not_fitted", f"meter {meter_id} is not fitted under any contract on {day}"
        )
    return _insert(conn, found[0], meter_id, day, value_m3, "inspector")


def _check_value(value_m3: Decimal, read_at: datetime, now: datetime) -> None:
    if read_at.tzinfo is None:
        raise ReadingRefused("naive_time", "the reading time has no time zone")
    if read_at > now:
        raise ReadingRefused("future", "the reading is dated in the future; give today's date")
    if not value_m3.is_finite() or value_m3 < 0:
        raise ReadingRefused("negative", f"a meter reading of {value_m3} m3 is not possible")


def _contract_of(
    conn: Conn, meter_id: str, day: date, customer_id: int | None
) -> tuple[int, PeriodKind] | None:
    row = conn.execute(
        "SELECT c.contract_id, c.billing_period FROM contracts c"
        " JOIN meter_installations m USING (service_point_id)"
        " WHERE m.meter_id = %(meter)s AND (%(customer)s::bigint IS NULL"
        "   OR c.customer_id = %(customer)s)"
        "   AND c.valid_from <= %(day)s AND (c.valid_to IS NULL OR c.valid_to >= %(day)s)"
        "   AND m.installed_on <= %(day)s AND (m.removed_on IS NULL OR m.removed_on >= %(day)s)"
        " ORDER BY c.valid_from DESC LIMIT 1",
        {"meter": meter_id, "customer": customer_id, "day": day},
    ).fetchone()
    return None if row is None else (int(row[0]), row[1])


def _stored(conn: Conn, meter_id: str, day: date, source: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM customer_readings WHERE meter_id = %s AND read_on = %s AND source = %s",
        (meter_id, day, source),
    ).fetchone()
    return row is not None


def rule_history(conn: Conn, meter_id: str, until: datetime) -> list[MeterReading]:
    """The meter's remote (last of each day) and hand-entered readings the rule needs."""
    since = until - timedelta(days=HISTORY_DAYS)
    remote = conn.execute(
        "SELECT DISTINCT ON ((read_at AT TIME ZONE 'Europe/Warsaw')::date) read_at, value"
        f" FROM readings WHERE meter_id = %s AND {VOLUME} AND read_at >= %s AND read_at <= %s"
        " ORDER BY (read_at AT TIME ZONE 'Europe/Warsaw')::date, read_at DESC",
        (meter_id, since, until),
    ).fetchall()
    entered = conn.execute(
        "SELECT read_on, value_m3, source FROM customer_readings"
        " WHERE meter_id = %s AND read_on >= %s",
        (meter_id, warsaw_day(since)),
    ).fetchall()
    found = [MeterReading(meter_id, r[0], r[1], "remote") for r in remote]
    found += [
        MeterReading(meter_id, boundary_instant(r[0]) + CUSTOMER_READ_HOUR, r[1], r[2])
        for r in entered
    ]
    return found


def _insert(
    conn: Conn, contract_id: int, meter_id: str, day: date, value_m3: Decimal, source: str
) -> AcceptedReading:
    with store_errors(f"reading of meter {meter_id}"):
        row = conn.execute(
            "INSERT INTO customer_readings (contract_id, meter_id, read_on, value_m3, source)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (meter_id, read_on, source)"
            " DO UPDATE SET value_m3 = excluded.value_m3, submitted_at = now(),"
            "   contract_id = excluded.contract_id"
            " RETURNING reading_id",
            (contract_id, meter_id, day, value_m3, source),
        ).fetchone()
    if row is None:
        raise BillingError(f"the reading of meter {meter_id} on {day} was not stored")
    return AcceptedReading(int(row[0]), contract_id, meter_id, day, value_m3, source)
