"""The billing scheduler: APScheduler 3 running the jobs on their calendars.

Daily at 01:00 Europe/Warsaw the consumption aggregate is refreshed (plain-PostgreSQL mode);
at 02:00 on each billing group's settle day its periods that ended last month are settled.
Every job holds its advisory lock (``jobs.run_locked``), so several schedulers may run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger

from billing_engine.db import connect
from billing_engine.jobs import refresh_consumption, settle_group
from billing_engine.settlement import RunOptions

WARSAW = ZoneInfo("Europe/Warsaw")
log = logging.getLogger(__name__)


def billing_groups(conninfo: str) -> list[tuple[str, int]]:
    """Every billing group and its settle day of the month."""
    with connect(conninfo) as conn:
        rows = conn.execute("SELECT group_code, settle_day FROM billing_groups ORDER BY 1")
        return [(str(r[0]), int(r[1])) for r in rows.fetchall()]


def _today() -> datetime:
    return datetime.now(WARSAW)


def add_jobs(scheduler: BaseScheduler, conninfo: str, options: RunOptions) -> None:
    """Add the refresh job and one settlement job per billing group to ``scheduler``."""
    scheduler.add_job(
        lambda: refresh_consumption(conninfo, _today().date()),
        CronTrigger(hour=1, minute=0, timezone=WARSAW),
        id="refresh_daily_consumption",
        coalesce=True,
        max_instances=1,
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


def _settle_job(conninfo: str, group: str, options: RunOptions) -> Callable[[], None]:
    def job() -> None:
        outcome = settle_group(conninfo, group, _today().date(), options)
        log.info("settlement of group %s: %s", group, dict(outcome.detail) or "skipped")

    return job


def run_scheduler(conninfo: str, options: RunOptions) -> None:
    """Run the billing scheduler in the foreground until interrupted."""
    scheduler = BlockingScheduler(timezone=WARSAW)
    add_jobs(scheduler, conninfo, options)
    log.info("billing scheduler started with %d jobs", len(scheduler.get_jobs()))
    scheduler.start()
