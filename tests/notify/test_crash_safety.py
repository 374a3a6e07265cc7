"""The sender killed (SIGKILL) right after a send and before marking it, then restarted:
the customer receives exactly one message on each channel.

E-mail: the interrupted delivery becomes 'uncertain' (SMTP cannot be asked whether the mail
arrived, so it is not resent blindly); SMS: it is resent under the same idempotency key and
the gateway refuses the duplicate. Notices claimed but not started go out after the restart.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import psycopg

from simulators.sms_gateway import SmsGateway
from simulators.smtp_sink import SmtpSink
from tests.notify.conftest import (
    ANNOUNCEMENT,
    DEMAND,
    MAIL_FROM,
    SECRET,
    add_customer,
    add_notice,
    deliveries,
    make_worker,
)


def _sender(url: str, sink: SmtpSink, gateway: SmsGateway, crash: str | None) -> int:
    env = {
        **os.environ,
        "METERFLOW_DATABASE_URL": url,
        "METERFLOW_NOTIFY_SMTP_URL": f"smtp://127.0.0.1:{sink.port}",
        "METERFLOW_NOTIFY_SMS_URL": gateway.url,
        "METERFLOW_NOTIFY_SMS_TOKEN": "test-token",
        "METERFLOW_NOTIFY_RETRY_BASE_S": "0",
        # One lane: the kill lands after exactly one send (with L lanes, up to L in flight).
        "METERFLOW_NOTIFY_LANES": "1",
        "METERFLOW_SECRET_KEY": SECRET,
        "METERFLOW_LOG_LEVEL": "WARNING",
    }
    env.pop("METERFLOW_NOTIFY_TEST_CRASH_AFTER_SEND", None)
    if crash:
        env["METERFLOW_NOTIFY_TEST_CRASH_AFTER_SEND"] = crash
    done = subprocess.run(
        [sys.executable, "-m", "meterflow", "notify", "send", "--once"],
        env=env,
        capture_output=True,
        timeout=120,
    )
    return done.returncode


def test_killed_between_send_and_mark_the_customer_gets_one_message(
    notify_db: str, sink: SmtpSink, gateway: SmsGateway
) -> None:
    with psycopg.connect(notify_db) as conn:
        customer = add_customer(conn)
        conn.execute(
            "INSERT INTO notification_preferences (customer_id, kind, by_email, by_sms)"
            " VALUES (%s, 'announcement', true, true)",
            (customer,),
        )
        first = add_notice(conn, "announcement", customer, ANNOUNCEMENT)
        second = add_notice(conn, "announcement", customer, {**ANNOUNCEMENT, "title": "Drugi"})

    assert _sender(notify_db, sink, gateway, crash="email") == -signal.SIGKILL
    assert sink.count == 1 and gateway.messages == []
    assert deliveries(notify_db)[(first, "email")] == ("sending", 1)

    assert _sender(notify_db, sink, gateway, crash="sms") == -signal.SIGKILL
    assert len(gateway.messages) == 1
    assert _sender(notify_db, sink, gateway, crash=None) == 0

    assert sink.count == 2
    assert [sink.copies(f"<mf-{n}-email@localhost>") for n in (first, second)] == [1, 1]
    assert [m["idx"] for m in gateway.messages] == [f"mf-{first}-sms", f"mf-{second}-sms"]
    assert deliveries(notify_db) == {
        (first, "email"): ("uncertain", 1),
        (second, "email"): ("sent", 1),
        (first, "sms"): ("sent", 2),
        (second, "sms"): ("sent", 1),
    }
    with psycopg.connect(notify_db) as conn:
        log = conn.execute(
            "SELECT outbox_id, channel, attempt, status FROM notify_attempts"
            " WHERE outbox_id = %s ORDER BY attempt_id",
            (first,),
        ).fetchall()
    assert log == [
        (first, "email", 1, "uncertain"),
        (first, "sms", 1, "failed"),
        (first, "sms", 2, "duplicate"),
    ]


def test_after_a_database_restart_claims_of_dead_workers_count_as_maybe_sent(
    notify_db: str, sink: SmtpSink, gateway: SmsGateway
) -> None:
    with psycopg.connect(notify_db) as conn:
        customer = add_customer(conn)
        before = add_notice(conn, "announcement", customer, ANNOUNCEMENT)
        after = add_notice(conn, "announcement", customer, ANNOUNCEMENT)
        # Claimed by worker 4242 (dead: nobody holds its lock); 'before' was claimed before
        # the server last started, so its asynchronously committed marks may have been lost.
        conn.execute(
            "INSERT INTO notify_deliveries (outbox_id, channel, address, status, worker_id,"
            " claimed_at) VALUES"
            " (%(b)s, 'email', 'jan@example.pl', 'claimed', 4242, '2000-01-01'),"
            " (%(b)s, 'sms', '500100200', 'claimed', 4242, '2000-01-01'),"
            " (%(a)s, 'email', 'jan@example.pl', 'claimed', 4242, now())",
            {"b": before, "a": after},
        )
        conn.execute("UPDATE outbox SET routed_at = now()")
    with make_worker(notify_db, sink, gateway) as worker:
        assert (worker.counts.recovered, worker.counts.uncertain) == (2, 1)
        worker.run(once=True)
    assert deliveries(notify_db) == {
        (before, "email"): ("uncertain", 1),
        (before, "sms"): ("sent", 2),
        (after, "email"): ("sent", 1),
    }
    assert sink.count == 1 and len(gateway.messages) == 1


# A sender whose e-mail channel kills the process right after its N-th send returns.
_DYING_SENDER = """
import os, signal, sys
from billing_engine.notify.smtp import SmtpChannel, SmtpConfig
from billing_engine.notify.worker import Worker, WorkerConfig

url, port, after, sender = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]

class Dying(SmtpChannel):
    sent = 0

    def send(self, message):
        result = super().send(message)
        Dying.sent += 1
        if Dying.sent == after:
            os.kill(os.getpid(), signal.SIGKILL)
        return result

def channels():
    return [Dying(SmtpConfig.from_url(f"smtp://127.0.0.1:{port}"), sender)]

with Worker(url, channels, WorkerConfig(lanes=1)) as worker:
    worker.run(once=True)
"""


def test_killed_in_the_middle_of_a_batch_the_attempt_log_is_rewritten(
    notify_db: str, sink: SmtpSink, gateway: SmsGateway
) -> None:
    with psycopg.connect(notify_db) as conn:
        customer = add_customer(conn, phone=None)
        notices = [add_notice(conn, "payment_demand", customer, DEMAND) for _ in range(6)]
    args = [notify_db, str(sink.port), "5", MAIL_FROM]
    done = subprocess.run([sys.executable, "-c", _DYING_SENDER, *args], timeout=120)
    assert done.returncode == -signal.SIGKILL
    assert sink.count == 5
    with psycopg.connect(notify_db) as conn:
        # The four sent before the fifth wait for their attempt log (written in groups).
        assert conn.execute("SELECT count(*) FROM notify_attempts").fetchone() == (0,)
    states = deliveries(notify_db)
    assert [states[(n, "email")][0] for n in notices] == ["sent"] * 4 + ["sending", "claimed"]

    with make_worker(notify_db, sink, gateway) as worker:
        assert (worker.counts.recovered, worker.counts.uncertain) == (1, 1)
        worker.run(once=True)
    ids = [f"<mf-{n}-email@mpwik.example>" for n in notices]
    assert [sink.copies(message_id) for message_id in ids] == [1] * 6
    states = deliveries(notify_db)
    assert [states[(n, "email")] for n in notices] == [("sent", 1)] * 4 + [
        ("uncertain", 1),
        ("sent", 1),
    ]
    with psycopg.connect(notify_db) as conn:
        log = conn.execute(
            "SELECT a.outbox_id, a.attempt, a.status, a.provider_id, o.sent_at IS NOT NULL"
            " FROM notify_attempts a JOIN outbox o USING (outbox_id) ORDER BY a.outbox_id"
        ).fetchall()
    assert log == [
        *((n, 1, "sent", ids[i], True) for i, n in enumerate(notices[:4])),
        (notices[4], 1, "uncertain", None, False),
        (notices[5], 1, "sent", ids[5], True),
    ]
