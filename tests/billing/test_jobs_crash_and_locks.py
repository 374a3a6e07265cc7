"""Crash safety and advisory locks: a killed run finishes on re-run, schedulers never overlap."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import date

import psycopg
import pytest

from billing_engine.jobs import JobOutcome, run_locked, settle_group
from billing_engine.settlement import RunOptions, settle
from tests.billing.conftest import NOW, make_fleet


def _invoice_state(url: str) -> tuple[int, int, list[int], int, int]:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT contract_id) FROM invoices WHERE kind = 'regular'"
        ).fetchone()
        numbers = [r[0] for r in conn.execute("SELECT number FROM invoices ORDER BY 1")]
        ledger = conn.execute("SELECT count(*) FROM ledger_entries").fetchone()
        outbox = conn.execute("SELECT count(*) FROM outbox").fetchone()
    assert row and ledger and outbox
    return row[0], row[1], numbers, ledger[0], outbox[0]


@pytest.mark.slow
def test_settlement_killed_mid_run_finishes_on_rerun_without_duplicates_or_gaps(
    billing_db: str,
) -> None:
    make_fleet(billing_db, 1500)
    env = dict(os.environ, METERFLOW_DATABASE_URL=billing_db, METERFLOW_BILLING_BATCH_SIZE="5")
    child = subprocess.Popen(
        [sys.executable, "-m", "meterflow", "billing", "run", "--period", "2026-10"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    with psycopg.connect(billing_db, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute("SELECT count(*) FROM invoices").fetchone()
            if row and row[0] >= 100:
                break
            time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    child.wait()
    issued, _, numbers, _, _ = _invoice_state(billing_db)
    assert 100 <= issued < 1500, "the run was not killed half-way"
    assert numbers == list(range(1, issued + 1))
    summary = settle(billing_db, "2026-10", options=RunOptions(now=NOW))
    assert summary.issued == 1500 - issued
    assert _invoice_state(billing_db) == (1500, 1500, list(range(1, 1501)), 1500, 1500)


def test_a_job_held_elsewhere_is_skipped(billing_db: str) -> None:
    started, release = threading.Event(), threading.Event()

    def slow() -> dict[str, int]:
        started.set()
        release.wait(10)
        return {"done": 1}

    outcomes: list[JobOutcome] = []
    first = threading.Thread(
        target=lambda: outcomes.append(run_locked(billing_db, "demo-job", "k", slow))
    )
    first.start()
    assert started.wait(10)
    second = run_locked(billing_db, "demo-job", "k", lambda: {"done": 2})
    release.set()
    first.join()
    assert not second.ran and outcomes[0].ran and outcomes[0].detail == {"done": 1}
    with psycopg.connect(billing_db) as conn:
        runs = conn.execute("SELECT status, detail FROM job_runs").fetchall()
    assert runs == [("done", {"done": 1})]


def test_two_schedulers_settling_one_group_issue_each_invoice_once(billing_db: str) -> None:
    make_fleet(billing_db, 60)
    options = RunOptions(now=NOW, batch_size=7)
    outcomes: list[JobOutcome] = []

    def scheduler() -> None:
        outcomes.append(settle_group(billing_db, "G1", date(2026, 11, 1), options))

    threads = [threading.Thread(target=scheduler) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    issued = sum(o.detail.get("monthly:2026-10", {}).get("issued", 0) for o in outcomes if o.ran)
    assert issued == 60
    assert _invoice_state(billing_db) == (60, 60, list(range(1, 61)), 60, 60)
