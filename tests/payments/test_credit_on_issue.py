"""Issuing an invoice settles the customer's open credit against it, FIFO, to the grosz."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal

import pytest

from billing_engine.db import Conn
from billing_engine.invoicing import invoice_totals
from billing_engine.issuing import (
    InvoiceDraft,
    IssuedInvoice,
    insert_drafts,
    issue_drafts,
    issue_new,
)
from billing_engine.model import BillingPeriod, InvoiceLine
from billing_engine.payments import book_payment
from tests.payments.helpers import allocations_of

MakeInvoice = Callable[[int, int, date], tuple[int, int]]
MARCH = BillingPeriod(date(2026, 3, 1), date(2026, 3, 31))
ISSUED_ON = date(2026, 4, 2)


def _draft(conn: Conn, customer_id: int, net_gr: int) -> InvoiceDraft:
    row = conn.execute(
        "SELECT contract_id FROM contracts WHERE customer_id = %s", (customer_id,)
    ).fetchone()
    assert row is not None
    line = InvoiceLine(
        "water",
        "Woda",
        MARCH.start,
        MARCH.end,
        Decimal("1"),
        "m3",
        Decimal(net_gr) / 100,
        net_gr,
        Decimal("0.08"),
    )
    return InvoiceDraft(int(row[0]), customer_id, MARCH, (line,), invoice_totals([line]))


def _issue_fast(conn: Conn, drafts: list[InvoiceDraft]) -> list[IssuedInvoice]:
    with conn.transaction():
        return issue_new(conn, drafts, ISSUED_ON)


def _issue_full(conn: Conn, drafts: list[InvoiceDraft]) -> list[IssuedInvoice]:
    with conn.transaction():
        return issue_drafts(conn, list(insert_drafts(conn, drafts).values()), ISSUED_ON)


def _charge_of(conn: Conn, invoice_id: int) -> int:
    row = conn.execute(
        "SELECT entry_id FROM ledger_entries WHERE invoice_id = %s", (invoice_id,)
    ).fetchone()
    assert row is not None
    return int(row[0])


def _balance(conn: Conn, customer_id: int) -> int:
    row = conn.execute(
        "SELECT sum(amount_gr) FROM ledger_entries WHERE customer_id = %s", (customer_id,)
    ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize("issue", [_issue_fast, _issue_full], ids=["bulk", "full"])
def test_new_invoice_is_settled_from_an_overpayment(
    conn: Conn,
    make_customer: Callable[[], int],
    make_invoice: MakeInvoice,
    issue: Callable[[Conn, list[InvoiceDraft]], list[IssuedInvoice]],
) -> None:
    customer, bystander = make_customer(), make_customer()
    _, first = make_invoice(customer, 4321, date(2026, 2, 10))
    book_payment(conn, customer, 10000, f"test:credit-{customer}", date(2026, 2, 5))
    assert allocations_of(conn, first) == 4321
    issued = issue(conn, [_draft(conn, customer, 5001), _draft(conn, bystander, 5001)])
    assert [i.gross_grosze for i in issued] == [5401, 5401]
    # Credit 10000 - 4321 = 5679 settles the new 5401 in full; 278 grosze stay as credit.
    assert allocations_of(conn, _charge_of(conn, issued[0].invoice_id)) == 5401
    assert _balance(conn, customer) == 4321 + 5401 - 10000 == -278
    assert allocations_of(conn, _charge_of(conn, issued[1].invoice_id)) == 0
    assert _balance(conn, bystander) == 5401


def test_credit_smaller_than_the_invoice_settles_part_of_it(
    conn: Conn, make_customer: Callable[[], int]
) -> None:
    customer = make_customer()
    book_payment(conn, customer, 1234, f"test:part-{customer}", date(2026, 3, 20))
    [invoice] = _issue_fast(conn, [_draft(conn, customer, 2000)])
    charge = _charge_of(conn, invoice.invoice_id)
    assert allocations_of(conn, charge) == 1234
    assert _balance(conn, customer) == 2160 - 1234
    row = conn.execute(
        "SELECT settled_on FROM payment_allocations WHERE charge_id = %s", (charge,)
    ).fetchone()
    assert row is not None and row[0] == ISSUED_ON
