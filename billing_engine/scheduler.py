"""The billing scheduler: APScheduler 3 running the jobs on their calendars (Europe/Warsaw).

Daily: 00:30 the coming months' time partitions, 01:00 the consumption aggregate refresh
(plain-PostgreSQL mode), 06:00 payment reminders, 06:15 payment demands, 06:30 overdue
reminders and contract-ending notices (``notify queue-due``, after the demands, so a charge
demanded today gets no reminder too). Every minute: the results of remote readings on
request. Monthly: 03:00 on the 2nd the interest notes of last month. At 02:00 on each
billing group's settle day its periods that ended last month are settled; with
``settle_on_start`` that settlement also runs for every group a few seconds after start (it
settles only what is still due). Every job holds its advisory lock (``jobs.run_locked``), so
several schedulers may run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger

from billing_engine.db import connect
from billing_engine.jobs import (
    JobOutcome,
    demand,
    ensure_partitions,
    interest_notes,
    prune_job_runs,
    queue_due_notices,
    refresh_consumption,
    remind,
    remote_reading_results,
    settle_group,
)
from billing_engine.model import DunningPolicy
from billing_engine.settlement import RunOptions

WARSAW = ZoneInfo("Europe/Warsaw")
START_DELAY_S = 10
log = logging.getLogger(__name__)


def billing_groups(conninfo: str) -> list[tuple[str, int]]:
    """Every billing group and its settle day of the month."""
    with connect(conninfo) as conn:
        rows = conn.execute("SELECT group_code, settle_day FROM billing_groups ORDER BY 1")
        return [(str(r[0]), int(r[1])) for r in rows.fetchall()]


def _today() -> datetime:
    return datetime.now(WARSAW)


def add_jobs(
    scheduler: BaseScheduler,
    conninfo: str,
    options: RunOptions,
    policy: DunningPolicy | None = None,
) -> None:
    """Add the daily and monthly jobs and one settlement job per billing group."""
    policy = policy or DunningPolicy()
    daily: list[tuple[str, Callable[[], JobOutcome], CronTrigger]] = [
        (
            "ensure_time_partitions",
            lambda: ensure_partitions(conninfo, _today().date()),
            CronTrigger(hour=0, minute=30, timezone=WARSAW),
        ),
        (
            "refresh_daily_consumption",
            lambda: refresh_consumption(conninfo, _today().date()),
            CronTrigger(hour=1, minute=0, timezone=WARSAW),
        ),
        (
            "prune_job_runs",
            lambda: prune_job_runs(conninfo, _today().date()),
            CronTrigger(hour=1, minute=30, timezone=WARSAW),
        ),
        (
            "payment_reminders",
            lambda: remind(conninfo, _today().date(), policy),
            CronTrigger(hour=6, minute=0, timezone=WARSAW),
        ),
        (
            "payment_demands",
            lambda: demand(conninfo, _today().date(), policy),
            CronTrigger(hour=6, minute=15, timezone=WARSAW),
        ),
        (
            "notify_queue_due",
            lambda: queue_due_notices(conninfo, _today().date()),
            CronTrigger(hour=6, minute=30, timezone=WARSAW),
        ),
        (
            "interest_notes",
            lambda: interest_notes(conninfo, _today().date(), policy, options.due_days),
            CronTrigger(day=2, hour=3, minute=0, timezone=WARSAW),
        ),
    ]
    for name, work, trigger in daily:
        scheduler.add_job(
            _logged(name, work),
            trigger,
            id=name,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=6 * 3600,
        )
    scheduler.add_job(
        _logged("remote_reading_results", lambda: remote_reading_results(conninfo, _today())),
        CronTrigger(minute="*", timezone=WARSAW),
        id="remote_reading_results",
        coalesce=True,
        max_instances=1,
        misfire_grace_time=60,
    )
    for group, day in billing_groups(conninfo):
        scheduler.add_job(
            _settle_job(conninfo, group, options),
            CronTrigger(day=day, hour=2, minute=0, timezone=WARSAW),
            id=f"settle:{group}",
            coalesce=True,
            max_instances=1,
            misfire_grace_time=6 * 3600,
        )


def _logged(name: str, work: Callable[[], JobOutcome]) -> Callable[[], None]:
    def job() -> None:
        outcome = work()
        log.info("%s: %s", name, dict(outcome.detail) if outcome.ran else "skipped")

    return job


def add_start_settlement(scheduler: BaseScheduler, conninfo: str, options: RunOptions) -> None:
    """Settle every group's periods that ended last month, once, seconds after start."""
    start = _today() + timedelta(seconds=START_DELAY_S)
    for group, _ in billing_groups(conninfo):
        scheduler.add_job(
            _settle_job(conninfo, group, options),
            DateTrigger(run_date=start, timezone=WARSAW),
            id=f"settle-on-start:{group}",
            misfire_grace_time=3600,
        )


def _settle_job(conninfo: str, group: str, options: RunOptions) -> Callable[[], None]:
    def job() -> None:
        outcome = settle_group(conninfo, group, _today().date(), options)
        log.info("settlement of group %s: %s", group, dict(outcome.detail) or "skipped")

    return job


def run_scheduler(
    conninfo: str,
    options: RunOptions,
    policy: DunningPolicy | None = None,
    *,
    settle_on_start: bool = False,
) -> None:
    """Run the billing scheduler in the foreground until interrupted."""
    scheduler = BlockingScheduler(timezone=WARSAW)
    add_jobs(scheduler, conninfo, options, policy)
    if settle_on_start:
        add_start_settlement(scheduler, conninfo, options)
    log.info("billing scheduler started with %d jobs", len(scheduler.get_jobs()))
    scheduler.start()
