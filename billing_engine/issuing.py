"""Invoices into the store: drafts in bulk, then issued with gapless numbers, a ledger
charge and an outbox notice, all inside the caller's transaction.

Numbers come from the ``invoice_counters`` row of (series, year), locked FOR UPDATE by the
issuing transaction: concurrent issuers queue on that row, and a transaction that dies
takes its numbers with it, so numbers have no gaps and no repeats.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Literal

from billing_engine.db import Conn
from billing_engine.model import BillingPeriod, InvoiceLine, InvoiceTotals
from billing_engine.payments import settle_credit
from meterflow.errors import BillingError

InvoiceKind = Literal["regular", "correction"]
Boundary = Literal["start", "end"]


@dataclass(frozen=True)
class BilledReading:
    """A register value an invoice took at one boundary of its period."""

    meter_id: str
    role: str
    boundary: Boundary
    on_date: date
    value_m3: Decimal
    source: str


@dataclass(frozen=True)
class InvoiceDraft:
    """Everything needed to store one invoice before it gets its number."""

    contract_id: int
    customer_id: int
    period: BillingPeriod
    lines: tuple[InvoiceLine, ...]
    totals: InvoiceTotals
    readings: tuple[BilledReading, ...] = ()
    estimated: bool = False
    kind: InvoiceKind = "regular"
    corrects_id: int | None = None
    series: str = "FV"


@dataclass(frozen=True)
class IssuedInvoice:
    """An invoice that got its number."""

    invoice_id: int
    invoice_no: str
    customer_id: int
    gross_grosze: int
    due_date: date
    estimated: bool = False


@dataclass
class _Staged:
    invoices: list[tuple[object, ...]] = field(default_factory=list)
    lines: list[tuple[object, ...]] = field(default_factory=list)
    readings: list[tuple[object, ...]] = field(default_factory=list)


def insert_drafts(
    conn: Conn, drafts: Sequence[InvoiceDraft], run_id: int | None = None
) -> dict[int, int]:
    """Store ``drafts`` as draft invoices; return {index in ``drafts``: new invoice id}.

    A regular draft whose contract and period already have an invoice is skipped, so a
    re-run stores nothing twice. Corrections are always stored.
    """
    if not drafts:
        return {}
    staged = _stage(drafts)
    _create_staging(conn)
    with conn.cursor() as cur:
        for table, rows in (
            (f"stage_invoices ({_STAGE_INVOICE_COLUMNS})", staged.invoices),
            ("stage_lines", staged.lines),
            ("stage_readings", staged.readings),
        ):
            with cur.copy(f"COPY {table} FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        cur.execute(_INSERT_DRAFTS, {"run_id": run_id})
        created: dict[int, int] = dict(cur.fetchall())
        cur.execute(_INSERT_LINES)
        cur.execute(_INSERT_READINGS)
    return {int(k): int(v) for k, v in sorted(created.items())}


def issue_drafts(
    conn: Conn, invoice_ids: Sequence[int], issue_date: date, due_days: int = 14
) -> list[IssuedInvoice]:
    """Issue the given drafts: number them gaplessly, book the charge, write the notice,
    settle the customers' open credit against the new charges.

    Drafts already issued are left as they are. Must run inside the caller's transaction,
    which holds the counter row locked until it commits.
    Raises BillingError if ``due_days`` is negative.
    """
    if due_days < 0:
        raise BillingError(f"due days must not be negative, got {due_days}")
    due = issue_date + timedelta(days=due_days)
    issued: list[IssuedInvoice] = []
    for series, ids in _drafts_by_series(conn, invoice_ids).items():
        first = _reserve_numbers(conn, series, issue_date.year, len(ids))
        params = {
            "ids": ids,
            "first": first,
            "year": issue_date.year,
            "issue": issue_date,
            "due": due,
        }
        rows = conn.execute(_NUMBER_DRAFTS, params).fetchall()
        conn.execute(_BOOK_CHARGES, {"ids": ids})
        conn.execute(_WRITE_NOTICES, {"ids": ids})
        issued.extend(IssuedInvoice(r[0], r[1], r[2], r[3], r[4]) for r in rows)
    settle_credit(conn, [i.customer_id for i in issued])
    return issued


def issue_new(
    conn: Conn,
    drafts: Sequence[InvoiceDraft],
    issue_date: date,
    due_days: int = 14,
    run_id: int | None = None,
) -> list[IssuedInvoice]:
    """Store and issue ``drafts`` in one pass: numbered, charged and announced as inserted,
    with the customers' open credit settled against the new charges.

    The fast equivalent of ``insert_drafts`` then ``issue_drafts`` (no draft row is written
    and then updated). A regular draft whose contract and period already have an invoice is
    skipped. Must run inside the caller's transaction, which holds the counter rows.
    Raises BillingError if ``due_days`` is negative; a concurrent issuer of the same
    contract and period makes the transaction fail (unique key), never leaves a gap.
    """
    if due_days < 0:
        raise BillingError(f"due days must not be negative, got {due_days}")
    if not drafts:
        return []
    _create_staging(conn)
    staged = _stage(drafts)
    with conn.cursor() as cur:
        for table, rows in (
            (f"stage_invoices ({_STAGE_INVOICE_COLUMNS})", staged.invoices),
            ("stage_lines", staged.lines),
            ("stage_readings", staged.readings),
        ):
            with cur.copy(f"COPY {table} FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        cur.execute(_DROP_INVOICED)
        counts = cur.execute("SELECT series, count(*) FROM stage_invoices GROUP BY 1").fetchall()
        for series, count in counts:
            first = _reserve_numbers(conn, series, issue_date.year, int(count))
            cur.execute(_NUMBER_STAGED, {"series": series, "first": first})
        params = {
            "run_id": run_id,
            "year": issue_date.year,
            "issue": issue_date,
            "due": issue_date + timedelta(days=due_days),
        }
        for statement in _ISSUE_STAGED:
            cur.execute(statement, params)
        done = cur.execute(
            "SELECT invoice_id, series || '/' || number || '/' || %s, customer_id,"
            " net_gr + vat_gr, estimated FROM stage_invoices ORDER BY k",
            (issue_date.year,),
        ).fetchall()
    settle_credit(conn, [int(r[2]) for r in done])
    due = issue_date + timedelta(days=due_days)
    return [IssuedInvoice(r[0], r[1], r[2], r[3], due, r[4]) for r in done]


def _drafts_by_series(conn: Conn, invoice_ids: Sequence[int]) -> dict[str, list[int]]:
    rows = conn.execute(
        "SELECT invoice_id, series FROM invoices WHERE invoice_id = ANY(%s) AND status = 'draft'"
        " ORDER BY invoice_id FOR UPDATE",
        (list(invoice_ids),),
    ).fetchall()
    grouped: dict[str, list[int]] = {}
    for invoice_id, series in rows:
        grouped.setdefault(series, []).append(invoice_id)
    return grouped


def _reserve_numbers(conn: Conn, series: str, year: int, count: int) -> int:
    """Lock the counter of (series, year), advance it by ``count``; return the first number."""
    conn.execute(
        "INSERT INTO invoice_counters (series, year) VALUES (%s, %s) ON CONFLICT DO NOTHING",
        (series, year),
    )
    row = conn.execute(
        "UPDATE invoice_counters SET last_number = last_number + %s"
        " WHERE series = %s AND year = %s RETURNING last_number",
        (count, series, year),
    ).fetchone()
    assert row is not None
    return int(row[0]) - count + 1


def _stage(drafts: Sequence[InvoiceDraft]) -> _Staged:
    staged = _Staged()
    for key, d in enumerate(drafts):
        staged.invoices.append(
            (
                key,
                d.contract_id,
                d.customer_id,
                d.kind,
                d.corrects_id,
                d.series,
                d.period.start,
                d.period.end,
                d.totals.net_grosze,
                d.totals.vat_grosze,
                d.estimated,
            )
        )
        for no, line in enumerate(d.lines, start=1):
            staged.lines.append(
                (
                    key,
                    no,
                    line.kind,
                    line.description,
                    line.start,
                    line.end,
                    line.quantity,
                    line.unit,
                    line.unit_price,
                    line.net_grosze,
                    line.vat_rate,
                    d.estimated and line.kind != "subscription",
                )
            )
        for r in d.readings:
            staged.readings.append(
                (key, r.meter_id, r.role, r.boundary, r.on_date, r.value_m3, r.source)
            )
    return staged


def _create_staging(conn: Conn) -> None:
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS stage_invoices (k int, contract_id bigint,"
        " customer_id bigint, kind text, corrects_id bigint, series text, period_start date,"
        " period_end date, net_gr bigint, vat_gr bigint, estimated boolean, invoice_id bigint,"
        " number int) ON COMMIT DELETE ROWS"
    )
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS stage_lines (k int, line_no smallint, kind text,"
        " description text, valid_from date, valid_to date, quantity numeric, unit text,"
        " unit_price numeric, net_gr bigint, vat_rate numeric, estimated boolean)"
        " ON COMMIT DELETE ROWS"
    )
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS stage_readings (k int, meter_id text, role text,"
        " boundary text, on_date date, value_m3 numeric, source text) ON COMMIT DELETE ROWS"
    )
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS stage_created (k int, invoice_id bigint)"
        " ON COMMIT DELETE ROWS"
    )
    conn.execute("TRUNCATE stage_invoices, stage_lines, stage_readings, stage_created")


_STAGE_INVOICE_COLUMNS = (
    "k, contract_id, customer_id, kind, corrects_id, series, period_start, period_end,"
    " net_gr, vat_gr, estimated"
)

_DROP_INVOICED = """
DELETE FROM stage_invoices s
WHERE s.kind = 'regular' AND EXISTS (
    SELECT 1 FROM invoices i
    WHERE i.contract_id = s.contract_id AND i.period_start = s.period_start
      AND i.period_end = s.period_end AND i.kind = 'regular')
"""

_NUMBER_STAGED = """
UPDATE stage_invoices s SET invoice_id = nextval('invoices_invoice_id_seq'),
       number = %(first)s + o.n - 1
FROM (SELECT k, row_number() OVER (ORDER BY k) AS n FROM stage_invoices
      WHERE series = %(series)s) o
WHERE s.k = o.k
"""

_ISSUE_STAGED = (
    """
    INSERT INTO invoices (invoice_id, contract_id, customer_id, kind, corrects_id, status,
                          series, year, number, period_start, period_end, issue_date, due_date,
                          net_gr, vat_gr, gross_gr, estimated, run_id, issued_at)
    SELECT invoice_id, contract_id, customer_id, kind, corrects_id, 'issued', series,
           %(year)s, number, period_start, period_end, %(issue)s, %(due)s, net_gr, vat_gr,
           net_gr + vat_gr, estimated, %(run_id)s, now()
    FROM stage_invoices ORDER BY k
    """,
    """
    INSERT INTO invoice_lines (invoice_id, line_no, kind, description, valid_from, valid_to,
                               quantity, unit, unit_price, net_gr, vat_rate, estimated)
    SELECT s.invoice_id, l.line_no, l.kind, l.description, l.valid_from, l.valid_to,
           l.quantity, l.unit, l.unit_price, l.net_gr, l.vat_rate, l.estimated
    FROM stage_lines l JOIN stage_invoices s USING (k)
    """,
    """
    INSERT INTO billed_readings (invoice_id, meter_id, role, boundary, on_date, value_m3, source)
    SELECT s.invoice_id, r.meter_id, r.role, r.boundary, r.on_date, r.value_m3, r.source
    FROM stage_readings r JOIN stage_invoices s USING (k)
    """,
    """
    INSERT INTO ledger_entries (customer_id, kind, amount_gr, booked_on, due_date, invoice_id,
                                reference)
    SELECT customer_id, CASE WHEN net_gr + vat_gr < 0 THEN 'credit_note' ELSE 'charge' END,
           net_gr + vat_gr, %(issue)s,
           CASE WHEN net_gr + vat_gr < 0 THEN NULL ELSE %(due)s::date END, invoice_id,
           series || '/' || number || '/' || %(year)s
    FROM stage_invoices
    """,
    """
    INSERT INTO outbox (kind, customer_id, dedup_key, payload)
    SELECT 'invoice_issued', customer_id, 'invoice:' || invoice_id,
           jsonb_build_object('invoice_id', invoice_id,
                              'invoice_no', series || '/' || number || '/' || %(year)s,
                              'kind', kind, 'gross_gr', net_gr + vat_gr,
                              'due_date', %(due)s::date, 'period_start', period_start,
                              'period_end', period_end, 'estimated', estimated)
    FROM stage_invoices
    """,
)

_INSERT_DRAFTS = """
WITH fresh AS (
    SELECT s.* FROM stage_invoices s
    WHERE s.kind = 'correction' OR NOT EXISTS (
        SELECT 1 FROM invoices i
        WHERE i.contract_id = s.contract_id AND i.period_start = s.period_start
          AND i.period_end = s.period_end AND i.kind = 'regular')
), created AS (
    INSERT INTO invoices (contract_id, customer_id, kind, corrects_id, series, period_start,
                          period_end, net_gr, vat_gr, gross_gr, estimated, run_id)
    SELECT contract_id, customer_id, kind, corrects_id, series, period_start, period_end,
           net_gr, vat_gr, net_gr + vat_gr, estimated, %(run_id)s
    FROM fresh ORDER BY k
    ON CONFLICT (contract_id, period_start, period_end) WHERE kind = 'regular' DO NOTHING
    RETURNING invoice_id, contract_id, period_start, period_end, kind, corrects_id
), keyed AS (
    INSERT INTO stage_created (k, invoice_id)
    SELECT f.k, c.invoice_id FROM created c JOIN fresh f
      ON f.contract_id = c.contract_id AND f.period_start = c.period_start
     AND f.period_end = c.period_end AND f.kind = c.kind
     AND f.corrects_id IS NOT DISTINCT FROM c.corrects_id
    RETURNING k, invoice_id
)
SELECT k, invoice_id FROM keyed
"""

_INSERT_LINES = """
INSERT INTO invoice_lines (invoice_id, line_no, kind, description, valid_from, valid_to,
                           quantity, unit, unit_price, net_gr, vat_rate, estimated)
SELECT c.invoice_id, l.line_no, l.kind, l.description, l.valid_from, l.valid_to, l.quantity,
       l.unit, l.unit_price, l.net_gr, l.vat_rate, l.estimated
FROM stage_lines l JOIN stage_created c USING (k)
"""

_INSERT_READINGS = """
INSERT INTO billed_readings (invoice_id, meter_id, role, boundary, on_date, value_m3, source)
SELECT c.invoice_id, r.meter_id, r.role, r.boundary, r.on_date, r.value_m3, r.source
FROM stage_readings r JOIN stage_created c USING (k)
"""

_NUMBER_DRAFTS = """
UPDATE invoices i
SET status = 'issued', number = %(first)s + u.n - 1, year = %(year)s,
    issue_date = %(issue)s, due_date = %(due)s, issued_at = now()
FROM unnest(%(ids)s::bigint[]) WITH ORDINALITY AS u(id, n)
WHERE i.invoice_id = u.id
RETURNING i.invoice_id, i.invoice_no, i.customer_id, i.gross_gr, i.due_date
"""

_BOOK_CHARGES = """
INSERT INTO ledger_entries (customer_id, kind, amount_gr, booked_on, due_date, invoice_id,
                            reference)
SELECT customer_id, CASE WHEN gross_gr < 0 THEN 'credit_note' ELSE 'charge' END, gross_gr,
       issue_date, CASE WHEN gross_gr < 0 THEN NULL ELSE due_date END, invoice_id, invoice_no
FROM invoices WHERE invoice_id = ANY(%(ids)s)
"""

_WRITE_NOTICES = """
INSERT INTO outbox (kind, customer_id, dedup_key, payload)
SELECT 'invoice_issued', customer_id, 'invoice:' || invoice_id,
       jsonb_build_object('invoice_id', invoice_id, 'invoice_no', invoice_no,
                          'kind', kind, 'gross_gr', gross_gr, 'due_date', due_date,
                          'period_start', period_start, 'period_end', period_end,
                          'estimated', estimated)
FROM invoices WHERE invoice_id = ANY(%(ids)s)
"""
