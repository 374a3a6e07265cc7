"""New-login notices through the portal's login form: the first login from a browser queues
one (to the login e-mail, legally required), the same browser again queues none."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient

from billing_engine.notify import devices
from meterflow.settings import Settings
from portal import create_app
from portal.db import close_pool
from portal.passwords import Hasher
from tests.notify.conftest import add_customer
from tests.portal.helpers import login

PASSWORD = "Kran-Wodny-2026!"
FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"


@pytest.fixture
def app(notify_db: str, tmp_path: Path) -> Iterator[Flask]:
    """The portal on the test's database."""
    settings = Settings(
        database_url=notify_db,
        data_dir=tmp_path,
        secret_key="test-secret-" + uuid.uuid4().hex,
        portal_cookie_secure=False,
    )
    flask_app = create_app(settings, TESTING=True, PASSWORD_HASH_PROFILE="fast")
    yield flask_app
    close_pool(flask_app)


@pytest.fixture
def email(notify_db: str) -> str:
    """The login e-mail of an active account of a new customer."""
    with psycopg.connect(notify_db) as conn:
        customer = add_customer(conn)
        address = f"jan-{uuid.uuid4().hex[:8]}@example.com"
        conn.execute(
            "INSERT INTO portal_accounts (email, password_hash, customer_id, status, created_by,"
            " email_verified_at, activated_at) VALUES (%s, %s, %s, 'active', 'self', now(),"
            " now())",
            (address, Hasher("fast").hash(PASSWORD), customer),
        )
    return address


def _notices(url: str) -> list[Any]:
    with psycopg.connect(url) as conn:
        return [
            r[0]
            for r in conn.execute(
                "SELECT payload FROM outbox WHERE kind = 'new_login' ORDER BY outbox_id"
            )
        ]


def _browser(app: Flask) -> FlaskClient:
    client = app.test_client()
    client.environ_base.update(HTTP_USER_AGENT=FIREFOX, REMOTE_ADDR="203.0.113.9")
    return client


def test_first_login_from_a_browser_queues_one_notice_and_the_second_none(
    app: Flask, email: str, notify_db: str
) -> None:
    browser = _browser(app)
    assert login(browser, email, PASSWORD).status_code == 302
    [notice] = _notices(notify_db)
    assert (notice["to"], notice["channel"]) == (email, "email")
    assert (notice["ip"], notice["device"]) == ("203.0.113.9", "Firefox, Windows")
    assert browser.get_cookie(devices.COOKIE) is not None
    assert login(browser, email, PASSWORD).status_code == 302
    assert len(_notices(notify_db)) == 1
    assert login(_browser(app), email, PASSWORD).status_code == 302
    assert len(_notices(notify_db)) == 2


def test_a_failed_login_queues_nothing(app: Flask, email: str, notify_db: str) -> None:
    assert login(_browser(app), email, "Wrong-Pass-123!").status_code == 200
    assert _notices(notify_db) == []


def test_the_device_cookie_is_bounded_and_unforgeable_without_the_secret() -> None:
    cookie = None
    for account_id in range(20):
        cookie = devices.remember(cookie, "s3cret", account_id)
    assert devices.known(cookie, "s3cret", 19) and not devices.known(cookie, "s3cret", 0)
    assert len(cookie.split(".")) == devices.MAX_TAGS
    assert not devices.known(cookie, "other-secret", 19)
    assert not devices.known("not-a-tag.zz", "s3cret", 19)
