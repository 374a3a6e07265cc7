"""Booking payments to the ledger: once per external reference, settled FIFO.

Every payment - an online one confirmed by the gateway, a bank transfer from a statement -
comes in through :func:`book_payments` (or :func:`book_payment` for one). A payment is a
negative ``ledger_entries`` row of kind ``payment`` whose ``reference`` (``p24:<session>``,
``bank:<dedup key>``) is unique, so a repeated notification or a re-imported statement books
nothing twice. Each customer touched is then settled with ``ledger.allocate_fifo``: every
credit with something left settles the open charges, oldest due first; what remains stays
on the payment as credit and settles the next charge when the customer is settled again.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date

from billing_engine.db import Conn, store_errors
from billing_engine.ledger import allocate_fifo
from billing_engine.model import Allocation, OpenCharge
from meterflow.errors import BillingError


@dataclass(frozen=True)
class PaymentIn:
    """A payment to book: ``amount_gr`` positive grosze received from the customer."""

    customer_id: int
    amount_gr: int
    reference: str
    booked_on: date


@dataclass(frozen=True)
class BookedPayment:
    """A payment written to the ledger by this call (``amount_gr`` positive, as received)."""

    entry_id: int
    customer_id: int
    amount_gr: int
    reference: str


_OPEN_CHARGES = """
SELECT e.customer_id, e.entry_id, e.due_date, e.booked_on,
       e.amount_gr - coalesce(sum(a.amount_gr), 0) AS open_gr, e.invoice_id
FROM ledger_entries e LEFT JOIN payment_allocations a ON a.charge_id = e.entry_id
WHERE e.customer_id = ANY(%s) AND e.kind IN ('charge', 'interest')
GROUP BY e.entry_id
HAVING e.amount_gr - coalesce(sum(a.amount_gr), 0) > 0
"""

_OPEN_CREDITS = """
SELECT e.customer_id, e.entry_id, e.booked_on, -e.amount_gr - coalesce(sum(a.amount_gr), 0)
FROM ledger_entries e LEFT JOIN payment_allocations a ON a.payment_id = e.entry_id
WHERE e.customer_id = ANY(%s) AND e.kind IN ('payment', 'credit_note')
GROUP BY e.entry_id
HAVING -e.amount_gr - coalesce(sum(a.amount_gr), 0) > 0
ORDER BY e.booked_on, e.entry_id
"""


def book_payment(
    conn: Conn, customer_id: int, amount_gr: int, reference: str, booked_on: date
) -> BookedPayment | None:
    """Book one payment and settle the customer; None if ``reference`` was booked before.

    Raises BillingError if the amount is not positive or the customer does not exist.
    """
    booked = book_payments(conn, [PaymentIn(customer_id, amount_gr, reference, booked_on)])
    return booked[0] if booked else None


def book_payments(conn: Conn, payments: Sequence[PaymentIn]) -> list[BookedPayment]:
    """Book the payments whose references are new and settle their customers FIFO.

    Runs in the caller's transaction with a constant number of statements (COPY into a
    staging table, one INSERT ... SELECT); returns only what this call booked.
    Raises BillingError if an amount is not positive or a customer does not exist.
    """
    for payment in payments:
        if payment.amount_gr <= 0:
            raise BillingError(f"payment {payment.reference}: {payment.amount_gr} grosze")
    if not payments:
        return []
    with conn.transaction():
        booked = _insert(conn, payments)
        settle_customers(conn, {b.customer_id for b in booked})
    return booked


def _insert(conn: Conn, payments: Sequence[PaymentIn]) -> list[BookedPayment]:
    """Write the payments whose references are new; return those written."""
    with store_errors("booking payments"):
        conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS payments_stage (customer_id bigint,"
            " amount_gr bigint, reference text, booked_on date) ON COMMIT DELETE ROWS"
        )
        conn.execute("TRUNCATE payments_stage")
        with conn.cursor().copy(
            "COPY payments_stage (customer_id, amount_gr, reference, booked_on) FROM STDIN"
        ) as copy:
            for p in payments:
                copy.write_row((p.customer_id, p.amount_gr, p.reference, p.booked_on))
        rows = conn.execute(
            "INSERT INTO ledger_entries (customer_id, kind, amount_gr, booked_on, reference)"
            " SELECT DISTINCT ON (reference) customer_id, 'payment', -amount_gr, booked_on,"
            " reference FROM payments_stage ORDER BY reference"
            " ON CONFLICT (reference) WHERE kind = 'payment' DO NOTHING"
            " RETURNING entry_id, customer_id, -amount_gr, reference"
        ).fetchall()
    return [BookedPayment(int(r[0]), int(r[1]), int(r[2]), str(r[3])) for r in rows]


def settle_customers(conn: Conn, customer_ids: Iterable[int]) -> list[Allocation]:
    """Settle every open credit of these customers against their open charges, FIFO.

    Locks the customers' rows (in id order, so concurrent bookings cannot deadlock) and
    writes the allocations; returns them.
    """
    ids = sorted(set(customer_ids))
    if not ids:
        return []
    with store_errors("settling payments"), conn.transaction():
        conn.execute(
            "SELECT 1 FROM customers WHERE customer_id = ANY(%s) ORDER BY customer_id"
            " FOR NO KEY UPDATE",
            (ids,),
        )
        charges = conn.execute(_OPEN_CHARGES, (ids,)).fetchall()
        credits = conn.execute(_OPEN_CREDITS, (ids,)).fetchall()
        allocations = _allocate(charges, credits)
        with conn.cursor().copy(
            "COPY payment_allocations (payment_id, charge_id, amount_gr, settled_on) FROM STDIN"
        ) as copy:
            for a in allocations:
                copy.write_row((a.credit_id, a.charge_id, a.amount_grosze, a.on))
    return allocations


def _allocate(
    charges: Sequence[tuple[int, int, date, date, int, int | None]],
    credits: Sequence[tuple[int, int, date, int]],
) -> list[Allocation]:
    """FIFO allocations of each customer's credits (oldest first) to their open charges."""
    open_: dict[int, dict[int, OpenCharge]] = defaultdict(dict)
    charge_booked: dict[int, date] = {}
    for customer_id, entry_id, due_on, booked_on, open_gr, invoice_id in charges:
        document = f"invoice {invoice_id}" if invoice_id is not None else f"entry {entry_id}"
        open_[customer_id][entry_id] = OpenCharge(entry_id, due_on, int(open_gr), document)
        charge_booked[entry_id] = booked_on
    allocations: list[Allocation] = []
    for customer_id, credit_id, booked_on, left_gr in credits:
        account = open_[customer_id]
        if not account:
            continue
        result = allocate_fifo(
            list(account.values()), int(left_gr), credit_id=credit_id, on=booked_on
        )
        for allocation in result.allocations:
            charge = account[allocation.charge_id]
            rest = charge.outstanding_grosze - allocation.amount_grosze
            if rest:
                account[charge.charge_id] = replace(charge, outstanding_grosze=rest)
            else:
                del account[charge.charge_id]
            # A credit older than the charge settles it the day the charge is booked.
            on = max(booked_on, charge_booked[allocation.charge_id])
            allocations.append(replace(allocation, on=on))
    return allocations
