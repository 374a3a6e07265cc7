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


# A batch at least this large refreshes the ledger's planner statistics before settling.
BULK_ROWS = 1000

_OPEN_CHARGES = """
SELECT e.customer_id, e.entry_id, e.due_date, e.booked_on,
       (e.amount_gr - coalesce(sum(a.amount_gr), 0))::bigint, e.invoice_id
FROM ledger_entries e LEFT JOIN payment_allocations a ON a.charge_id = e.entry_id
WHERE e.customer_id IN (SELECT customer_id FROM settle_ids) AND e.kind IN ('charge', 'interest')
GROUP BY e.entry_id
HAVING e.amount_gr - coalesce(sum(a.amount_gr), 0) > 0
"""

_OPEN_CREDITS = """
SELECT e.customer_id, e.entry_id, e.booked_on,
       (-e.amount_gr - coalesce(sum(a.amount_gr), 0))::bigint
FROM ledger_entries e LEFT JOIN payment_allocations a ON a.payment_id = e.entry_id
WHERE e.customer_id IN (SELECT customer_id FROM settle_ids)
  AND e.kind IN ('payment', 'credit_note')
GROUP BY e.entry_id
HAVING -e.amount_gr - coalesce(sum(a.amount_gr), 0) > 0
ORDER BY e.booked_on, e.entry_id
"""

_BOOK_STAGED = """
WITH written AS (
    INSERT INTO ledger_entries (customer_id, kind, amount_gr, booked_on, reference)
    SELECT DISTINCT ON (reference) customer_id, 'payment', -amount_gr, booked_on, reference
    FROM payments_stage ORDER BY reference
    ON CONFLICT (reference) WHERE kind = 'payment' DO NOTHING
    RETURNING entry_id, customer_id, -amount_gr AS amount_gr, reference)
INSERT INTO payments_booked SELECT entry_id, customer_id, amount_gr, reference FROM written
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

    Returns only what this call booked. Raises BillingError if an amount is not positive
    or a customer does not exist.
    """
    for payment in payments:
        if payment.amount_gr <= 0:
            raise BillingError(
                f"payment {payment.reference}: {payment.amount_gr} grosze is not a positive amount"
            )
    with conn.transaction():
        stage_payments(conn)
        with (
            store_errors("staging payments"),
            conn.cursor().copy(
                "COPY payments_stage (customer_id, amount_gr, reference, booked_on) FROM STDIN"
            ) as copy,
        ):
            for p in payments:
                copy.write_row((p.customer_id, p.amount_gr, p.reference, p.booked_on))
        book_staged(conn)
        rows = conn.execute(
            "SELECT entry_id, customer_id, amount_gr, reference FROM payments_booked"
            " ORDER BY entry_id"
        ).fetchall()
    return [BookedPayment(int(r[0]), int(r[1]), int(r[2]), str(r[3])) for r in rows]


def stage_payments(conn: Conn) -> None:
    """Create (or empty) the session's ``payments_stage`` table for :func:`book_staged`.

    Its columns are ``customer_id, amount_gr (positive), reference, booked_on``; a caller
    fills it with COPY or ``INSERT ... SELECT`` inside the transaction that books it.
    """
    with store_errors("staging payments"):
        for table, columns in (
            (
                "payments_stage",
                "customer_id bigint, amount_gr bigint, reference text, booked_on date",
            ),
            (
                "payments_booked",
                "entry_id bigint, customer_id bigint, amount_gr bigint, reference text",
            ),
        ):
            conn.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {table} ({columns}) ON COMMIT DELETE ROWS"
            )
            conn.execute(f"TRUNCATE {table}")


def book_staged(conn: Conn) -> int:
    """Book the staged payments whose references are new, settle their customers; return
    how many were booked (listed in the temporary table ``payments_booked``).

    Raises BillingError if a staged amount is not positive or a customer does not exist.
    """
    with store_errors("booking payments"), conn.transaction():
        bad = conn.execute(
            "SELECT reference FROM payments_stage WHERE amount_gr <= 0 LIMIT 1"
        ).fetchone()
        if bad is not None:
            raise BillingError(f"payment {bad[0]}: the amount is not positive")
        conn.execute("ANALYZE payments_stage")
        booked = conn.execute(_BOOK_STAGED).rowcount
        conn.execute("ANALYZE payments_booked")
        if booked >= BULK_ROWS:
            # Statistics from before a bulk insert make the planner expect no payments and
            # choose nested loops over the whole batch; refresh them first.
            conn.execute("ANALYZE ledger_entries")
        _settle(conn, "SELECT DISTINCT customer_id FROM payments_booked", ())
    return booked


def settle_customers(conn: Conn, customer_ids: Iterable[int]) -> list[Allocation]:
    """Settle every open credit of these customers against their open charges, FIFO.

    Locks the customers' rows (in id order, so concurrent bookings cannot deadlock) and
    writes the allocations; returns them.
    """
    ids = sorted(set(customer_ids))
    if not ids:
        return []
    return _settle(conn, "SELECT unnest(%s::bigint[])", (ids,))


def settle_credit(conn: Conn, customer_ids: Sequence[int]) -> list[Allocation]:
    """Settle those of these customers who hold open credit (payments, credit notes) FIFO.

    For invoice issuing: one query finds who has credit left, only they are locked and
    settled, so issuing to customers without credit costs that query and nothing more.
    """
    if not customer_ids:
        return []
    return _settle(conn, _WITH_CREDIT, (list(customer_ids),))


_WITH_CREDIT = """
SELECT DISTINCT e.customer_id FROM ledger_entries e
WHERE e.customer_id IN (SELECT unnest(%s::bigint[])) AND e.kind IN ('payment', 'credit_note')
  AND -e.amount_gr > coalesce(
      (SELECT sum(a.amount_gr) FROM payment_allocations a WHERE a.payment_id = e.entry_id), 0)
"""


def _settle(conn: Conn, ids_query: str, params: tuple[object, ...]) -> list[Allocation]:
    with store_errors("settling payments"), conn.transaction():
        conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS settle_ids (customer_id bigint) ON COMMIT DROP"
        )
        conn.execute("TRUNCATE settle_ids")
        if not conn.execute(f"INSERT INTO settle_ids {ids_query}", params).rowcount:
            return []
        conn.execute("ANALYZE settle_ids")
        conn.execute(
            "SELECT 1 FROM customers WHERE customer_id IN (SELECT customer_id FROM settle_ids)"
            " ORDER BY customer_id FOR NO KEY UPDATE"
        )
        charges = conn.execute(_OPEN_CHARGES).fetchall()
        credits = conn.execute(_OPEN_CREDITS).fetchall()
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
        document = f"invoice {invoice_id}" if invoice_id is not None else None
        open_[customer_id][entry_id] = OpenCharge(entry_id, due_on, open_gr, document)
        charge_booked[entry_id] = booked_on
    allocations: list[Allocation] = []
    for customer_id, credit_id, booked_on, left_gr in credits:
        account = open_.get(customer_id)
        if not account:
            continue
        result = allocate_fifo(list(account.values()), left_gr, credit_id=credit_id, on=booked_on)
        for allocation in result.allocations:
            charge = account[allocation.charge_id]
            rest = charge.outstanding_grosze - allocation.amount_grosze
            if rest:
                account[charge.charge_id] = replace(charge, outstanding_grosze=rest)
            else:
                del account[charge.charge_id]
            # A credit older than the charge settles it the day the charge is booked.
            on = charge_booked[allocation.charge_id]
            if on > booked_on:
                allocation = replace(allocation, on=on)
            allocations.append(allocation)
    return allocations
