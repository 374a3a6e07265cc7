"""Dunning in the store: payment reminders, payment demands and monthly interest notes.

Each document is written with its outbox notice in ONE transaction; unique keys (one
reminder and one demand per charge, one note per customer and month, one item per charge
and payment, one notice per dedup key) make a re-run send nothing twice. What is still
owed on a charge is its amount less the payments allocated to it (``payment_allocations``);
the decisions are the pure rules of ``dunning``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from psycopg.types.json import Jsonb

from billing_engine.db import Conn, store_errors
from billing_engine.dunning import demands_due, interest_note_items, reminders_due
from billing_engine.interest import load_reference_rates
from billing_engine.model import (
    DunningPolicy,
    InterestNoteItem,
    LedgerEntry,
    OpenCharge,
    Party,
    ReferenceRate,
)

# A payment demand gives the customer this many days to pay.
DEMAND_PAY_DAYS = 7


@dataclass(frozen=True)
class _Open:
    charge: OpenCharge
    customer_id: int


def sync_reference_rates(conn: Conn) -> tuple[ReferenceRate, ...]:
    """Add the shipped NBP rates missing from ``reference_rates``; return the stored table.

    Rows staff added to the table are kept; the shipped CSV only fills gaps.
    """
    shipped = load_reference_rates()
    with store_errors("reference rates"), conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO reference_rates (valid_from, rate_pct) VALUES (%s, %s)"
            " ON CONFLICT (valid_from) DO NOTHING",
            [(r.effective_from, r.rate_percent) for r in shipped],
        )
        rows = cur.execute("SELECT valid_from, rate_pct FROM reference_rates ORDER BY 1")
        return tuple(ReferenceRate(r[0], Decimal(r[1])) for r in rows.fetchall())


def _open_charges(conn: Conn, due_from: date, due_to: date, done_table: str) -> list[_Open]:
    rows = conn.execute(
        "SELECT e.entry_id, e.due_date, e.amount_gr - coalesce(("
        "   SELECT sum(a.amount_gr) FROM payment_allocations a WHERE a.charge_id = e.entry_id"
        " ), 0), e.reference, e.customer_id"
        " FROM ledger_entries e"
        " WHERE e.kind = 'charge' AND e.due_date BETWEEN %s AND %s"
        f" AND NOT EXISTS (SELECT 1 FROM {done_table} d WHERE d.charge_id = e.entry_id)",
        (due_from, due_to),
    ).fetchall()
    return [_Open(OpenCharge(r[0], r[1], int(r[2]), r[3]), r[4]) for r in rows]


def send_reminders(conn: Conn, today: date, policy: DunningPolicy) -> int:
    """Write a reminder (e-monit) and its notice for each open charge due soon; return count."""
    found = _open_charges(
        conn, today, today + timedelta(days=policy.reminder_days_before_due), "payment_reminders"
    )
    due = {c.charge_id for c in reminders_due([f.charge for f in found], today, policy, set())}
    rows = [(f.charge.charge_id, today, f.charge.outstanding_grosze) for f in found]
    chosen = [r for r in rows if r[0] in due]
    with store_errors("payment reminders"), conn.transaction():
        written = conn.execute(_REMINDERS, _columns(chosen, ("bigint", "date", "bigint")))
        return written.rowcount


def send_demands(conn: Conn, today: date, policy: DunningPolicy) -> int:
    """Write a payment demand and its notice for each charge overdue long enough; return count."""
    last_due = today - timedelta(days=policy.demand_after_overdue_days)
    found = _open_charges(conn, date(1970, 1, 1), last_due, "payment_demands")
    due = {c.charge_id for c in demands_due([f.charge for f in found], today, policy, set())}
    pay_by = today + timedelta(days=DEMAND_PAY_DAYS)
    chosen = [
        (f.charge.charge_id, f.customer_id, today, f.charge.outstanding_grosze, pay_by)
        for f in found
        if f.charge.charge_id in due
    ]
    types = ("bigint", "bigint", "date", "bigint", "date")
    with store_errors("payment demands"), conn.transaction():
        written = conn.execute(_DEMANDS, _columns(chosen, types))
        return written.rowcount


def _columns(rows: Sequence[tuple[object, ...]], types: Sequence[str]) -> dict[str, object]:
    return {f"c{i}": [r[i] for r in rows] for i in range(len(types))}


def issue_interest_notes(
    conn: Conn,
    month: date,
    today: date,
    policy: DunningPolicy,
    *,
    due_days: int = 14,
    rates: Sequence[ReferenceRate] | None = None,
) -> int:
    """Interest notes for the late payments booked in ``month`` (its first day); return count.

    One note per customer and month, each with its items, an interest ledger entry due in
    ``due_days`` and its notice, in one transaction per customer.
    """
    rates = sync_reference_rates(conn) if rates is None else rates
    last = _month_end(month)
    customers = conn.execute(
        "SELECT DISTINCT e.customer_id, c.kind FROM ledger_entries e JOIN customers c"
        " USING (customer_id) WHERE e.kind IN ('payment', 'credit_note')"
        " AND e.booked_on BETWEEN %s AND %s AND NOT EXISTS (SELECT 1 FROM interest_notes n"
        "   WHERE n.customer_id = e.customer_id AND n.month = %s) ORDER BY 1",
        (month, last, month),
    ).fetchall()
    made = 0
    for customer_id, kind in customers:
        party: Party = "business" if kind == "business" else "consumer"
        entries, noted = _account(conn, customer_id, last)
        items = interest_note_items(entries, last, rates, party, policy, noted)
        if items and _write_note(conn, customer_id, month, today, due_days, items):
            made += 1
    return made


def _month_end(month: date) -> date:
    following = (month.replace(day=28) + timedelta(days=4)).replace(day=1)
    return following - timedelta(days=1)


def _account(
    conn: Conn, customer_id: int, until: date
) -> tuple[list[LedgerEntry], set[tuple[int, int]]]:
    rows = conn.execute(
        "SELECT entry_id, kind, amount_gr, booked_on, due_date, reference FROM ledger_entries"
        " WHERE customer_id = %s AND booked_on <= %s AND amount_gr <> 0",
        (customer_id, until),
    ).fetchall()
    entries = [LedgerEntry(r[0], r[1], int(r[2]), r[3], r[4], r[5]) for r in rows]
    noted = conn.execute(
        "SELECT i.charge_id, i.payment_id FROM interest_note_items i JOIN interest_notes n"
        " USING (note_id) WHERE n.customer_id = %s",
        (customer_id,),
    ).fetchall()
    return entries, {(int(r[0]), int(r[1])) for r in noted}


def _write_note(
    conn: Conn,
    customer_id: int,
    month: date,
    today: date,
    due_days: int,
    items: Sequence[InterestNoteItem],
) -> bool:
    total = sum(i.interest.total_grosze for i in items)
    reference = f"NO/{customer_id}/{month:%Y-%m}"
    with store_errors(f"interest note {reference}"), conn.transaction():
        note = conn.execute(
            "INSERT INTO interest_notes (customer_id, month, issued_on, amount_gr)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT (customer_id, month) DO NOTHING"
            " RETURNING note_id",
            (customer_id, month, today, total),
        ).fetchone()
        if note is None:
            return False
        entry = conn.execute(
            "INSERT INTO ledger_entries (customer_id, kind, amount_gr, booked_on, due_date,"
            " reference) VALUES (%s, 'interest', %s, %s, %s, %s) RETURNING entry_id",
            (customer_id, total, today, today + timedelta(days=due_days), reference),
        ).fetchone()
        assert entry is not None
        conn.execute(
            "UPDATE interest_notes SET entry_id = %s WHERE note_id = %s", (entry[0], note[0])
        )
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO interest_note_items (note_id, charge_id, payment_id, days,"
                " amount_gr) VALUES (%s, %s, %s, %s, %s)",
                [
                    (
                        note[0],
                        i.charge_id,
                        i.credit_id,
                        (i.paid_on - i.due_on).days,
                        i.interest.total_grosze,
                    )
                    for i in items
                ],
            )
        payload = {
            "note_id": note[0],
            "reference": reference,
            "month": month.isoformat(),
            "amount_gr": total,
            "due_date": (today + timedelta(days=due_days)).isoformat(),
            "items": [
                {
                    "document": i.document,
                    "due_on": i.due_on.isoformat(),
                    "paid_on": i.paid_on.isoformat(),
                    "principal_gr": i.interest.principal_grosze,
                    "interest_gr": i.interest.total_grosze,
                }
                for i in items
            ],
        }
        conn.execute(
            "INSERT INTO outbox (kind, customer_id, dedup_key, payload)"
            " VALUES ('interest_note', %s, %s, %s)",
            (customer_id, f"interest_note:{note[0]}", Jsonb(payload)),
        )
    return True


_REMINDERS = """
WITH sent AS (
    INSERT INTO payment_reminders (charge_id, sent_on, amount_gr)
    SELECT * FROM unnest(%(c0)s::bigint[], %(c1)s::date[], %(c2)s::bigint[])
    ON CONFLICT (charge_id) DO NOTHING
    RETURNING charge_id, amount_gr
)
INSERT INTO outbox (kind, customer_id, dedup_key, payload)
SELECT 'payment_reminder', e.customer_id, 'reminder:' || s.charge_id,
       jsonb_build_object('charge_id', s.charge_id, 'invoice_id', e.invoice_id,
                          'invoice_no', e.reference, 'due_date', e.due_date,
                          'amount_gr', s.amount_gr)
FROM sent s JOIN ledger_entries e ON e.entry_id = s.charge_id
ON CONFLICT (dedup_key) DO NOTHING
"""

_DEMANDS = """
WITH made AS (
    INSERT INTO payment_demands (charge_id, customer_id, issued_on, overdue_gr, pay_by)
    SELECT * FROM unnest(%(c0)s::bigint[], %(c1)s::bigint[], %(c2)s::date[],
                         %(c3)s::bigint[], %(c4)s::date[])
    ON CONFLICT (charge_id) DO NOTHING
    RETURNING demand_id, charge_id, customer_id, overdue_gr, pay_by
)
INSERT INTO outbox (kind, customer_id, dedup_key, payload)
SELECT 'payment_demand', m.customer_id, 'demand:' || m.charge_id,
       jsonb_build_object('demand_id', m.demand_id, 'charge_id', m.charge_id,
                          'invoice_id', e.invoice_id, 'invoice_no', e.reference,
                          'due_date', e.due_date, 'overdue_gr', m.overdue_gr,
                          'pay_by', m.pay_by)
FROM made m JOIN ledger_entries e ON e.entry_id = m.charge_id
ON CONFLICT (dedup_key) DO NOTHING
"""
