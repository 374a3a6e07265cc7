"""Invoices into the store: drafts in bulk, then issued with gapless numbers, a ledger
charge and an outbox notice, all inside the caller's transaction.

Numbers come from the ``invoice_counters`` row of (series, year). ``issue_new`` and
``issue_drafts`` lock it (FOR UPDATE, through ``UPDATE ... RETURNING``) before they number:
concurrent issuers queue on that row, and a transaction that dies takes its numbers with it,
so numbers have no gaps and no repeats.

``issue_expecting`` lets a settlement write several batches at once: a batch is written with
the numbers it expects to be next, and the counter row is locked only at the end, where the
batch checks that the counter stands right before its first number (its predecessor has
committed) and advances it; if not, it raises ``NumberingMoved`` and the caller rolls back
and issues the batch again with ``issue_new``. An advisory lock per series and year keeps the
two kinds apart: issuers that lock the counter first hold it exclusively, batches written
ahead share it, so neither ever waits on numbers the other has written.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Literal, NamedTuple

import psycopg

from billing_engine.db import Conn, id_array
from billing_engine.model import BillingPeriod, InvoiceLine, InvoiceTotals
from billing_engine.payments import settle_credit
from meterflow.errors import BillingError

InvoiceKind = Literal["regular", "correction"]
# NULL in COPY's text format.
NULL = "\\N"
# Text that is the same as a JSON string's content (no quote, backslash or control).
_PLAIN = re.compile(r"[ -!#-\[\]-~]*")
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


class NumberingMoved(BillingError):
    """The invoice counter was not where a batch written ahead expected it; roll back and
    issue the batch with ``issue_new``."""


class StagedInvoice(NamedTuple):
    """An invoice as the store will hold it, before it gets its id and number: its header,
    and its lines and billed readings as rows of COPY text, each row without the invoice id
    that starts it (``stage`` makes one from a draft; the fast path renders its own)."""

    contract_id: int
    customer_id: int
    period: BillingPeriod
    net_grosze: int
    vat_grosze: int
    lines: tuple[str, ...]
    readings: tuple[str, ...]
    estimated: bool = False
    kind: InvoiceKind = "regular"
    corrects_id: int | None = None
    series: str = "FV"

    @property
    def gross_grosze(self) -> int:
        """Net plus VAT."""
        return self.net_grosze + self.vat_grosze


def stage(draft: InvoiceDraft) -> StagedInvoice:
    """The store's rows of ``draft``."""
    estimated = draft.estimated
    return StagedInvoice(
        draft.contract_id,
        draft.customer_id,
        draft.period,
        draft.totals.net_grosze,
        draft.totals.vat_grosze,
        tuple(
            line_row(no, line, estimated and line.kind != "subscription")
            for no, line in enumerate(draft.lines, start=1)
        ),
        tuple(
            reading_row(r.meter_id, r.role, r.boundary, r.on_date, r.value_m3, r.source)
            for r in draft.readings
        ),
        estimated,
        draft.kind,
        draft.corrects_id,
        draft.series,
    )


class LineTemplate(NamedTuple):
    """An ``invoice_lines`` row of COPY text around its line number, quantity and net: for
    many lines that differ only in those."""

    head: str
    middle: str
    tail: str

    def row(self, no: int, quantity: Decimal, net_grosze: int) -> str:
        """The row of line ``no``, after its invoice id."""
        return f"\t{no}{self.head}{quantity}{self.middle}{net_grosze}{self.tail}"


def line_template(line: InvoiceLine, estimated: bool) -> LineTemplate:
    """The row of ``line`` (marked ``estimated`` or not) with its number, quantity and net
    left open."""
    return LineTemplate(
        f"\t{copy_text(line.kind)}\t{copy_text(line.description)}\t{line.start}\t{line.end}\t",
        f"\t{copy_text(line.unit)}\t{line.unit_price}\t",
        f"\t{line.vat_rate}\t{'t' if estimated else 'f'}\n",
    )


def line_row(no: int, line: InvoiceLine, estimated: bool) -> str:
    """An ``invoice_lines`` row of COPY text, after its invoice id."""
    return line_template(line, estimated).row(no, line.quantity, line.net_grosze)


def reading_row(
    meter_id: str, role: str, boundary: Boundary, on_date: date, value_m3: Decimal, source: str
) -> str:
    """A ``billed_readings`` row of COPY text, after its invoice id."""
    return (
        f"\t{copy_text(meter_id)}\t{copy_text(role)}\t{boundary}\t{on_date}\t{value_m3}"
        f"\t{copy_text(source)}\n"
    )


def copy_text(value: str) -> str:
    """``value`` escaped for a field of COPY's text format."""
    return (
        value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    )


def insert_drafts(
    conn: Conn, drafts: Sequence[InvoiceDraft], run_id: int | None = None
) -> dict[int, int]:
    """Store ``drafts`` as draft invoices; return {index in ``drafts``: new invoice id}.

    A regular draft whose contract and period already have an invoice is skipped, so a
    re-run stores nothing twice. Corrections are always stored.
    """
    if not drafts:
        return {}
    staged = [stage(d) for d in drafts]
    _create_staging(conn)
    with conn.cursor() as cur:
        with cur.copy(f"COPY stage_invoices ({_STAGE_INVOICE_COLUMNS}) FROM STDIN") as copy:
            for key, d in enumerate(staged):
                copy.write_row(
                    (
                        key,
                        d.contract_id,
                        d.customer_id,
                        d.kind,
                        d.corrects_id,
                        d.series,
                        d.period.start,
                        d.period.end,
                        d.net_grosze,
                        d.vat_grosze,
                        d.estimated,
                    )
                )
        with cur.copy("COPY stage_lines FROM STDIN") as copy:
            copy.write(_keyed(range(len(staged)), (d.lines for d in staged)))
        with cur.copy("COPY stage_readings FROM STDIN") as copy:
            copy.write(_keyed(range(len(staged)), (d.readings for d in staged)))
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
        conn.execute(_BOOK_CHARGES, {"ids": id_array(ids)})
        conn.execute(_WRITE_NOTICES, {"ids": id_array(ids)})
        issued.extend(IssuedInvoice(r[0], r[1], r[2], r[3], r[4]) for r in rows)
    settle_credit(conn, [i.customer_id for i in issued])
    return issued


def issue_new(
    conn: Conn,
    drafts: Sequence[InvoiceDraft | StagedInvoice],
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
    due = _due(issue_date, due_days)
    if not drafts:
        return []
    for series in sorted({d.series for d in drafts}):
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (series_lock(series, issue_date.year),))
    fresh = _not_invoiced(conn, _staged(drafts))
    firsts: dict[str, int] = {}
    for series in sorted({d.series for d in fresh}):
        count = sum(d.series == series for d in fresh)
        firsts[series] = _reserve_numbers(conn, series, issue_date.year, count)
    issued = _write(conn, fresh, firsts, issue_date, due, run_id)
    settle_credit(conn, [i.customer_id for i in issued])
    return issued


def issue_expecting(
    conn: Conn,
    drafts: Sequence[InvoiceDraft | StagedInvoice],
    issue_date: date,
    first: int,
    ready: Callable[[], bool],
    due_days: int = 14,
    run_id: int | None = None,
) -> list[IssuedInvoice]:
    """Store and issue ``drafts`` of one series numbered from ``first`` on, as ``issue_new``
    does, but lock the counter only at the end: once ``ready()`` says the batches before this
    one are done, the counter must stand at ``first - 1``, and it is advanced past this batch.

    Must run inside the caller's transaction. Raises NumberingMoved if the counter is
    elsewhere or locked, ``ready()`` returns False, or a draft was invoiced meanwhile (the
    caller must roll back; nothing is numbered); BillingError if ``due_days`` is negative or
    the drafts are of several series.
    """
    due = _due(issue_date, due_days)
    if not drafts:
        # Nothing to number, but the batch after this one counts on those before it.
        if not ready():
            raise NumberingMoved(f"the batch before {first} was not issued")
        return []
    series = {d.series for d in drafts}
    if len(series) != 1:
        raise BillingError(f"a batch issued ahead must be of one series, got {sorted(series)}")
    (name,) = series
    year = issue_date.year
    conn.execute("SELECT pg_advisory_xact_lock_shared(%s)", (series_lock(name, year),))
    row = conn.execute(
        "SELECT last_number FROM invoice_counters WHERE series = %s AND year = %s", (name, year)
    ).fetchone()
    if row is None or row[0] >= first:
        raise NumberingMoved(f"numbers of {name}/{year} from {first} are no longer next")
    try:
        issued = _write(conn, _staged(drafts), {name: first}, issue_date, due, run_id)
    except psycopg.errors.UniqueViolation as exc:
        # A contract invoiced since the run found it due: issue_new skips it.
        raise NumberingMoved(
            f"a contract of the batch from {name}/{first}/{year} was invoiced"
        ) from exc
    if not ready():
        raise NumberingMoved(f"the batch before {name}/{first}/{year} was not issued")
    try:
        row = conn.execute(
            "SELECT last_number FROM invoice_counters WHERE series = %s AND year = %s"
            " FOR UPDATE NOWAIT",
            (name, year),
        ).fetchone()
    except psycopg.errors.LockNotAvailable as exc:
        raise NumberingMoved(f"the counter of {name}/{year} is locked by another issuer") from exc
    if row is None or row[0] != first - 1:
        raise NumberingMoved(f"the counter of {name}/{year} is not at {first - 1}")
    conn.execute(
        "UPDATE invoice_counters SET last_number = %s WHERE series = %s AND year = %s",
        (first - 1 + len(issued), name, year),
    )
    settle_credit(conn, [i.customer_id for i in issued])
    return issued


def series_lock(series: str, year: int) -> int:
    """The advisory lock key of the numbers of (``series``, ``year``)."""
    digest = hashlib.sha256(f"meterflow-invoice-numbers:{series}:{year}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _due(issue_date: date, due_days: int) -> date:
    if due_days < 0:
        raise BillingError(f"due days must not be negative, got {due_days}")
    return issue_date + timedelta(days=due_days)


def _staged(drafts: Sequence[InvoiceDraft | StagedInvoice]) -> list[StagedInvoice]:
    return [d if isinstance(d, StagedInvoice) else stage(d) for d in drafts]


def _not_invoiced(conn: Conn, drafts: Sequence[StagedInvoice]) -> list[StagedInvoice]:
    """``drafts`` less the regular ones whose contract and period have an invoice already."""
    regular: dict[tuple[date, date], list[int]] = {}
    for d in drafts:
        if d.kind == "regular":
            regular.setdefault((d.period.start, d.period.end), []).append(d.contract_id)
    invoiced: set[tuple[int, date, date]] = set()
    for (start, end), ids in regular.items():
        rows = conn.execute(
            "SELECT i.contract_id FROM unnest(%s::bigint[]) AS c(contract_id)"
            " JOIN invoices i USING (contract_id)"
            " WHERE i.kind = 'regular' AND i.period_start = %s AND i.period_end = %s",
            (id_array(ids), start, end),
        ).fetchall()
        invoiced.update((r[0], start, end) for r in rows)
    if not invoiced:
        return list(drafts)
    return [
        d
        for d in drafts
        if (d.contract_id, d.period.start, d.period.end) not in invoiced or d.kind != "regular"
    ]


def _write(
    conn: Conn,
    drafts: Sequence[StagedInvoice],
    firsts: dict[str, int],
    issue_date: date,
    due: date,
    run_id: int | None,
) -> list[IssuedInvoice]:
    """Copy the numbered invoices, their lines and billed readings into their tables, then
    book the charges and write the notices from the invoices."""
    if not drafts:
        return []
    year = issue_date.year
    with conn.cursor() as cur:
        row = cur.execute(
            "SELECT now(), string_agg(nextval('invoices_invoice_id_seq')::text, ',')"
            " FROM generate_series(1, %s)",
            (len(drafts),),
        ).fetchone()
        assert row is not None
        issued_at, listed = row
        ids = [int(i) for i in listed.split(",")]
        numbers = dict(firsts)
        issued = []
        rows = []
        tail = f"\t{NULL if run_id is None else run_id}\t{issued_at}\tissued\n"
        for invoice_id, d in zip(ids, drafts, strict=True):
            number = numbers[d.series]
            numbers[d.series] = number + 1
            gross = d.net_grosze + d.vat_grosze
            corrects = NULL if d.corrects_id is None else d.corrects_id
            rows.append(
                f"{invoice_id}\t{d.contract_id}\t{d.customer_id}\t{d.kind}\t{corrects}"
                f"\t{copy_text(d.series)}\t{year}\t{number}\t{d.period.start}\t{d.period.end}"
                f"\t{issue_date}\t{due}\t{d.net_grosze}\t{d.vat_grosze}\t{gross}"
                f"\t{'t' if d.estimated else 'f'}{tail}"
            )
            issued.append(
                IssuedInvoice(
                    invoice_id,
                    f"{d.series}/{number}/{year}",
                    d.customer_id,
                    gross,
                    due,
                    d.estimated,
                )
            )
        with cur.copy(f"COPY invoices ({_INVOICE_COLUMNS}) FROM STDIN") as copy:
            copy.write("".join(rows))
        with cur.copy(f"COPY invoice_lines ({_LINE_COLUMNS}) FROM STDIN") as copy:
            copy.write(_keyed(ids, (d.lines for d in drafts)))
        with cur.copy(f"COPY billed_readings ({_READING_COLUMNS}) FROM STDIN") as copy:
            copy.write(_keyed(ids, (d.readings for d in drafts)))
        with cur.copy(f"COPY ledger_entries ({_LEDGER_COLUMNS}) FROM STDIN") as copy:
            copy.write("".join([_charge_row(i, issue_date) for i in issued]))
        with cur.copy("COPY outbox (kind, customer_id, dedup_key, payload) FROM STDIN") as copy:
            copy.write("".join([_notice_row(i, d) for i, d in zip(issued, drafts, strict=True)]))
    return issued


def _charge_row(invoice: IssuedInvoice, booked_on: date) -> str:
    """The ledger entry of an issued invoice as COPY text: a charge, or a credit note."""
    kind, due = ("credit_note", NULL) if invoice.gross_grosze < 0 else ("charge", invoice.due_date)
    return (
        f"{invoice.customer_id}\t{kind}\t{invoice.gross_grosze}\t{booked_on}\t{due}"
        f"\t{invoice.invoice_id}\t{copy_text(invoice.invoice_no)}\n"
    )


def _notice_row(invoice: IssuedInvoice, draft: StagedInvoice) -> str:
    """The ``invoice_issued`` notice of an issued invoice as COPY text (its payload is JSON
    made by hand: json.dumps per invoice costs more than the rest of the row)."""
    estimated = "true" if draft.estimated else "false"
    payload = (
        f'{{"invoice_id": {invoice.invoice_id}, "invoice_no": {_json_text(invoice.invoice_no)},'
        f' "kind": "{draft.kind}", "gross_gr": {invoice.gross_grosze},'
        f' "due_date": "{invoice.due_date}", "period_start": "{draft.period.start}",'
        f' "period_end": "{draft.period.end}", "estimated": {estimated}}}'
    )
    return (
        f"invoice_issued\t{invoice.customer_id}\tinvoice:{invoice.invoice_id}"
        f"\t{copy_text(payload)}\n"
    )


def _json_text(value: str) -> str:
    """``value`` as a JSON string (quoted as json.dumps would, only when it has to be)."""
    return f'"{value}"' if _PLAIN.fullmatch(value) else json.dumps(value)


def _keyed(keys: Iterable[int], rows: Iterable[tuple[str, ...]]) -> str:
    """Each invoice's rows of COPY text, each started with the invoice's key."""
    return "".join([f"{key}{row}" for key, own in zip(keys, rows, strict=True) for row in own])


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
    """Lock the counter of (series, year), advance it by ``count``; return the first number.

    The exclusive series lock comes first, so no batch written ahead is in flight meanwhile.
    """
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (series_lock(series, year),))
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

_INVOICE_COLUMNS = (
    "invoice_id, contract_id, customer_id, kind, corrects_id, series, year, number,"
    " period_start, period_end, issue_date, due_date, net_gr, vat_gr, gross_gr, estimated,"
    " run_id, issued_at, status"
)
_LINE_COLUMNS = (
    "invoice_id, line_no, kind, description, valid_from, valid_to, quantity, unit, unit_price,"
    " net_gr, vat_rate, estimated"
)
_READING_COLUMNS = "invoice_id, meter_id, role, boundary, on_date, value_m3, source"
_LEDGER_COLUMNS = "customer_id, kind, amount_gr, booked_on, due_date, invoice_id, reference"
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
FROM unnest(%(ids)s::bigint[]) AS u(invoice_id) JOIN invoices USING (invoice_id)
ORDER BY invoice_id
"""

_WRITE_NOTICES = """
INSERT INTO outbox (kind, customer_id, dedup_key, payload)
SELECT 'invoice_issued', customer_id, 'invoice:' || invoice_id,
       jsonb_build_object('invoice_id', invoice_id, 'invoice_no', invoice_no,
                          'kind', kind, 'gross_gr', gross_gr, 'due_date', due_date,
                          'period_start', period_start, 'period_end', period_end,
                          'estimated', estimated)
FROM unnest(%(ids)s::bigint[]) AS u(invoice_id) JOIN invoices USING (invoice_id)
ORDER BY invoice_id
"""
