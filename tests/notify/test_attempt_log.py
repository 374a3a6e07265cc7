"""The attempt log and ``outbox.sent_at``: sent deliveries are logged in groups (one statement
per message marks state only), every other result at once; after a run nothing is missing."""

from __future__ import annotations

import psycopg

from billing_engine.notify.store import LOG_EVERY
from simulators.sms_gateway import SmsGateway
from simulators.smtp_sink import SmtpSink
from tests.notify.conftest import DEMAND, add_customer, add_notice, deliveries, make_worker


def test_every_attempt_is_logged_across_groups_lanes_and_refusals(
    notify_db: str, sink: SmtpSink, gateway: SmsGateway
) -> None:
    count = 2 * LOG_EVERY + 7
    with psycopg.connect(notify_db) as conn:
        notices = [
            add_notice(conn, "payment_demand", add_customer(conn, email=f"k{i}@example.pl"), DEMAND)
            for i in range(count)
        ]
    refused = {notices[i]: f"k{i}@example.pl" for i in (3, LOG_EVERY, count - 1)}
    sink.refuse = set(refused.values())
    with make_worker(notify_db, sink, gateway, lanes=2, batch_size=count) as worker:
        counts = worker.run(once=True)
    assert (counts.sent, counts.dead) == (count - 3, 3)

    expected = {n: "dead" if n in refused else "sent" for n in notices}
    states = deliveries(notify_db)
    assert {n: states[(n, "email")][0] for n in notices} == expected
    assert {(n, "sms") for n in notices}.isdisjoint(states)
    with psycopg.connect(notify_db) as conn:
        log = conn.execute(
            "SELECT a.outbox_id, a.attempt, a.status, o.sent_at IS NOT NULL"
            " FROM notify_attempts a JOIN outbox o USING (outbox_id)"
        ).fetchall()
    assert sorted(log) == [(n, 1, expected[n], expected[n] == "sent") for n in notices]
    assert sink.count == count - 3
