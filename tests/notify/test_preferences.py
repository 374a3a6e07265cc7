"""Consent per kind and channel, legally required notices, and the unsubscribe link
(signed token, confirmation page, RFC 8058 one-click POST) in the real portal app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from flask import Flask

from billing_engine.notify import store
from billing_engine.notify.preferences import (
    consents,
    read_unsubscribe_token,
    set_consent,
    unsubscribe_token,
)
from meterflow.errors import AuthError, BillingError
from meterflow.settings import Settings
from portal import create_app
from portal.db import close_pool
from simulators.sms_gateway import SmsGateway
from simulators.smtp_sink import SmtpSink
from tests.notify.conftest import (
    ANNOUNCEMENT,
    DEMAND,
    SECRET,
    add_customer,
    add_notice,
    deliveries,
    make_worker,
)


def _route(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        store.route(conn, 100)


def test_deliveries_follow_consent_and_the_law(notify_db: str) -> None:
    with psycopg.connect(notify_db) as conn:
        default = add_customer(conn)
        opted_out = add_customer(conn)
        both = add_customer(conn)
        no_email = add_customer(conn, email=None)
        conn.execute(
            "INSERT INTO notification_preferences (customer_id, kind, by_email, by_sms) VALUES"
            " (%s, 'announcement', false, false), (%s, 'announcement', true, true),"
            " (%s, 'payment_demand', false, false)",
            (opted_out, both, opted_out),
        )
        n_default = add_notice(conn, "announcement", default, ANNOUNCEMENT)
        n_out = add_notice(conn, "announcement", opted_out, ANNOUNCEMENT)
        n_both = add_notice(conn, "announcement", both, ANNOUNCEMENT)
        n_required = add_notice(conn, "payment_demand", opted_out, DEMAND)
        n_no_email = add_notice(conn, "announcement", no_email, ANNOUNCEMENT)
        n_letter = add_notice(
            conn, "portal_initial_password", default, {"channel": "letter", "to": "ul. Wodna 1"}
        )
    _route(notify_db)
    assert deliveries(notify_db) == {
        (n_default, "email"): ("pending", 0),
        (n_both, "email"): ("pending", 0),
        (n_both, "sms"): ("pending", 0),
        (n_required, "email"): ("pending", 0),
        (n_no_email, "email"): ("skipped", 0),
        (n_letter, "letter"): ("skipped", 0),
    }
    assert n_out not in {key[0] for key in deliveries(notify_db)}


def test_consents_show_defaults_and_refuse_to_turn_off_required_kinds(notify_db: str) -> None:
    with psycopg.connect(notify_db) as conn:
        customer = add_customer(conn)
        set_consent(conn, customer, "invoice_issued", "sms", True)
        choices = consents(conn, customer)
        with pytest.raises(BillingError, match="required by law"):
            set_consent(conn, customer, "payment_demand", "email", False)
    assert choices[("invoice_issued", "sms")] is True
    assert choices[("invoice_issued", "email")] is True
    assert choices[("announcement", "sms")] is False
    assert ("payment_demand", "email") not in choices


def test_tokens_are_signed() -> None:
    token = unsubscribe_token(SECRET, 7, "announcement", "sms")
    choice = read_unsubscribe_token(SECRET, token)
    assert (choice.customer_id, choice.kind, choice.channel) == (7, "announcement", "sms")
    with pytest.raises(AuthError):
        read_unsubscribe_token("another secret", token)
    with pytest.raises(AuthError):
        read_unsubscribe_token(SECRET, token[:-2] + "xx")


@pytest.fixture
def portal(notify_db: str, tmp_path: Path) -> Iterator[Flask]:
    """The portal app on the test's database, signing with the sender's secret."""
    settings = Settings(
        database_url=notify_db, data_dir=tmp_path, secret_key=SECRET, portal_cookie_secure=False
    )
    app = create_app(settings, TESTING=True, PASSWORD_HASH_PROFILE="fast")
    yield app
    close_pool(app)


def test_the_link_in_the_mail_unsubscribes_in_one_click(
    notify_db: str, sink: SmtpSink, gateway: SmsGateway, portal: Flask
) -> None:
    with psycopg.connect(notify_db) as conn:
        customer = add_customer(conn)
        add_notice(conn, "announcement", customer, ANNOUNCEMENT)
    with make_worker(notify_db, sink, gateway) as worker:
        worker.run(once=True)
    [mail] = sink.messages()
    link = str(mail["List-Unsubscribe"]).strip("<>").removeprefix("http://portal.test")
    assert link in mail.get_body(("plain",)).get_content()
    client = portal.test_client()

    page = client.get(link)
    assert page.status_code == 200 and "e-komunikat" in page.get_data(as_text=True)
    with psycopg.connect(notify_db) as conn:
        assert consents(conn, customer)[("announcement", "email")] is True

    done = client.post(link, data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200
    with psycopg.connect(notify_db) as conn:
        assert consents(conn, customer)[("announcement", "email")] is False
        later = add_notice(conn, "announcement", customer, ANNOUNCEMENT)
    _route(notify_db)
    assert later not in {key[0] for key in deliveries(notify_db)}


def test_bad_or_required_links_change_nothing(portal: Flask, notify_db: str) -> None:
    with psycopg.connect(notify_db) as conn:
        customer = add_customer(conn)
    client = portal.test_client()
    forged = unsubscribe_token("not the secret", customer, "announcement", "email")
    assert client.post(f"/unsubscribe/{forged}").status_code == 404
    required = unsubscribe_token(SECRET, customer, "payment_demand", "email")
    assert client.post(f"/unsubscribe/{required}").status_code == 400
    with psycopg.connect(notify_db) as conn:
        rows = conn.execute("SELECT count(*) FROM notification_preferences").fetchone()
    assert rows == (0,)
