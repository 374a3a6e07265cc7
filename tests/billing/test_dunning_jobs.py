"""Reminders, payment demands and interest notes in the store: written once, with notices."""

from __future__ import annotations

from datetime import date

import psycopg
from apscheduler.schedulers.background import BackgroundScheduler

from billing_engine.dunning_jobs import (
    issue_interest_notes,
    send_demands,
    send_reminders,
    sync_reference_rates,
)
from billing_engine.interest import interest_for
from billing_engine.jobs import demand, ensure_partitions, prune_job_runs, remind
from billing_engine.model import DunningPolicy
from billing_engine.scheduler import add_jobs
from billing_engine.settlement import RunOptions, settle
from tests.billing.conftest import NOW, make_fleet

POLICY = DunningPolicy()
DUE = date(2026, 11, 17)  # issued on 3 November, due 14 days later


def _charges(url: str) -> list[tuple[int, int, int]]:
    make_fleet(url, 3)
    settle(url, "2026-10", options=RunOptions(now=NOW))
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT entry_id, customer_id, amount_gr FROM ledger_entries ORDER BY 1"
        ).fetchall()
    return [(int(r[0]), int(r[1]), int(r[2])) for r in rows]


def _pay(
    conn: psycopg.Connection[tuple[object, ...]], charge: tuple[int, int, int], on: date
) -> None:
    charge_id, customer_id, amount = charge
    row = conn.execute(
        "INSERT INTO ledger_entries (customer_id, kind, amount_gr, booked_on, reference)"
        " VALUES (%s, 'payment', %s, %s, %s) RETURNING entry_id",
        (customer_id, -amount, on, f"pay-{charge_id}"),
    ).fetchone()
    assert row is not None
    conn.execute(
        "INSERT INTO payment_allocations (payment_id, charge_id, amount_gr, settled_on)"
        " VALUES (%s, %s, %s, %s)",
        (row[0], charge_id, amount, on),
    )


def _outbox(conn: psycopg.Connection[tuple[object, ...]], kind: str) -> list[dict[str, object]]:
    rows = conn.execute("SELECT payload FROM outbox WHERE kind = %s ORDER BY 1", (kind,))
    return [r[0] for r in rows.fetchall()]  # type: ignore[misc]


def test_reminders_go_out_once_shortly_before_the_due_date(billing_db: str) -> None:
    charges = _charges(billing_db)
    with psycopg.connect(billing_db, autocommit=True) as conn:
        _pay(conn, charges[0], date(2026, 11, 5))
        assert send_reminders(conn, date(2026, 11, 10), POLICY) == 0
        assert send_reminders(conn, date(2026, 11, 15), POLICY) == 2
        assert send_reminders(conn, date(2026, 11, 16), POLICY) == 0
        notices = _outbox(conn, "payment_reminder")
    assert len(notices) == 2
    assert {n["amount_gr"] for n in notices} == {c[2] for c in charges[1:]}
    assert all(n["due_date"] == DUE.isoformat() for n in notices)


def test_demands_follow_overdue_days_and_are_not_repeated(billing_db: str) -> None:
    charges = _charges(billing_db)
    with psycopg.connect(billing_db, autocommit=True) as conn:
        _pay(conn, charges[0], date(2026, 11, 20))
        assert send_demands(conn, date(2026, 11, 30), POLICY) == 0
        assert send_demands(conn, date(2026, 12, 1), POLICY) == 2
        assert send_demands(conn, date(2026, 12, 2), POLICY) == 0
        notices = _outbox(conn, "payment_demand")
        demands = conn.execute("SELECT count(*), min(pay_by) FROM payment_demands").fetchone()
    assert demands == (2, date(2026, 12, 8))
    assert sorted(int(str(n["overdue_gr"])) for n in notices) == sorted(c[2] for c in charges[1:])


def test_interest_note_for_a_late_payment_books_interest_once(billing_db: str) -> None:
    charges = _charges(billing_db)
    paid_on = date(2026, 12, 10)
    with psycopg.connect(billing_db, autocommit=True) as conn:
        _pay(conn, charges[0], date(2026, 11, 10))
        _pay(conn, charges[1], paid_on)
        rates = sync_reference_rates(conn)
        made = issue_interest_notes(conn, date(2026, 12, 1), date(2027, 1, 2), POLICY)
        again = issue_interest_notes(conn, date(2026, 12, 1), date(2027, 1, 2), POLICY)
        note = conn.execute(
            "SELECT n.customer_id, n.amount_gr, e.amount_gr, e.kind, e.due_date"
            " FROM interest_notes n JOIN ledger_entries e ON e.entry_id = n.entry_id"
        ).fetchall()
        notices = _outbox(conn, "interest_note")
    expected = interest_for(charges[1][2], DUE, paid_on, rates, "consumer").total_grosze
    assert (made, again) == (1, 0)
    assert expected > 0
    assert note == [(charges[1][1], expected, expected, "interest", date(2027, 1, 16))]
    assert [n["amount_gr"] for n in notices] == [expected]


def test_jobs_run_under_their_locks_and_the_scheduler_has_them_all(billing_db: str) -> None:
    _charges(billing_db)
    assert remind(billing_db, date(2026, 11, 15), POLICY).detail == {"reminders": 3}
    assert demand(billing_db, date(2026, 12, 1), POLICY).detail == {"demands": 3}
    assert ensure_partitions(billing_db, date(2026, 12, 1)).ran
    scheduler = BackgroundScheduler()
    add_jobs(scheduler, billing_db, RunOptions(), POLICY)
    ids = {job.id for job in scheduler.get_jobs()}
    assert {"payment_reminders", "payment_demands", "interest_notes", "settle:G1"} <= ids
    assert {"ensure_time_partitions", "refresh_daily_consumption", "prune_job_runs"} <= ids


def test_prune_job_runs_keeps_failures_and_recent_runs(billing_db: str) -> None:
    with psycopg.connect(billing_db) as conn:
        conn.execute(
            "INSERT INTO job_runs (job, run_key, started_at, finished_at, status) VALUES"
            " ('remote_reading_results', 'old', '2026-08-01 10:00+02', '2026-08-01 10:00+02',"
            "  'done'),"
            " ('remote_reading_results', 'edge', '2026-08-24 00:00+02', '2026-08-24 00:01+02',"
            "  'done'),"
            " ('settle:G1', 'failed', '2026-07-01 02:00+02', '2026-07-01 02:05+02', 'failed'),"
            " ('settle:G1', 'killed', '2026-07-01 03:00+02', NULL, 'running')"
        )
    outcome = prune_job_runs(billing_db, date(2026, 11, 22))
    assert outcome.detail == {"deleted": 1}
    with psycopg.connect(billing_db) as conn:
        keys = {row[0] for row in conn.execute("SELECT run_key FROM job_runs")}
    assert {"edge", "failed", "killed"} <= keys
    assert "old" not in keys
