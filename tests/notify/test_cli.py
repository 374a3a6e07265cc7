"""``meterflow notify log`` shows staff each delivery and its attempts; ``notify resend``
puts a dead or uncertain delivery back in the queue."""

from __future__ import annotations

import psycopg
import pytest

from meterflow.cli import main
from simulators.sms_gateway import SmsGateway
from simulators.smtp_sink import SmtpSink
from tests.notify.conftest import DEMAND, add_customer, add_notice, deliveries, make_worker


def test_log_and_resend(
    notify_db: str,
    sink: SmtpSink,
    gateway: SmsGateway,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sink.refuse.add("gone@example.pl")
    with psycopg.connect(notify_db) as conn:
        customer = add_customer(conn, email="gone@example.pl")
        notice = add_notice(conn, "payment_demand", customer, DEMAND)
    with make_worker(notify_db, sink, gateway) as worker:
        worker.run(once=True)
    monkeypatch.setenv("METERFLOW_DATABASE_URL", notify_db)

    assert main(["notify", "log", "--status", "dead"]) == 0
    listing = capsys.readouterr().out
    assert f"{notice:<7} payment_demand" in listing and "recipient refused: 550" in listing
    assert main(["notify", "log", "--outbox", str(notice)]) == 0
    assert "attempt 1: dead" in capsys.readouterr().out

    assert main(["notify", "resend", str(notice)]) == 0
    assert deliveries(notify_db)[(notice, "email")] == ("pending", 1)
    assert main(["notify", "resend", str(notice)]) == 1
