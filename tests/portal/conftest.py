"""Portal fixtures, shared by every portal test module (auth, staff, customer pages).

- ``portal_settings``: Settings for the test database (cookies not Secure: the test client
  speaks plain http), data_dir in a temporary folder.
- ``app``: one portal app per test module (fast argon2id parameters, generous rate limits so
  the whole suite never trips them; ``test_ratelimit*`` builds its own strict apps).
- ``client``: a fresh Flask test client (no cookies) per test.
- ``customer_account``: a new customer (billing ``customers`` row) with an active e-office
  account; ``.email``, ``.password``, ``.account_id``, ``.customer_id``, ``.customer_no``.
- ``make_customer_account``: the factory behind it, for tests that need several customers.
- ``staff_user``: a staff user with the roles ``customer_service`` and ``billing`` (no
  password change pending); ``make_staff(roles)`` makes others, e.g. ``["admin"]``.
- ``login(client, email, password)`` / ``staff_login(client, email, password)`` (module
  functions in tests/portal/helpers.py) post the login forms with a valid CSRF token;
  ``csrf(client, path)`` returns the token of the form at ``path``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient

from meterflow.settings import Settings
from portal import create_app
from portal.db import close_pool
from portal.passwords import Hasher
from portal.ratelimit import Limit
from tests.portal.helpers import Account, StaffUser

PASSWORD = "Kran-Wodny-2026!"
ROOMY_LIMITS = {
    name: (Limit(10_000, 60), Limit(100_000, 60))
    for name in ("login", "register", "reset", "staff_login")
}
_FAST = Hasher("fast")


@pytest.fixture(scope="session")
def portal_settings(migrated_db: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings of the portal under test."""
    data_dir: Path = tmp_path_factory.mktemp("portal-data")
    return Settings(
        database_url=migrated_db,
        data_dir=data_dir,
        secret_key="test-secret-" + uuid.uuid4().hex,
        portal_cookie_secure=False,
    )


@pytest.fixture(scope="module")
def app(portal_settings: Settings) -> Iterator[Flask]:
    """The portal app of one test module."""
    flask_app = create_app(
        portal_settings, TESTING=True, PASSWORD_HASH_PROFILE="fast", RATE_LIMITS=ROOMY_LIMITS
    )
    yield flask_app
    close_pool(flask_app)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A browser without cookies."""
    return app.test_client()


@pytest.fixture
def db(migrated_db: str) -> Iterator[psycopg.Connection[psycopg.rows.DictRow]]:
    """An autocommit connection to the test database (dict rows) for setting up and checking."""
    with psycopg.connect(migrated_db, autocommit=True, row_factory=psycopg.rows.dict_row) as conn:
        yield conn


@pytest.fixture
def make_customer_account(
    db: psycopg.Connection[psycopg.rows.DictRow],
) -> Callable[..., Account]:
    """Factory: a new customer and an active account (``must_change=True`` for first login)."""

    def make(must_change: bool = False, password: str = PASSWORD) -> Account:
        tag = uuid.uuid4().hex[:10]
        customer = db.execute(
            "INSERT INTO customers (customer_no, kind, name, email, phone, address)"
            " VALUES (%s, 'person', %s, %s, '+48500100200', 'ul. Wodna 1, 00-001 Miasto')"
            " RETURNING customer_id",
            (f"K-{tag}", f"Jan Test {tag}", f"contact-{tag}@example.com"),
        ).fetchone()
        assert customer is not None
        email = f"jan-{tag}@example.com"
        account = db.execute(
            "INSERT INTO portal_accounts (email, password_hash, must_change_password,"
            " customer_id, status, created_by, email_verified_at, activated_at)"
            " VALUES (%s, %s, %s, %s, 'active', 'self', now(), now()) RETURNING account_id",
            (email, _FAST.hash(password), must_change, customer["customer_id"]),
        ).fetchone()
        assert account is not None
        return Account(
            email, password, int(account["account_id"]), int(customer["customer_id"]), f"K-{tag}"
        )

    return make


@pytest.fixture
def customer_account(make_customer_account: Callable[..., Account]) -> Account:
    """A new customer with an active e-office account."""
    return make_customer_account()


@pytest.fixture
def make_staff(db: psycopg.Connection[psycopg.rows.DictRow]) -> Callable[..., StaffUser]:
    """Factory: a staff user with ``roles`` (``must_change=True`` for a first login)."""

    def make(roles: list[str], must_change: bool = False) -> StaffUser:
        email = f"staff-{uuid.uuid4().hex[:10]}@wodociagi.example"
        row = db.execute(
            "INSERT INTO staff_users (email, name, password_hash, roles, must_change_password)"
            " VALUES (%s, 'Test Staff', %s, %s, %s) RETURNING staff_id",
            (email, _FAST.hash(PASSWORD), roles, must_change),
        ).fetchone()
        assert row is not None
        return StaffUser(email, PASSWORD, int(row["staff_id"]), tuple(roles))

    return make


@pytest.fixture
def staff_user(make_staff: Callable[..., StaffUser]) -> StaffUser:
    """A staff user of customer service and billing."""
    return make_staff(["customer_service", "billing"])


@pytest.fixture
def issued_invoice(db: psycopg.Connection[psycopg.rows.DictRow]) -> Callable[[int], str]:
    """Factory: an issued invoice (dated today) of customer ``customer_id``; returns its number."""

    def make(customer_id: int) -> str:
        tag = uuid.uuid4().hex[:10]
        db.execute("INSERT INTO billing_groups (group_code) VALUES ('PT') ON CONFLICT DO NOTHING")
        point = db.execute(
            "INSERT INTO service_points (address) VALUES (%s) RETURNING service_point_id",
            (f"ul. Testowa {tag}",),
        ).fetchone()
        tariff = db.execute(
            "INSERT INTO tariffs (tariff_group, name) VALUES (%s, 'test') RETURNING tariff_id",
            (f"T-{tag}",),
        ).fetchone()
        assert point is not None and tariff is not None
        contract = db.execute(
            "INSERT INTO contracts (contract_no, customer_id, service_point_id, valid_from,"
            " group_code, tariff_id) VALUES (%s, %s, %s, '2025-01-01', 'PT', %s)"
            " RETURNING contract_id",
            (f"U-{tag}", customer_id, point["service_point_id"], tariff["tariff_id"]),
        ).fetchone()
        assert contract is not None
        number = int(tag[:6], 16)
        invoice = db.execute(
            "INSERT INTO invoices (contract_id, customer_id, status, series, year, number,"
            " period_start, period_end, issue_date, due_date, net_gr, vat_gr, gross_gr,"
            " issued_at) VALUES (%s, %s, 'issued', 'PT', 2026, %s, '2026-01-01', '2026-01-31',"
            " current_date, current_date + 14, 1000, 80, 1080, now()) RETURNING invoice_no",
            (contract["contract_id"], customer_id, number),
        ).fetchone()
        assert invoice is not None
        return str(invoice["invoice_no"])

    return make


@pytest.fixture
def bare_customer(db: psycopg.Connection[psycopg.rows.DictRow]) -> tuple[int, str]:
    """A customer without an e-office account: (customer_id, customer_no)."""
    tag = uuid.uuid4().hex[:10]
    row = db.execute(
        "INSERT INTO customers (customer_no, kind, name, address, phone)"
        " VALUES (%s, 'person', %s, 'ul. Wodna 2', '+48500100300') RETURNING customer_id",
        (f"K-{tag}", f"Anna Test {tag}"),
    ).fetchone()
    assert row is not None
    return int(row["customer_id"]), f"K-{tag}"
