"""Per-channel rate limits (token buckets on a frozen clock) and the back-off policy."""

from __future__ import annotations

import random
from datetime import timedelta

import psycopg

from billing_engine.notify.rate import RetryPolicy, TokenBucket
from simulators.sms_gateway import SmsGateway
from simulators.smtp_sink import SmtpSink
from tests.notify.conftest import DEMAND, add_customer, add_notice, make_worker


class Clock:
    """A clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_a_burst_then_refills_with_time() -> None:
    clock = Clock()
    bucket = TokenBucket(2, burst=4, clock=clock)
    assert bucket.available() == 4
    bucket.take(4)
    assert bucket.available() == 0 and bucket.wait_s() == 0.5
    clock.now += 1.0
    assert bucket.available() == 2
    clock.now += 100.0
    assert bucket.available() == 4


def test_a_step_sends_no_more_than_the_channel_allows(
    notify_db: str, sink: SmtpSink, gateway: SmsGateway
) -> None:
    clock = Clock()
    with psycopg.connect(notify_db) as conn:
        customer = add_customer(conn)
        for _ in range(5):
            add_notice(conn, "payment_demand", customer, DEMAND)
    limits = {"email": TokenBucket(1, burst=3, clock=clock)}
    with make_worker(notify_db, sink, gateway, limits=limits) as worker:
        progressed, _ = worker.step()
        assert progressed and sink.count == 3
        progressed, wait_s = worker.step()
        assert not progressed and wait_s == 1.0 and sink.count == 3
        clock.now += 2.0
        worker.step()
        assert sink.count == 5


def test_back_off_doubles_with_jitter_and_is_capped() -> None:
    policy = RetryPolicy(max_attempts=4, base_s=60, cap_s=300)
    rng = random.Random(1)
    delays = [policy.delay(n, rng) for n in (1, 2, 3, 4)]
    assert timedelta(seconds=30) <= delays[0] <= timedelta(seconds=60)
    assert timedelta(seconds=60) <= delays[1] <= timedelta(seconds=120)
    assert timedelta(seconds=120) <= delays[2] <= timedelta(seconds=240)
    assert timedelta(seconds=150) <= delays[3] <= timedelta(seconds=300)
    assert not policy.gives_up(3) and policy.gives_up(4)


def test_a_failed_delivery_waits_for_its_back_off(
    notify_db: str, sink: SmtpSink, gateway: SmsGateway
) -> None:
    sink.fail_next = 1
    with psycopg.connect(notify_db) as conn:
        notice = add_notice(conn, "payment_demand", add_customer(conn), DEMAND)
    with make_worker(notify_db, sink, gateway, policy=RetryPolicy(base_s=3600)) as worker:
        counts = worker.run(once=True)
    assert (counts.failed, counts.sent) == (1, 0)
    with psycopg.connect(notify_db) as conn:
        row = conn.execute(
            "SELECT status, next_attempt_at - now() > interval '29 minutes'"
            " FROM notify_deliveries WHERE outbox_id = %s",
            (notice,),
        ).fetchone()
    assert row == ("pending", True)
