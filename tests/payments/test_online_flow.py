"""The whole online payment against the Przelewy24 sandbox, over real HTTP on loopback.

The portal runs in a real HTTP server (the sandbox POSTs its notifications there) and the
customer's browser is the Flask test client of the same app; the sandbox's payment page is
fetched over HTTP like a browser would, without following its redirect.
"""

from __future__ import annotations

import http.client
import socket
import threading
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from billing_engine.db import Conn
from billing_engine.p24 import P24Client, P24Config
from meterflow.errors import AuthError
from meterflow.settings import Settings
from portal import create_app
from portal.db import close_pool
from simulators.p24_sandbox import Registered, Sandbox
from tests.payments.conftest import PASSWORD
from tests.payments.helpers import allocations_of, payments_of
from tests.portal.helpers import csrf, login

MakeInvoice = Callable[[int, int, date], tuple[int, int]]


@dataclass
class Gateway:
    """The running sandbox and portal."""

    sandbox: Sandbox
    app: Flask
    settings: Settings


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def gateway(payments_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """The sandbox and the portal, each on its own loopback port."""
    settings = Settings(
        database_url=payments_db,
        data_dir=Path(tmp_path_factory.mktemp("payments-portal")),
        secret_key="test-" + uuid.uuid4().hex,
        portal_cookie_secure=False,
    )
    sandbox = Sandbox.from_settings(settings, late_delay_s=0.3)
    sandbox_server = sandbox.serve()
    port = _free_port()
    settings = settings.replace(
        p24_base_url=f"http://127.0.0.1:{sandbox_server.server_address[1]}",
        portal_base_url=f"http://127.0.0.1:{port}",
    )
    app = create_app(settings, TESTING=True, PASSWORD_HASH_PROFILE="fast")
    portal_server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=portal_server.serve_forever, daemon=True)
    thread.start()
    yield Gateway(sandbox, app, settings)
    portal_server.shutdown()
    sandbox_server.shutdown()
    sandbox_server.server_close()
    close_pool(app)


@pytest.fixture
def sandbox(gateway: Gateway) -> Iterator[Sandbox]:
    """The sandbox with no faults; faults a test sets are cleared after it."""
    gateway.sandbox.faults.clear()
    yield gateway.sandbox
    gateway.sandbox.wait_idle()
    gateway.sandbox.faults.clear()


@pytest.fixture
def payer(
    gateway: Gateway,
    make_customer: Callable[[], int],
    make_account: Callable[[int], str],
) -> tuple[int, FlaskClient]:
    """A customer logged in to the e-office: (customer id, browser)."""
    customer = make_customer()
    browser = gateway.app.test_client()
    response = login(browser, make_account(customer), PASSWORD)
    assert response.status_code == 302
    return customer, browser


def _start_payment(browser: FlaskClient, invoice_ids: list[int]) -> tuple[str, str]:
    """Post the pay form; return (gateway payment page URL, session id)."""
    token = csrf(browser, "/payments/pay")
    response = browser.post(
        "/payments/pay", data={"csrf_token": token, "invoice": [str(i) for i in invoice_ids]}
    )
    assert response.status_code == 303, response.get_data(as_text=True)
    url = response.headers["Location"]
    assert "/trnRequest/" in url
    return url, _session_of_latest(browser)


def _session_of_latest(browser: FlaskClient) -> str:
    app = browser.application
    settings: Settings = app.extensions["meterflow.settings"]
    assert settings.database_url
    with psycopg.connect(settings.database_url) as conn:
        row = conn.execute(
            "SELECT session_id FROM payment_transactions ORDER BY transaction_id DESC LIMIT 1"
        ).fetchone()
    assert row is not None
    return str(row[0])


def _pay_at_gateway(url: str) -> str:
    """Open the gateway's payment page like a browser; return where it redirects to."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    try:
        connection.request("GET", parts.path)
        response = connection.getresponse()
        assert response.status == 302
        return str(response.getheader("Location"))
    finally:
        connection.close()


def _state(conn: Conn, session_id: str) -> str:
    row = conn.execute(
        "SELECT state FROM payment_transactions WHERE session_id = %s", (session_id,)
    ).fetchone()
    assert row is not None
    return str(row[0])


def _refusals(conn: Conn, session_id: str) -> list[str]:
    rows = conn.execute(
        "SELECT reason FROM payment_refusals WHERE session_id = %s ORDER BY refusal_id",
        (session_id,),
    ).fetchall()
    return [str(r[0]) for r in rows]


def test_one_payment_settles_several_invoices(
    conn: Conn, sandbox: Sandbox, payer: tuple[int, FlaskClient], make_invoice: MakeInvoice
) -> None:
    customer, browser = payer
    first, charge1 = make_invoice(customer, 12345, date(2026, 2, 10))
    second, charge2 = make_invoice(customer, 6789, date(2026, 3, 10))
    assert "123,45" in browser.get("/payments/pay").get_data(as_text=True)
    url, session_id = _start_payment(browser, [first, second])
    back = _pay_at_gateway(url)
    assert back.endswith(f"/payments/return/{session_id}")
    page = browser.get(urllib.parse.urlsplit(back).path).get_data(as_text=True)
    assert 'data-state="booked"' in page
    assert payments_of(conn, customer) == [(-19134, f"p24:{session_id}")]
    assert allocations_of(conn, charge1) == 12345
    assert allocations_of(conn, charge2) == 6789
    assert [t.verified for t in sandbox.transactions.values() if t.session_id == session_id] == [
        True
    ]


def test_pay_page_lets_the_browser_follow_the_redirect_to_the_gateway(
    gateway: Gateway, payer: tuple[int, FlaskClient], make_invoice: MakeInvoice
) -> None:
    customer, browser = payer
    make_invoice(customer, 5000, date(2026, 2, 10))
    policy = browser.get("/payments/pay").headers["Content-Security-Policy"]
    origin = urllib.parse.urlsplit(gateway.settings.p24_base_url)
    assert f"form-action 'self' {origin.scheme}://{origin.netloc};" in policy


def test_repeated_notification_is_booked_once(
    conn: Conn, sandbox: Sandbox, payer: tuple[int, FlaskClient], make_invoice: MakeInvoice
) -> None:
    customer, browser = payer
    invoice, _ = make_invoice(customer, 5000, date(2026, 2, 10))
    sandbox.faults.add("repeat_notification")
    url, session_id = _start_payment(browser, [invoice])
    _pay_at_gateway(url)
    statuses = [d.status for d in sandbox.deliveries if d.session_id == session_id]
    assert statuses == [200, 200]
    assert payments_of(conn, customer) == [(-5000, f"p24:{session_id}")]
    assert _state(conn, session_id) == "booked"


def test_customer_back_before_the_notification_sees_it_being_confirmed(
    conn: Conn, sandbox: Sandbox, payer: tuple[int, FlaskClient], make_invoice: MakeInvoice
) -> None:
    customer, browser = payer
    invoice, charge = make_invoice(customer, 4200, date(2026, 2, 10))
    sandbox.faults.add("late_notification")
    url, session_id = _start_payment(browser, [invoice])
    back = urllib.parse.urlsplit(_pay_at_gateway(url)).path
    page = browser.get(back).get_data(as_text=True)
    assert 'data-state="registered"' in page and 'http-equiv="refresh"' in page
    sandbox.wait_idle()
    assert 'data-state="booked"' in browser.get(back).get_data(as_text=True)
    assert allocations_of(conn, charge) == 4200


def test_notification_with_a_wrong_amount_is_refused_and_logged(
    conn: Conn, sandbox: Sandbox, payer: tuple[int, FlaskClient], make_invoice: MakeInvoice
) -> None:
    customer, browser = payer
    invoice, _ = make_invoice(customer, 3000, date(2026, 2, 10))
    sandbox.faults.add("wrong_amount")
    url, session_id = _start_payment(browser, [invoice])
    _pay_at_gateway(url)
    assert [d.status for d in sandbox.deliveries if d.session_id == session_id] == [400]
    assert payments_of(conn, customer) == []
    assert _state(conn, session_id) == "registered"
    assert any("amount 3100" in reason for reason in _refusals(conn, session_id))


def test_notification_with_a_bad_signature_is_refused_and_logged(
    conn: Conn, sandbox: Sandbox, payer: tuple[int, FlaskClient], make_invoice: MakeInvoice
) -> None:
    customer, browser = payer
    invoice, _ = make_invoice(customer, 3000, date(2026, 2, 10))
    sandbox.faults.add("bad_signature")
    url, session_id = _start_payment(browser, [invoice])
    _pay_at_gateway(url)
    assert [d.status for d in sandbox.deliveries if d.session_id == session_id] == [400]
    assert payments_of(conn, customer) == []
    assert any("bad signature" in reason for reason in _refusals(conn, session_id))


def test_notification_of_an_unknown_session_is_refused(conn: Conn, gateway: Gateway) -> None:
    browser = gateway.app.test_client()
    stranger = Registered("no-such-session", 100, "PLN", "http://x/", "http://x/", "", 1)
    fake = gateway.sandbox.notification(stranger)
    assert browser.post("/payments/p24/status", json=fake).status_code == 400
    assert _refusals(conn, "no-such-session") == [
        "no transaction was registered with this session id"
    ]


def test_paying_another_customers_invoice_is_refused(
    payer: tuple[int, FlaskClient],
    make_customer: Callable[[], int],
    make_invoice: MakeInvoice,
) -> None:
    _, browser = payer
    foreign, _ = make_invoice(make_customer(), 1000, date(2026, 2, 10))
    token = csrf(browser, "/payments/pay")
    response = browser.post("/payments/pay", data={"csrf_token": token, "invoice": [str(foreign)]})
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/payments/pay")


def test_wrong_api_key_is_an_auth_error(gateway: Gateway) -> None:
    config = P24Config.from_settings(gateway.settings.replace(p24_api_key="wrong"))
    with pytest.raises(AuthError):
        P24Client(config).register(
            "s-1",
            100,
            description="x",
            email="a@b.pl",
            url_return="http://x",
            url_status="http://x",
        )
