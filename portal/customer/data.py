"""What the customer pages read from the store, always filtered on one customer id."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from psycopg.rows import DictRow

from billing_engine.inputs import VOLUME
from billing_engine.ledger import balance, overdue_debt, replay
from billing_engine.model import LedgerEntry
from portal.db import Conn

# The customer's meters: every installation at a premises of one of their contracts while
# the contract ran.
METERS = """
SELECT DISTINCT ON (mi.installation_id) mi.meter_id, mi.role, mi.installed_on, mi.removed_on,
       mi.initial_m3, sp.address, sp.city, c.contract_id, c.contract_no, c.billing_period,
       c.tariff_id
FROM contracts c
JOIN service_points sp USING (service_point_id)
JOIN meter_installations mi ON mi.service_point_id = c.service_point_id
 AND mi.installed_on <= coalesce(c.valid_to, 'infinity'::date)
 AND coalesce(mi.removed_on, 'infinity'::date) >= c.valid_from
WHERE c.customer_id = %(customer_id)s
"""

# A remote reading is looked for in the last weeks first, so only those months' partitions
# are probed (the DEFAULT partition stops the planner from reading them newest first).
RECENT = timedelta(days=35)
_LAST_REMOTE = f"""
SELECT read_at AS at, NULL::date AS day, value, 'remote' AS source FROM readings
WHERE meter_id = %(meter)s AND {VOLUME} AND read_at >= %(since)s ORDER BY read_at DESC LIMIT 1
"""
# One round trip for the three kinds of last reading (each its own index probe).
_LAST_READINGS = f"""
({_LAST_REMOTE})
UNION ALL
(SELECT NULL, read_on, value_m3, source FROM customer_readings WHERE meter_id = %(meter)s
 ORDER BY read_on DESC LIMIT 1)
UNION ALL
(SELECT NULL, on_date, value_m3, 'estimate' FROM billed_readings
 WHERE meter_id = %(meter)s AND source = 'estimate' ORDER BY on_date DESC LIMIT 1)
"""


@dataclass(frozen=True)
class Account:
    """A customer's money at a glance: balance, overdue debt, the next due date."""

    balance_gr: int
    overdue_gr: int
    next_due: date | None
    next_due_gr: int


@dataclass(frozen=True)
class LastReading:
    """The newest reading of a meter and where it came from."""

    meter_id: str
    value_m3: Decimal
    at: datetime | date
    source: str


def customer(conn: Conn, customer_id: int) -> DictRow:
    """The customer's own row."""
    row = conn.execute(
        "SELECT customer_id, customer_no, kind, name, email, phone, address FROM customers"
        " WHERE customer_id = %s",
        (customer_id,),
    ).fetchone()
    assert row is not None
    return row


def meters(conn: Conn, customer_id: int) -> list[DictRow]:
    """The customer's meters, current ones first."""
    return conn.execute(
        f"SELECT * FROM ({METERS} ORDER BY mi.installation_id) m"
        " ORDER BY (removed_on IS NULL) DESC, installed_on DESC",
        {"customer_id": customer_id},
    ).fetchall()


def ledger(conn: Conn, customer_id: int) -> list[LedgerEntry]:
    """The customer's ledger entries as billing's values."""
    rows = conn.execute(
        "SELECT l.entry_id, l.kind, l.amount_gr, l.booked_on, l.due_date, i.invoice_no"
        " FROM ledger_entries l LEFT JOIN invoices i USING (invoice_id)"
        " WHERE l.customer_id = %s ORDER BY l.booked_on, l.entry_id",
        (customer_id,),
    ).fetchall()
    return [
        LedgerEntry(
            int(r["entry_id"]),
            r["kind"],
            int(r["amount_gr"]),
            r["booked_on"],
            r["due_date"],
            r["invoice_no"],
        )
        for r in rows
    ]


def account(entries: list[LedgerEntry], today: date) -> Account:
    """Balance, overdue debt and the next open charge, by billing's ledger rules.

    The ledger is replayed once when nothing is booked after ``today`` (the usual case):
    billing's ``overdue_debt`` replays the entries booked by ``today``, which are then all.
    """
    booked = [e for e in entries if e.booked_on <= today]
    if len(booked) < len(entries):
        state, overdue_gr = replay(entries), overdue_debt(entries, today)
    else:
        state = replay(entries)
        overdue_gr = sum(c.outstanding_grosze for c in state.open_charges if c.due_on < today)
    upcoming = [c for c in state.open_charges if c.due_on >= today]
    first = upcoming[0] if upcoming else None
    return Account(
        balance(entries),
        overdue_gr,
        first.due_on if first else None,
        first.outstanding_grosze if first else 0,
    )


def last_reading(conn: Conn, meter_id: str) -> LastReading | None:
    """The newest of the meter's remote, own (customer) and estimated readings."""
    since = datetime.now(UTC) - RECENT
    rows = conn.execute(_LAST_READINGS, {"meter": meter_id, "since": since}).fetchall()
    if not any(r["source"] == "remote" for r in rows):
        rows += conn.execute(
            _LAST_REMOTE, {"meter": meter_id, "since": datetime.min.replace(tzinfo=UTC)}
        ).fetchall()
    found = [LastReading(meter_id, r["value"], r["at"] or r["day"], r["source"]) for r in rows]
    return max(found, key=_when) if found else None


def _when(reading: LastReading) -> date:
    return reading.at.date() if isinstance(reading.at, datetime) else reading.at


def announcements(conn: Conn, customer_id: int, limit: int = 20) -> list[DictRow]:
    """Current and coming announcements for the customer's premises (or for everybody)."""
    return conn.execute(_ANNOUNCEMENTS, {"customer_id": customer_id, "limit": limit}).fetchall()


# The customer's own premises are found first (a handful of rows), so a street's prefix is
# matched against them only, never against every service point of the utility.
_ANNOUNCEMENTS = """
WITH premises AS MATERIALIZED (
    SELECT lower(sp.address) AS address, lower(sp.city) AS city
    FROM contracts c JOIN service_points sp USING (service_point_id)
    WHERE c.customer_id = %(customer_id)s
      AND coalesce(c.valid_to, 'infinity'::date) >= current_date
)
SELECT a.announcement_id, a.kind, a.title, a.body, a.starts_at, a.ends_at
FROM announcements a
WHERE a.ends_at > now()
  AND (NOT EXISTS (SELECT 1 FROM announcement_streets s
                   WHERE s.announcement_id = a.announcement_id)
       OR EXISTS (SELECT 1 FROM announcement_streets s JOIN premises p
                  ON p.address LIKE lower(s.street) || '%%'
                  AND (s.city = '' OR p.city = lower(s.city))
                  WHERE s.announcement_id = a.announcement_id))
ORDER BY a.starts_at LIMIT %(limit)s
"""


def invoices(conn: Conn, customer_id: int, limit: int = 60) -> list[DictRow]:
    """The customer's issued invoices, newest first."""
    return conn.execute(
        "SELECT invoice_id, invoice_no, kind, period_start, period_end, issue_date, due_date,"
        " gross_gr, estimated FROM invoices WHERE customer_id = %s AND status = 'issued'"
        " ORDER BY issue_date DESC, invoice_id DESC LIMIT %s",
        (customer_id, limit),
    ).fetchall()


def payments(conn: Conn, customer_id: int) -> list[DictRow]:
    """Payments and credit notes booked on the customer's account, newest first."""
    return conn.execute(
        "SELECT entry_id, kind, -amount_gr AS amount_gr, booked_on, reference"
        " FROM ledger_entries WHERE customer_id = %s AND kind IN ('payment', 'credit_note')"
        " ORDER BY booked_on DESC, entry_id DESC LIMIT 200",
        (customer_id,),
    ).fetchall()


def demands(conn: Conn, customer_id: int) -> list[DictRow]:
    """Payment demands addressed to the customer, newest first."""
    return conn.execute(
        "SELECT d.demand_id, d.issued_on, d.overdue_gr, d.pay_by, i.invoice_no"
        " FROM payment_demands d JOIN ledger_entries l ON l.entry_id = d.charge_id"
        " LEFT JOIN invoices i ON i.invoice_id = l.invoice_id"
        " WHERE d.customer_id = %s ORDER BY d.issued_on DESC",
        (customer_id,),
    ).fetchall()


def interest_notes(conn: Conn, customer_id: int) -> list[DictRow]:
    """Interest notes addressed to the customer, newest first."""
    return conn.execute(
        "SELECT note_id, month, issued_on, amount_gr FROM interest_notes"
        " WHERE customer_id = %s ORDER BY month DESC",
        (customer_id,),
    ).fetchall()
