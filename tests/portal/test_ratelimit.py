"""Rate limits live in PostgreSQL: they hold across app instances (gunicorn workers) and
slow an attacker down without locking the customer out."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient

from meterflow.settings import Settings
from portal import create_app
from portal.db import close_pool
from portal.ratelimit import Limit, purge_old
from tests.portal.helpers import Account, login, post_form

# A day-long window, so no window boundary falls inside a test.
STRICT = {
    "login": (Limit(3, 86_400), Limit(6, 86_400)),
    "register": (Limit(2, 86_400), Limit(3, 86_400)),
    "reset": (Limit(2, 86_400), Limit(4, 86_400)),
    "staff_login": (Limit(3, 86_400), Limit(6, 86_400)),
}


@pytest.fixture(scope="module")
def workers(portal_settings: Settings) -> Iterator[tuple[Flask, Flask]]:
    """Two independent app instances on one database, as two gunicorn workers would be."""
    apps = tuple(
        create_app(portal_settings, PASSWORD_HASH_PROFILE="fast", RATE_LIMITS=STRICT)
        for _ in range(2)
    )
    yield apps[0], apps[1]
    for app in apps:
        close_pool(app)


def browser(app: Flask, ip: str) -> FlaskClient:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = ip
    return client


def fresh_ip() -> str:
    n = uuid.uuid4().int
    return f"10.{n % 250}.{(n >> 8) % 250}.{(n >> 16) % 250 + 1}"


def test_login_limit_holds_across_two_app_instances(
    workers: tuple[Flask, Flask], customer_account: Account
) -> None:
    ip = fresh_ip()
    first, second = browser(workers[0], ip), browser(workers[1], ip)
    for client in (first, second, first):
        assert login(client, customer_account.email, "Wrong-Pass-1!").status_code == 200
    refused = login(second, customer_account.email, customer_account.password)
    assert refused.status_code == 429
    assert 0 < int(refused.headers["Retry-After"]) <= 86_400
    assert "Zbyt wiele prób" in refused.get_data(as_text=True)
    assert second.get("/account").status_code == 302


def test_an_attacker_cannot_lock_the_customer_out(
    workers: tuple[Flask, Flask], customer_account: Account
) -> None:
    attacker = browser(workers[0], fresh_ip())
    for _ in range(4):
        login(attacker, customer_account.email, "Guess-Pass-1!")
    assert login(attacker, customer_account.email, "Guess-Pass-1!").status_code == 429
    customer = browser(workers[1], fresh_ip())
    response = login(customer, customer_account.email, customer_account.password)
    assert response.status_code == 302
    assert customer.get("/account").status_code == 200


def test_one_address_trying_many_emails_is_limited_per_ip(workers: tuple[Flask, Flask]) -> None:
    ip = fresh_ip()
    statuses = [
        login(
            browser(workers[i % 2], ip),
            f"user{i}-{uuid.uuid4().hex[:6]}@example.com",
            "Guess-Pass-1!",
        ).status_code
        for i in range(7)
    ]
    assert statuses == [200] * 6 + [429]


def test_reset_limit_answers_the_same_for_known_and_unknown_addresses(
    workers: tuple[Flask, Flask], customer_account: Account
) -> None:
    for email in (customer_account.email, f"nobody-{uuid.uuid4().hex[:6]}@example.com"):
        client = browser(workers[0], fresh_ip())
        codes = [
            post_form(client, "/password/forgot", {"email": email}).status_code for _ in range(3)
        ]
        assert codes == [302, 302, 429]


def test_registration_is_limited(workers: tuple[Flask, Flask]) -> None:
    client = browser(workers[1], fresh_ip())
    data = {
        "password": "Licznik-Wody-42",
        "password_again": "Licznik-Wody-42",
        "customer_no": "K-1",
        "invoice_no": "FV/1/2026",
        "accept_terms": "y",
        "accept_privacy": "y",
    }
    codes = [
        post_form(
            client, "/register", {**data, "email": f"r{i}-{uuid.uuid4().hex[:6]}@example.com"}
        ).status_code
        for i in range(4)
    ]
    assert codes == [302, 302, 302, 429]


def test_old_counters_are_purged(db: psycopg.Connection[psycopg.rows.DictRow]) -> None:
    db.execute(
        "INSERT INTO rate_limits (bucket, window_start) VALUES"
        " ('test:old', now() - interval '2 days'), ('test:new', now())"
    )
    assert purge_old(db) >= 1
    left = db.execute("SELECT bucket FROM rate_limits WHERE bucket LIKE 'test:%'").fetchall()
    assert [r["bucket"] for r in left] == ["test:new"]
