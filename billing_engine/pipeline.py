"""A settlement's writes: its batches issued in order on two connections at once.

Each batch is ONE transaction (held readings, invoices, lines, billed readings, ledger
charges, outbox notices, credit settled). While one connection writes batch N, the other
writes batch N+1 with the numbers that follow N's (``issuing.issue_expecting``): N+1 takes
the counter only once N has committed, so both connections write at once and numbers stay
gapless. A batch whose numbers were not next after all (another issuer of the series came
between, a draft was invoiced meanwhile) is rolled back, and it and the batch after it are
issued again in order with the counter locked first (``issuing.issue_new``).

Only one run at a time writes ahead in a series and year (a session advisory lock); another
run alongside it issues every batch with the counter locked first.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date
from types import TracebackType

from billing_engine.db import Conn, connect, store_errors
from billing_engine.issuing import (
    IssuedInvoice,
    NumberingMoved,
    StagedInvoice,
    issue_expecting,
    issue_new,
)
from billing_engine.model import BillingPeriod

# How long a batch written ahead waits for the one before it before giving up its numbers
# (it is then issued again after it): a guard against waiting on a stuck predecessor.
PREDECESSOR_WAIT_S = 300.0


@dataclass(frozen=True)
class Held:
    """A contract whose consumption waits for staff review."""

    contract_id: int
    meter_id: str
    reason: str


@dataclass(frozen=True)
class Batch:
    """One batch of a run: its drafts and the readings held for review."""

    period: BillingPeriod
    drafts: Sequence[StagedInvoice]
    held: Sequence[Held]


@dataclass(frozen=True)
class _Sent:
    batch: Batch
    result: Future[list[IssuedInvoice]]


class BatchWriter:
    """Issues a run's batches in order on two connections of its own.

    ``write`` queues a batch (waiting while two are in flight) and returns what the batches
    finished so far issued; ``finish`` waits for the rest. Raises whatever a batch raised
    (BillingError, StoreError), after the batches in flight are done.
    """

    def __init__(
        self,
        conninfo: str,
        reader: Conn,
        series: str,
        issue_date: date,
        due_days: int,
        run_id: int | None,
    ) -> None:
        self._conninfo = conninfo
        self._reader = reader
        self._series = series
        self._issue_date = issue_date
        self._due_days = due_days
        self._run_id = run_id
        self._stack = ExitStack()
        self._conns: list[Conn] = []
        self._pools: list[ThreadPoolExecutor] = []
        self._sent: deque[_Sent] = deque()
        self._turn = 0
        self._next: int | None = None

    def __enter__(self) -> BatchWriter:
        with ExitStack() as stack:
            key = _ahead_lock(self._series, self._issue_date.year)
            ahead = self._reader.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
            if ahead is not None and ahead[0]:
                stack.callback(self._reader.execute, "SELECT pg_advisory_unlock(%s)", (key,))
                self._next = self._counter() + 1
            for _ in range(2):
                self._conns.append(stack.enter_context(connect(self._conninfo, autocommit=True)))
                self._pools.append(stack.enter_context(ThreadPoolExecutor(max_workers=1)))
            self._stack = stack.pop_all()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        # Each pool waits for its batches before its connection closes; the lock goes last.
        self._stack.close()

    def write(self, batch: Batch) -> list[IssuedInvoice]:
        """Queue ``batch``; return what the batches that finished meanwhile issued."""
        issued = []
        while len(self._sent) >= 2:
            issued.extend(self._collect())
        first = self._next
        if first is not None:
            self._next = first + len(batch.drafts)
        before = self._sent[-1].result if self._sent else None
        turn, self._turn = self._turn, 1 - self._turn
        result = self._pools[turn].submit(self._issue, self._conns[turn], batch, first, before)
        self._sent.append(_Sent(batch, result))
        return issued

    def finish(self) -> list[IssuedInvoice]:
        """Wait for every batch queued; return what they issued."""
        issued = []
        while self._sent:
            issued.extend(self._collect())
        return issued

    def _collect(self) -> list[IssuedInvoice]:
        sent = self._sent.popleft()
        try:
            return sent.result.result()
        except NumberingMoved:
            pass
        # The batch after it waits for it and fails the same way: both go again, in order,
        # each with the counter locked first, and the batches after them follow the counter.
        again = [sent.batch]
        issued = []
        while self._sent:
            later = self._sent.popleft()
            done = _issued_or_moved(later.result)
            if done is None:
                again.append(later.batch)
            else:
                issued.extend(done)
        for batch in again:
            issued.extend(self._issue(self._conns[0], batch, None, None))
        if self._next is not None:
            self._next = self._counter() + 1
        return issued

    def _issue(
        self,
        conn: Conn,
        batch: Batch,
        first: int | None,
        before: Future[list[IssuedInvoice]] | None,
    ) -> list[IssuedInvoice]:
        period = batch.period
        with store_errors(f"settlement of {period.label}"), conn.transaction():
            # Bulk inserts of a batch gain nothing from JIT compilation, which costs ~1 s.
            conn.execute("SET LOCAL jit = off")
            _write_held(conn, period, batch.held)
            if first is None:
                return issue_new(conn, batch.drafts, self._issue_date, self._due_days, self._run_id)
            return issue_expecting(
                conn,
                batch.drafts,
                self._issue_date,
                first,
                _done(before),
                self._due_days,
                self._run_id,
            )

    def _counter(self) -> int:
        """The committed counter of the run's series and year (created at 0 if missing)."""
        year = self._issue_date.year
        self._reader.execute(
            "INSERT INTO invoice_counters (series, year) VALUES (%s, %s) ON CONFLICT DO NOTHING",
            (self._series, year),
        )
        row = self._reader.execute(
            "SELECT last_number FROM invoice_counters WHERE series = %s AND year = %s",
            (self._series, year),
        ).fetchone()
        assert row is not None
        return int(row[0])


def _done(before: Future[list[IssuedInvoice]] | None) -> Callable[[], bool]:
    """Whether the batch before has been issued (waiting for it, within reason)."""

    def ready() -> bool:
        if before is None:
            return True
        try:
            return before.exception(timeout=PREDECESSOR_WAIT_S) is None
        except FutureTimeout:
            return False

    return ready


def _issued_or_moved(result: Future[list[IssuedInvoice]]) -> list[IssuedInvoice] | None:
    """What a batch issued, or None if its numbers moved (any other error is raised)."""
    try:
        return result.result()
    except NumberingMoved:
        return None


def _ahead_lock(series: str, year: int) -> int:
    digest = hashlib.sha256(f"meterflow-invoice-ahead:{series}:{year}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _write_held(conn: Conn, period: BillingPeriod, held: Sequence[Held]) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO held_readings (contract_id, meter_id, period_start, period_end, reason)"
            " VALUES (%s, %s, %s, %s, %s)"
            " ON CONFLICT (contract_id, period_start, period_end) WHERE resolved_at IS NULL"
            " DO NOTHING",
            [(h.contract_id, h.meter_id, period.start, period.end, h.reason) for h in held],
        )
