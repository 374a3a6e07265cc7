"""A customer's account at a glance, for staff: contracts, balance, invoices, holds."""

from __future__ import annotations

from billing_engine.db import Conn, connect
from billing_engine.money import format_pln
from meterflow.errors import BillingError


def find_customer(conn: Conn, ref: str) -> tuple[int, str, str]:
    """(id, number, name) of the customer with id or customer number ``ref``.

    Raises BillingError if there is no such customer.
    """
    row = conn.execute(
        "SELECT customer_id, customer_no, name FROM customers"
        " WHERE customer_no = %s OR (%s ~ '^[0-9]+$' AND customer_id = %s::bigint)",
        (ref, ref, ref if ref.isdigit() else "0"),
    ).fetchone()
    if row is None:
        raise BillingError(f"no customer with id or number {ref!r}")
    return int(row[0]), str(row[1]), str(row[2])


def preview_text(conninfo: str, ref: str) -> str:
    """The account of customer ``ref`` as text.

    Raises BillingError if there is no such customer.
    """
    with connect(conninfo) as conn:
        customer_id, number, name = find_customer(conn, ref)
        lines = [f"customer {number} (id {customer_id}): {name}"]
        for row in conn.execute(_CONTRACTS, (customer_id,)).fetchall():
            lines.append(f"  contract {row[0]}: {row[1]}, {row[2]} billing, tariff {row[3]}")
        balance = conn.execute(
            "SELECT coalesce(sum(amount_gr), 0) FROM ledger_entries WHERE customer_id = %s",
            (customer_id,),
        ).fetchone()
        owed = int(balance[0]) if balance else 0
        word = "owes" if owed > 0 else "has credit of"
        lines.append(f"  balance: {word} {format_pln(abs(owed))}")
        for row in conn.execute(_INVOICES, (customer_id,)).fetchall():
            flag = " (estimated)" if row[5] else ""
            lines.append(
                f"  invoice {row[0] or 'draft'}: {row[1]}..{row[2]}, {format_pln(row[3])},"
                f" due {row[4]}{flag}"
            )
        for row in conn.execute(_HELD, (customer_id,)).fetchall():
            lines.append(f"  held for review {row[0]}..{row[1]}: {row[2]}")
    return "\n".join(lines)


_CONTRACTS = """
SELECT c.contract_no, s.address, c.billing_period, t.tariff_group
FROM contracts c JOIN service_points s USING (service_point_id) JOIN tariffs t USING (tariff_id)
WHERE c.customer_id = %s ORDER BY c.contract_id
"""
_INVOICES = """
SELECT invoice_no, period_start, period_end, gross_gr, due_date, estimated
FROM invoices WHERE customer_id = %s ORDER BY period_start DESC, invoice_id DESC LIMIT 12
"""
_HELD = """
SELECT h.period_start, h.period_end, h.reason FROM held_readings h
JOIN contracts c USING (contract_id) WHERE c.customer_id = %s AND h.resolved_at IS NULL
"""
