"""Booking payments: once per reference, FIFO over open charges, overpayment kept as credit."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest

from billing_engine.db import Conn
from billing_engine.payments import PaymentIn, book_payment, book_payments, settle_customers
from meterflow.errors import BillingError
from tests.payments.helpers import allocations_of, payments_of

MakeInvoice = Callable[[int, int, date], tuple[int, int]]


def test_payment_settles_the_oldest_due_charge_first(
    conn: Conn, make_customer: Callable[[], int], make_invoice: MakeInvoice
) -> None:
    customer = make_customer()
    _, later = make_invoice(customer, 5000, date(2026, 3, 10))
    _, older = make_invoice(customer, 3000, date(2026, 2, 10))
    booked = book_payment(conn, customer, 4000, "test:fifo", date(2026, 3, 1))
    assert booked is not None and booked.amount_gr == 4000
    assert allocations_of(conn, older) == 3000
    assert allocations_of(conn, later) == 1000


def test_same_reference_is_booked_once(
    conn: Conn, make_customer: Callable[[], int], make_invoice: MakeInvoice
) -> None:
    customer = make_customer()
    _, charge = make_invoice(customer, 2000, date(2026, 2, 10))
    assert book_payment(conn, customer, 2000, "test:once", date(2026, 2, 1)) is not None
    assert book_payment(conn, customer, 2000, "test:once", date(2026, 2, 2)) is None
    again = book_payments(conn, [PaymentIn(customer, 2000, "test:once", date(2026, 2, 3))] * 2)
    assert again == []
    assert payments_of(conn, customer) == [(-2000, "test:once")]
    assert allocations_of(conn, charge) == 2000


def test_overpayment_stays_as_credit_and_settles_the_next_charge(
    conn: Conn, make_customer: Callable[[], int], make_invoice: MakeInvoice
) -> None:
    customer = make_customer()
    _, first = make_invoice(customer, 1000, date(2026, 2, 10))
    book_payment(conn, customer, 2500, "test:over", date(2026, 2, 1))
    assert allocations_of(conn, first) == 1000
    _, second = make_invoice(customer, 1000, date(2026, 3, 10))
    _, third = make_invoice(customer, 1000, date(2026, 4, 10))
    allocations = settle_customers(conn, [customer])
    assert [a.amount_grosze for a in allocations] == [1000, 500]
    assert allocations_of(conn, second) == 1000
    assert allocations_of(conn, third) == 500
    # A credit older than the charge settles it the day the charge was booked.
    assert allocations[0].on == date(2026, 2, 24)
    assert settle_customers(conn, [customer]) == []


@pytest.mark.parametrize("amount", [0, -100])
def test_a_payment_must_be_positive(
    conn: Conn, make_customer: Callable[[], int], amount: int
) -> None:
    with pytest.raises(BillingError):
        book_payment(conn, make_customer(), amount, f"test:bad{amount}", date(2026, 1, 1))


def test_payment_of_an_unknown_customer_is_refused(conn: Conn) -> None:
    with pytest.raises(BillingError):
        book_payment(conn, 999_999_999, 100, "test:nobody", date(2026, 1, 1))
