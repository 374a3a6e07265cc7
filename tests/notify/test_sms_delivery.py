"""SMS through the SMSAPI-style adapter to the gateway simulator: delivery, retries with a
dead state after the last one, permanent refusals, and the gateway's idempotency key."""

from __future__ import annotations

import psycopg
import pytest

from billing_engine.notify.channels import DeliveryError, Outgoing
from billing_engine.notify.sms import SmsapiChannel, msisdn
from simulators.sms_gateway import SmsGateway
from simulators.smtp_sink import SmtpSink
from tests.notify.conftest import ANNOUNCEMENT, add_customer, add_notice, deliveries, make_worker


def _sms_customer(conn: psycopg.Connection[object], phone: str = "500100200") -> int:
    customer = add_customer(conn, email=None, phone=phone)
    conn.execute(
        "INSERT INTO notification_preferences (customer_id, kind, by_email, by_sms)"
        " VALUES (%s, 'announcement', false, true)",
        (customer,),
    )
    return customer


def test_sms_is_delivered_with_the_short_text(
    notify_db: str, sink: SmtpSink, gateway: SmsGateway
) -> None:
    with psycopg.connect(notify_db) as conn:
        notice = add_notice(conn, "announcement", _sms_customer(conn), ANNOUNCEMENT)
    with make_worker(notify_db, sink, gateway) as worker:
        worker.run(once=True)
    [message] = gateway.to("48500100200")
    assert message["message"] == (
        "MPWiK: Woda niezdatna do picia: Woda niezdatna do picia, "
        "21.11.2026 11:00 – 22.11.2026 11:00."
    )
    assert message["idx"] == f"mf-{notice}-sms" and message["from"] == "MPWiK"
    assert deliveries(notify_db) == {(notice, "sms"): ("sent", 1)}
    assert sink.count == 0


def test_gateway_failures_are_retried_then_sent(
    notify_db: str, sink: SmtpSink, gateway: SmsGateway
) -> None:
    gateway.fail_next = 2
    with psycopg.connect(notify_db) as conn:
        notice = add_notice(conn, "announcement", _sms_customer(conn), ANNOUNCEMENT)
    with make_worker(notify_db, sink, gateway) as worker:
        counts = worker.run(once=True)
    assert (counts.failed, counts.sent) == (2, 1)
    assert deliveries(notify_db) == {(notice, "sms"): ("sent", 3)}
    assert len(gateway.to("48500100200")) == 1


def test_after_the_last_attempt_the_delivery_is_dead(
    notify_db: str, sink: SmtpSink, gateway: SmsGateway
) -> None:
    gateway.error_next = 10  # error 103: no credits, a temporary refusal
    with psycopg.connect(notify_db) as conn:
        notice = add_notice(conn, "announcement", _sms_customer(conn), ANNOUNCEMENT)
    with make_worker(notify_db, sink, gateway) as worker:
        counts = worker.run(once=True)
    assert (counts.failed, counts.dead) == (2, 1)
    assert deliveries(notify_db) == {(notice, "sms"): ("dead", 3)}
    with psycopg.connect(notify_db) as conn:
        statuses = conn.execute("SELECT status FROM notify_attempts ORDER BY attempt_id").fetchall()
    assert [s for (s,) in statuses] == ["failed", "failed", "dead"]
    assert gateway.messages == []


def test_a_bad_number_is_dead_at_once(notify_db: str, sink: SmtpSink, gateway: SmsGateway) -> None:
    with psycopg.connect(notify_db) as conn:
        notice = add_notice(conn, "announcement", _sms_customer(conn, "12"), ANNOUNCEMENT)
    with make_worker(notify_db, sink, gateway) as worker:
        worker.run(once=True)
    assert deliveries(notify_db) == {(notice, "sms"): ("dead", 1)}
    assert gateway.requests == 0


def test_the_gateway_refuses_a_second_message_under_the_same_key(gateway: SmsGateway) -> None:
    channel = SmsapiChannel(gateway.url, "test-token", "MPWiK")
    message = Outgoing("mf-9-sms", "+48 500 100 200", "", "Test")
    try:
        first = channel.send(message)
        second = channel.send(message)
    finally:
        channel.close()
    assert first.provider_id is not None and not first.duplicate
    assert second.duplicate
    assert len(gateway.to("48500100200")) == 1


def test_a_wrong_token_is_temporary(gateway: SmsGateway) -> None:
    channel = SmsapiChannel(gateway.url, "wrong", "MPWiK")
    with pytest.raises(DeliveryError) as refused:
        channel.send(Outgoing("mf-1-sms", "500100200", "", "Test"))
    channel.close()
    assert not refused.value.permanent


@pytest.mark.parametrize(
    ("phone", "expected"),
    [
        ("500 100 200", "48500100200"),
        ("+48 500-100-200", "48500100200"),
        ("0049301234567", "49301234567"),
    ],
)
def test_phone_numbers_are_normalised(phone: str, expected: str) -> None:
    assert msisdn(phone) == expected
