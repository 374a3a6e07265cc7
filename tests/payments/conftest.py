"""Payment fixtures: a billing connection, customers with issued invoices, e-office accounts.

- ``payments_db``: a migrated database of the payment tests alone (their customers and
  tariffs must not reach the template other areas clone from the run's database).
- ``conn``: an autocommit billing connection (tuple rows) to it.
- ``make_customer()``: a new customer id.
- ``make_invoice(customer_id, gross_gr, due_on)``: an issued invoice with its ledger charge;
  returns ``(invoice_id, charge_entry_id)``.
- ``make_account(customer_id)``: an active e-office login for the customer; returns the e-mail
  (the password is ``PASSWORD``).
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from datetime import date, timedelta

import psycopg
import pytest

from billing_engine.db import Conn
from portal.passwords import Hasher
from tests.payments.helpers import fresh_database

PASSWORD = "Kran-Wodny-2026!"
SERIES = "P" + uuid.uuid4().hex[:6].upper()
_numbers = itertools.count(1)
_FAST = Hasher("fast")


@pytest.fixture(scope="session")
def payments_db(migrated_db: str) -> Iterator[str]:
    """A freshly migrated database for the payment tests; returns its URL."""
    with fresh_database(migrated_db, "mf_pay") as url:
        yield url


@pytest.fixture
def conn(payments_db: str) -> Iterator[Conn]:
    """An autocommit billing connection."""
    with psycopg.connect(payments_db, autocommit=True) as connection:
        yield connection


def _one(conn: Conn, sql: str, params: tuple[object, ...]) -> int:
    row = conn.execute(sql, params).fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture
def make_customer(conn: Conn) -> Callable[[], int]:
    """Factory: a new customer (person) with a contract for a new service point."""

    def make() -> int:
        tag = uuid.uuid4().hex[:10]
        customer_id = _one(
            conn,
            "INSERT INTO customers (customer_no, kind, name, email) VALUES (%s, 'person', %s, %s)"
            " RETURNING customer_id",
            (f"K-{tag}", f"Anna Test {tag}", f"anna-{tag}@example.com"),
        )
        point = _one(
            conn,
            "INSERT INTO service_points (address) VALUES (%s) RETURNING service_point_id",
            (f"ul. Testowa {tag}",),
        )
        tariff = _one(
            conn,
            "INSERT INTO tariffs (tariff_group) VALUES (%s) RETURNING tariff_id",
            (f"T-{tag}",),
        )
        conn.execute(
            "INSERT INTO billing_groups (group_code) VALUES ('default') ON CONFLICT DO NOTHING"
        )
        conn.execute(
            "INSERT INTO contracts (contract_no, customer_id, service_point_id, valid_from,"
            " group_code, tariff_id) VALUES (%s, %s, %s, '2020-01-01', 'default', %s)",
            (f"U-{tag}", customer_id, point, tariff),
        )
        return customer_id

    return make


@pytest.fixture
def make_invoice(conn: Conn) -> Callable[[int, int, date], tuple[int, int]]:
    """Factory: an issued invoice of ``gross_gr`` due ``due_on`` and its ledger charge."""

    def make(customer_id: int, gross_gr: int, due_on: date) -> tuple[int, int]:
        n = next(_numbers)
        start = date(2020, 1, 1) + timedelta(days=n)
        contract = _one(
            conn, "SELECT contract_id FROM contracts WHERE customer_id = %s", (customer_id,)
        )
        invoice_id = _one(
            conn,
            "INSERT INTO invoices (contract_id, customer_id, status, series, year, number,"
            " period_start, period_end, issue_date, due_date, net_gr, vat_gr, gross_gr,"
            " issued_at) VALUES (%s, %s, 'issued', %s, 2026, %s, %s, %s, %s, %s, %s, 0, %s,"
            " now()) RETURNING invoice_id",
            (contract, customer_id, SERIES, n, start, start, due_on, due_on, gross_gr, gross_gr),
        )
        entry_id = _one(
            conn,
            "INSERT INTO ledger_entries (customer_id, kind, amount_gr, booked_on, due_date,"
            " invoice_id) VALUES (%s, 'charge', %s, %s, %s, %s) RETURNING entry_id",
            (customer_id, gross_gr, due_on - timedelta(days=14), due_on, invoice_id),
        )
        return invoice_id, entry_id

    return make


@pytest.fixture
def make_account(conn: Conn) -> Callable[[int], str]:
    """Factory: an active e-office account of the customer; returns its e-mail."""

    def make(customer_id: int) -> str:
        email = f"payer-{uuid.uuid4().hex[:10]}@example.com"
        conn.execute(
            "INSERT INTO portal_accounts (email, password_hash, customer_id, status,"
            " created_by, email_verified_at, activated_at)"
            " VALUES (%s, %s, %s, 'active', 'self', now(), now())",
            (email, _FAST.hash(PASSWORD), customer_id),
        )
        return email

    return make
