"""A settlement run: every due contract of a period turned into an issued invoice.

Contracts are taken in batches; each batch is read set-based, computed by the pure rules,
and written in ONE transaction (numbers, invoices, lines, billed readings, ledger charges,
outbox notices, held readings) by ``pipeline.BatchWriter``, two batches at once while the
next is computed. A run killed half-way loses at most the batches in flight; run again, it
settles only the contracts still without an invoice, so nothing is issued twice and numbers
stay gapless.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import get_args

from psycopg.types.json import Jsonb

from billing_engine.consumption import consumption_for_period
from billing_engine.db import Conn, connect, id_array
from billing_engine.fastpath import FastResult, fast_drafts
from billing_engine.inputs import ContractInputs, due_contracts, full_history, load_inputs
from billing_engine.invoicing import invoice_lines, invoice_totals
from billing_engine.issuing import (
    BilledReading,
    InvoiceDraft,
    IssuedInvoice,
    StagedInvoice,
    stage,
)
from billing_engine.model import (
    BillingPeriod,
    BoundaryReading,
    ConsumptionRules,
    PeriodConsumption,
    PeriodKind,
)
from billing_engine.periods import boundary_instant, period_for_label, warsaw_day
from billing_engine.pipeline import Batch, BatchWriter, Held
from billing_engine.repository import load_tariffs
from billing_engine.tariffs import Tariff
from meterflow.errors import BillingError

log = logging.getLogger(__name__)
KINDS: tuple[PeriodKind, ...] = get_args(PeriodKind)


@dataclass
class SettlementSummary:
    """What a run did (or, dry, would do)."""

    label: str
    dry_run: bool
    due: int = 0
    issued: int = 0
    estimated: int = 0
    held: int = 0
    gross_grosze: int = 0
    failed: dict[int, str] = field(default_factory=dict)
    run_id: int | None = None


@dataclass(frozen=True)
class RunOptions:
    """How a run numbers, dates and batches its invoices."""

    series: str = "FV"
    due_days: int = 14
    batch_size: int = 5000
    issue_date: date | None = None
    now: datetime | None = None
    rules: ConsumptionRules = field(default_factory=ConsumptionRules)
    fast_path: bool = True


def settle(
    conninfo: str,
    label: str,
    *,
    group: str | None = None,
    kinds: Sequence[PeriodKind] = KINDS,
    dry_run: bool = False,
    options: RunOptions | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SettlementSummary:
    """Settle the periods labelled ``label`` (``YYYY-MM``, their first month) of ``kinds``.

    ``progress(done, due)`` is called after each batch. A contract the rules refuse is
    listed in ``failed`` with the reason and gets nothing written.
    Raises BillingError if the label is malformed, or the due contracts have no reading at
    all in the period (ingest down? nothing is billed on estimates alone).
    """
    opts = options or RunOptions()
    now = opts.now or datetime.now(UTC)
    summary = SettlementSummary(label, dry_run)
    with connect(conninfo, autocommit=True) as conn:
        tariffs = load_tariffs(conn)
        work = _due_work(conn, label, group, kinds)
        summary.due = sum(len(ids) for _, ids in work)
        _guard_any_readings(conn, work)
        if not dry_run:
            summary.run_id = _start_run(conn, label, group)
        issue_date = opts.issue_date or warsaw_day(now)
        writer = BatchWriter(conninfo, conn, opts.series, issue_date, opts.due_days, summary.run_id)
        with writer if not dry_run else nullcontext(writer):
            done = 0
            for period, ids in work:
                for first in range(0, len(ids), opts.batch_size):
                    batch = ids[first : first + opts.batch_size]
                    drafts, held = _compute_batch(conn, period, batch, tariffs, opts, now, summary)
                    if dry_run:
                        _account_dry(drafts, summary)
                    else:
                        # Batches are written by the writer's connections while the next
                        # batch is computed here.
                        _account(writer.write(Batch(period, drafts, held)), summary)
                    done += len(batch)
                    if progress is not None:
                        progress(done, summary.due)
            if not dry_run:
                _account(writer.finish(), summary)
        if summary.run_id is not None:
            _finish_run(conn, summary)
    return summary


def _account(issued: Sequence[IssuedInvoice], summary: SettlementSummary) -> None:
    """Count what batches issued."""
    summary.issued += len(issued)
    summary.gross_grosze += sum(i.gross_grosze for i in issued)
    summary.estimated += sum(i.estimated for i in issued)


def _account_dry(drafts: Sequence[StagedInvoice], summary: SettlementSummary) -> None:
    summary.issued += len(drafts)
    summary.estimated += sum(d.estimated for d in drafts)
    summary.gross_grosze += sum(d.gross_grosze for d in drafts)


def _due_work(
    conn: Conn, label: str, group: str | None, kinds: Sequence[PeriodKind]
) -> list[tuple[BillingPeriod, list[int]]]:
    work = []
    for kind in kinds:
        period = period_for_label(label, kind)
        if period.label == label:
            work.append((period, due_contracts(conn, period, group, kind)))
    return work


def _guard_any_readings(conn: Conn, work: Sequence[tuple[BillingPeriod, list[int]]]) -> None:
    for period, ids in work:
        if not ids:
            continue
        row = conn.execute(
            "SELECT EXISTS (SELECT 1 FROM contracts c JOIN meter_installations m"
            " USING (service_point_id) JOIN readings r ON r.meter_id = m.meter_id"
            " WHERE c.contract_id = ANY(%s::bigint[]) AND r.quantity = 'volume'"
            " AND r.read_at >= %s AND r.read_at < %s)",
            (id_array(ids), *_window(period)),
        ).fetchone()
        if row is not None and not row[0]:
            raise BillingError(
                f"none of the {len(ids)} contracts due for {period.start}..{period.end} has a"
                " single meter reading in the period; check that ingest is running before"
                " billing everyone on estimates"
            )


def _window(period: BillingPeriod) -> tuple[datetime, datetime]:
    return boundary_instant(period.start), boundary_instant(period.end + timedelta(days=1))


def _compute_batch(
    conn: Conn,
    period: BillingPeriod,
    ids: Sequence[int],
    tariffs: dict[int, Tariff],
    opts: RunOptions,
    now: datetime,
    summary: SettlementSummary,
) -> tuple[list[StagedInvoice], list[Held]]:
    """Drafts and holds of a batch: the fast path first, the full rules for the rest."""
    fast = (
        fast_drafts(conn, ids, period, tariffs, opts.rules, now, opts.series)
        if opts.fast_path
        else FastResult([], list(ids))
    )
    drafts = fast.drafts
    held: list[Held] = []
    if fast.rest:
        _rules_batch(conn, period, fast.rest, tariffs, opts, now, summary, drafts, held)
    drafts.sort(key=lambda d: d.contract_id)
    summary.held += len(held)
    return drafts, held


def _rules_batch(
    conn: Conn,
    period: BillingPeriod,
    ids: Sequence[int],
    tariffs: dict[int, Tariff],
    opts: RunOptions,
    now: datetime,
    summary: SettlementSummary,
    drafts: list[StagedInvoice],
    held: list[Held],
) -> None:
    """Contracts outside the fast path, through the full per-contract rules."""
    rules = opts.rules
    inputs = load_inputs(conn, ids, period, rules.history_days, rules.boundary_window_days)
    retry: list[ContractInputs] = []
    for cid in ids:
        outcome = _compute(inputs[cid], period, tariffs, opts, now, summary, needs_history=retry)
        if isinstance(outcome, InvoiceDraft):
            drafts.append(stage(outcome))
        elif isinstance(outcome, Held):
            held.append(outcome)
    if retry:
        _load_full_history(conn, retry, period, rules.boundary_window_days)
        for item in retry:
            outcome = _compute(item, period, tariffs, opts, now, summary, needs_history=None)
            if isinstance(outcome, InvoiceDraft):
                drafts.append(stage(outcome))
            elif isinstance(outcome, Held):
                held.append(outcome)


def _compute(
    item: ContractInputs,
    period: BillingPeriod,
    tariffs: dict[int, Tariff],
    opts: RunOptions,
    now: datetime,
    summary: SettlementSummary,
    needs_history: list[ContractInputs] | None,
) -> InvoiceDraft | Held | None:
    """The contract's draft, its hold, or None (failed, or queued for a full-history retry)."""
    tariff = tariffs[item.tariff_id]
    try:
        main = _consumption(item, period, tariff, now, opts.rules, "main")
        if needs_history is not None and main.estimated:
            needs_history.append(item)
            return None
        garden = None
        if any(i.role == "garden" for i in item.installations):
            garden = _consumption(item, period, tariff, now, opts.rules, "garden")
        for used in (main, garden):
            if used is not None and used.held:
                return Held(
                    item.contract.contract_id,
                    used.start_reading.meter_id,
                    used.hold_reason or "held",
                )
        lines = invoice_lines(item.contract, tariff, period, main, garden)
    except BillingError as exc:
        summary.failed[item.contract.contract_id] = str(exc)
        return None
    readings = _billed(main) + (_billed(garden) if garden else ())
    return InvoiceDraft(
        item.contract.contract_id,
        item.contract.customer_id,
        period,
        tuple(lines),
        invoice_totals(lines),
        readings,
        estimated=main.estimated or bool(garden and garden.estimated),
        series=opts.series,
    )


def _consumption(
    item: ContractInputs,
    period: BillingPeriod,
    tariff: Tariff,
    now: datetime,
    rules: ConsumptionRules,
    role: str,
) -> PeriodConsumption:
    fitted = [i for i in item.installations if i.role == role]
    opening = _opening_for(item, fitted[0].meter_id if fitted else None)
    return consumption_for_period(
        period,
        item.installations,
        item.readings,
        norm_m3_per_day=tariff.norm_m3_per_day,
        now=now,
        role="garden" if role == "garden" else "main",
        opening=opening,
        rules=rules,
    )


def _opening_for(item: ContractInputs, meter_id: str | None) -> BoundaryReading | None:
    return None if meter_id is None else item.openings.get(meter_id)


def _billed(used: PeriodConsumption) -> tuple[BilledReading, ...]:
    start, end = used.start_reading, used.end_reading
    return (
        BilledReading(
            start.meter_id, used.role, "start", warsaw_day(start.at), start.value_m3, start.source
        ),
        BilledReading(end.meter_id, used.role, "end", warsaw_day(end.at), end.value_m3, end.source),
    )


def _load_full_history(
    conn: Conn, items: Sequence[ContractInputs], period: BillingPeriod, window_days: int
) -> None:
    meters = sorted({i.meter_id for item in items for i in item.installations})
    history = full_history(conn, meters, period, window_days)
    for item in items:
        own = {i.meter_id for i in item.installations}
        kept = [r for r in item.readings if r.source != "remote"]
        item.readings = kept + [r for r in history if r.meter_id in own]


def _start_run(conn: Conn, label: str, group: str | None) -> int:
    with conn.transaction():
        row = conn.execute(
            "INSERT INTO billing_runs (period, group_code) VALUES (%s, %s) RETURNING run_id",
            (date.fromisoformat(label + "-01"), group),
        ).fetchone()
    assert row is not None
    return int(row[0])


def _finish_run(conn: Conn, summary: SettlementSummary) -> None:
    detail = {
        "due": summary.due,
        "issued": summary.issued,
        "held": summary.held,
        "estimated": summary.estimated,
        "gross_gr": summary.gross_grosze,
        "failed": {str(k): v for k, v in summary.failed.items()},
    }
    with conn.transaction():
        conn.execute(
            "UPDATE billing_runs SET finished_at = now(), status = 'done', summary = %s"
            " WHERE run_id = %s",
            (Jsonb(detail), summary.run_id),
        )
