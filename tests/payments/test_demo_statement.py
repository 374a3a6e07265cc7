"""The demo's bank statement: made from the issued invoices once there are some, most
credits booked through virtual accounts, three left for staff with hints, imported again
on every start without booking anything twice."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import psycopg
import pytest

from billing_engine.bank.demo import seed_demo_statement
from billing_engine.bank.importer import unmatched
from billing_engine.db import Conn
from tests.payments.helpers import fresh_database, payments_of
from tests.payments.test_statements import PREFIX, SORT_CODE

MakeInvoice = Callable[[int, int, date], tuple[int, int]]
TODAY = date(2026, 11, 23)


@pytest.fixture
def demo_db(migrated_db: str) -> Iterator[str]:
    """A migrated database of this test alone (the demo reads every issued invoice)."""
    with fresh_database(migrated_db, "mf_demo") as url:
        yield url


@pytest.fixture
def conn(demo_db: str) -> Iterator[Conn]:
    """An autocommit connection to this test's database (the payment factories use it)."""
    with psycopg.connect(demo_db, autocommit=True) as connection:
        yield connection


def test_demo_statement_waits_for_invoices_then_books_once_and_leaves_three_for_staff(
    conn: Conn,
    demo_db: str,
    make_customer: Callable[[], int],
    make_invoice: MakeInvoice,
    tmp_path: Path,
) -> None:
    path = tmp_path / "demo" / "bank-statement.mt940"
    customers = [make_customer() for _ in range(5)]
    assert seed_demo_statement(demo_db, SORT_CODE, PREFIX, path, TODAY) is None
    assert not path.exists()
    invoices = {c: make_invoice(c, 10_000 + c, date(2026, 12, 7))[0] for c in customers}

    first = seed_demo_statement(demo_db, SORT_CODE, PREFIX, path, TODAY)
    assert first is not None
    assert (first.booked, first.unmatched, first.ignored, first.duplicates) == (4, 3, 1, 0)
    for customer in customers[:4]:
        assert [amount for amount, _ in payments_of(conn, customer)] == [-(10_000 + customer)]
    assert payments_of(conn, customers[4]) == []

    waiting = {item.title: item for item in unmatched(conn)}
    assert len(waiting) == 3
    numbers = dict(conn.execute("SELECT invoice_id, invoice_no FROM invoices").fetchall())
    relative = waiting[f"Faktura {numbers[invoices[customers[4]]]} za mamę"]
    assert relative.amount_gr == 10_000 + customers[4] and relative.booked_on == TODAY
    named = conn.execute(
        "SELECT customer_no FROM customers WHERE customer_id = %s", (customers[2],)
    ).fetchone()
    assert named is not None and f"Woda {named[0]} zaliczka" in waiting
    assert "przelew środków" in waiting

    again = seed_demo_statement(demo_db, SORT_CODE, PREFIX, path, date(2027, 1, 5))
    assert again is not None
    assert (again.booked, again.unmatched, again.ignored, again.duplicates) == (0, 0, 0, 8)
    assert len(unmatched(conn)) == 3
    assert [len(payments_of(conn, c)) for c in customers] == [1, 1, 1, 1, 0]
