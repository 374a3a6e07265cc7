"""Billing jobs under PostgreSQL advisory locks: two schedulers never run one job at once.

Each job takes a session-level ``pg_try_advisory_lock`` on its own connection; if another
process holds it, the job is skipped, not queued. The lock dies with the connection, so a
killed scheduler frees it. Jobs are idempotent (the settlement skips contracts already
invoiced, unique keys guard every document), so a killed job run again finishes the rest.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from psycopg.types.json import Jsonb

from billing_engine.db import connect
from billing_engine.dunning_jobs import issue_interest_notes, send_demands, send_reminders
from billing_engine.model import DunningPolicy
from billing_engine.notify.due import queue_contract_endings, queue_overdue_reminders
from billing_engine.notify.remote_results import queue_remote_results
from billing_engine.periods import WARSAW, period_containing
from billing_engine.settlement import KINDS, RunOptions, settle

log = logging.getLogger(__name__)

# Finished runs are kept this long; failed and unfinished runs stay until staff delete them.
JOB_RUNS_KEPT = timedelta(days=90)


@dataclass(frozen=True)
class JobOutcome:
    """Whether a job ran (or was skipped because another process held its lock)."""

    job: str
    run_key: str
    ran: bool
    detail: Mapping[str, Any]


def lock_key(job: str) -> int:
    """The signed 64-bit advisory lock key of ``job``."""
    digest = hashlib.sha256(f"meterflow-billing:{job}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def run_locked(
    conninfo: str, job: str, run_key: str, work: Callable[[], Mapping[str, Any]]
) -> JobOutcome:
    """Run ``work`` under the job's advisory lock and record it in ``job_runs``.

    Returns a skipped outcome if another process holds the lock.
    Raises whatever ``work`` raises, after recording the run as failed.
    """
    with connect(conninfo, autocommit=True) as conn:
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (lock_key(job),)).fetchone()
        if not row or not row[0]:
            log.info("job %s (%s) is running elsewhere; skipped", job, run_key)
            return JobOutcome(job, run_key, False, {})
        run = conn.execute(
            "INSERT INTO job_runs (job, run_key) VALUES (%s, %s) RETURNING job_run_id",
            (job, run_key),
        ).fetchone()
        assert run is not None
        try:
            detail = dict(work())
        except Exception as exc:
            _finish(conn, run[0], "failed", {"error": str(exc)})
            raise
        _finish(conn, run[0], "done", detail)
        conn.execute("SELECT pg_advisory_unlock(%s)", (lock_key(job),))
        return JobOutcome(job, run_key, True, detail)


def _finish(conn: Any, run_id: int, status: str, detail: Mapping[str, Any]) -> None:
    conn.execute(
        "UPDATE job_runs SET finished_at = now(), status = %s, detail = %s WHERE job_run_id = %s",
        (status, Jsonb(dict(detail)), run_id),
    )


def refresh_consumption(conninfo: str, today: date) -> JobOutcome:
    """Refresh the daily consumption aggregate (does nothing in TimescaleDB mode)."""

    def work() -> Mapping[str, Any]:
        with connect(conninfo, autocommit=True) as conn:
            conn.execute("SELECT refresh_daily_consumption()")
        return {"refreshed": True}

    return run_locked(conninfo, "refresh_daily_consumption", today.isoformat(), work)


def settle_group(conninfo: str, group: str, today: date, options: RunOptions) -> JobOutcome:
    """Settle the group's periods that ended last month (each kind on its own calendar)."""
    last = today.replace(day=1) - timedelta(days=1)

    def work() -> Mapping[str, Any]:
        done: dict[str, Any] = {}
        for kind in KINDS:
            period = period_containing(last, kind)
            if period.end != last:
                continue
            summary = settle(conninfo, period.label, group=group, kinds=(kind,), options=options)
            done[f"{kind}:{period.label}"] = {
                "issued": summary.issued,
                "held": summary.held,
                "failed": len(summary.failed),
            }
        return done

    return run_locked(conninfo, f"settle:{group}", last.strftime("%Y-%m"), work)


def ensure_partitions(conninfo: str, today: date) -> JobOutcome:
    """Create the coming months' time partitions (the store's ``ensure_time_partitions``)."""

    def work() -> Mapping[str, Any]:
        with connect(conninfo, autocommit=True) as conn:
            row = conn.execute("SELECT ensure_time_partitions()").fetchone()
        return {"created": int(row[0]) if row and row[0] is not None else 0}

    return run_locked(conninfo, "ensure_time_partitions", today.isoformat(), work)


def prune_job_runs(conninfo: str, today: date, kept: timedelta = JOB_RUNS_KEPT) -> JobOutcome:
    """Delete the record of successful job runs started more than ``kept`` before ``today``.

    The every-minute remote-results job alone writes 1,440 rows a day. Failed and unfinished
    runs are kept: they are what staff look into.
    """

    def work() -> Mapping[str, Any]:
        with connect(conninfo, autocommit=True) as conn:
            cur = conn.execute(
                "DELETE FROM job_runs WHERE status = 'done' AND started_at < %s",
                (datetime.combine(today - kept, datetime.min.time(), WARSAW),),
            )
        return {"deleted": cur.rowcount}

    return run_locked(conninfo, "prune_job_runs", today.isoformat(), work)


def remind(conninfo: str, today: date, policy: DunningPolicy) -> JobOutcome:
    """Send the payment reminders (e-monit) due ``today``."""

    def work() -> Mapping[str, Any]:
        with connect(conninfo, autocommit=True) as conn:
            return {"reminders": send_reminders(conn, today, policy)}

    return run_locked(conninfo, "payment_reminders", today.isoformat(), work)


def demand(conninfo: str, today: date, policy: DunningPolicy) -> JobOutcome:
    """Issue the payment demands (wezwania do zapłaty) due ``today``."""

    def work() -> Mapping[str, Any]:
        with connect(conninfo, autocommit=True) as conn:
            return {"demands": send_demands(conn, today, policy)}

    return run_locked(conninfo, "payment_demands", today.isoformat(), work)


def interest_notes(
    conninfo: str, today: date, policy: DunningPolicy, due_days: int = 14
) -> JobOutcome:
    """Issue last month's interest notes (noty odsetkowe) for late payments."""
    month = (today.replace(day=1) - timedelta(days=1)).replace(day=1)

    def work() -> Mapping[str, Any]:
        with connect(conninfo, autocommit=True) as conn:
            made = issue_interest_notes(conn, month, today, policy, due_days=due_days)
        return {"notes": made}

    return run_locked(conninfo, "interest_notes", month.strftime("%Y-%m"), work)


def queue_due_notices(conninfo: str, today: date) -> JobOutcome:
    """Queue the overdue reminders and contract-ending notices due ``today`` (notify queue-due)."""

    def work() -> Mapping[str, Any]:
        with connect(conninfo, autocommit=True) as conn:
            overdue = queue_overdue_reminders(conn, today)
            endings = queue_contract_endings(conn, today)
        return {"overdue_reminders": overdue, "contract_endings": endings}

    return run_locked(conninfo, "notify_queue_due", today.isoformat(), work)


def remote_reading_results(conninfo: str, now: datetime) -> JobOutcome:
    """Queue a result notice for each remote reading request answered since the last run."""

    def work() -> Mapping[str, Any]:
        with connect(conninfo, autocommit=True) as conn:
            return {"results": queue_remote_results(conn)}

    return run_locked(conninfo, "remote_reading_results", now.strftime("%Y-%m-%dT%H:%M"), work)
