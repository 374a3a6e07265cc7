"""Notices the billing scheduler writes: the daily queue-due job and the every-minute results
of remote readings on request, each queued once however often the job runs."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from billing_engine.jobs import queue_due_notices, remote_reading_results
from billing_engine.scheduler import add_jobs
from billing_engine.settlement import RunOptions
from tests.notify.conftest import add_customer

TODAY = date(2026, 11, 20)


def _outbox(url: str, kind: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT customer_id, payload FROM outbox WHERE kind = %s ORDER BY outbox_id", (kind,)
        ).fetchall()


def test_the_scheduler_runs_queue_due_daily_and_remote_results_every_minute(
    notify_db: str,
) -> None:
    scheduler = BackgroundScheduler()
    add_jobs(scheduler, notify_db, RunOptions())
    jobs = {job.id: job.trigger for job in scheduler.get_jobs()}
    daily, minutely = jobs["notify_queue_due"], jobs["remote_reading_results"]
    assert isinstance(daily, CronTrigger) and isinstance(minutely, CronTrigger)
    fields = {f.name: str(f) for f in daily.fields}
    assert (fields["hour"], fields["minute"], fields["day"]) == ("6", "30", "*")
    assert {f.name: str(f) for f in minutely.fields}["minute"] == "*"


def test_queue_due_job_run_twice_queues_each_notice_once(notify_db: str) -> None:
    with psycopg.connect(notify_db) as conn:
        customer = add_customer(conn)
        conn.execute(
            "INSERT INTO ledger_entries (customer_id, kind, amount_gr, booked_on, due_date,"
            " reference) VALUES (%s, 'charge', 10000, %s, %s, 'FV/1/2026')",
            (customer, TODAY - timedelta(days=20), TODAY - timedelta(days=5)),
        )
    first = queue_due_notices(notify_db, TODAY)
    second = queue_due_notices(notify_db, TODAY)
    assert first.ran and first.detail == {"overdue_reminders": 1, "contract_endings": 0}
    assert second.ran and second.detail == {"overdue_reminders": 0, "contract_endings": 0}
    assert len(_outbox(notify_db, "overdue_reminder")) == 1


def _request(conn: psycopg.Connection[Any], customer: int, meter: str, at: datetime) -> str:
    request_id = str(uuid.uuid4())
    conn.execute(
        "INSERT INTO remote_read_requests (request_id, customer_id, meter_id, gateway_id,"
        " requested_at, status) VALUES (%s, %s, %s, 'gw-1', %s, 'sent')",
        (request_id, customer, meter, at),
    )
    return request_id


def _reading(conn: psycopg.Connection[Any], meter: str, read_at: datetime, value: str) -> None:
    conn.execute(
        "INSERT INTO readings (meter_id, read_at, storage, tariff, subunit, quantity, function,"
        " unit, value, received_at, gateway_id) VALUES (%s, %s, 0, 0, 0, 'volume',"
        " 'instantaneous', 'm3', %s, %s, 'gw-1')",
        (meter, read_at, value, read_at),
    )


def test_an_answered_remote_request_gets_one_result_notice(notify_db: str) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    with psycopg.connect(notify_db) as conn:
        conn.execute("SELECT ensure_time_partitions()")
        customer = add_customer(conn)
        for meter in ("KAM-1", "KAM-2"):
            conn.execute(
                "INSERT INTO meters (meter_id, manufacturer, serial) VALUES (%s, 'KAM', %s)",
                (meter, meter),
            )
        _reading(conn, "KAM-1", now - timedelta(hours=2), "120.000")
        answered = _request(conn, customer, "KAM-1", now - timedelta(minutes=5))
        _request(conn, customer, "KAM-2", now - timedelta(minutes=5))
        _reading(conn, "KAM-1", now - timedelta(minutes=1), "123.456")
    first = remote_reading_results(notify_db, now)
    again = remote_reading_results(notify_db, now + timedelta(minutes=1))
    assert (first.detail, again.detail) == ({"results": 1}, {"results": 0})
    [(to, payload)] = _outbox(notify_db, "remote_reading_result")
    assert to == customer
    assert payload["request_id"] == answered
    assert (payload["meter_id"], payload["value_m3"]) == ("KAM-1", "123.456")
    assert datetime.fromisoformat(payload["read_at"]) == now - timedelta(minutes=1)
