"""Correction invoices (faktury korygujące) when a billed end reading is corrected.

Two causes: staff correct a reading (``correct_reading``), or the next actual reading
replaces an estimated end where the utility's policy is a correction invoice rather than
absorbing the difference in the next period (``correct_estimate``, the value interpolated
by ``estimates.correction_for``). The correction bills what should have been billed less
what was (the original and any earlier corrections): difference lines from
``invoicing.correction_lines`` and, per VAT rate, the difference of the nets and of the VAT
amounts, so original plus corrections equal an invoice of the corrected reading to the
grosz. It references the original (``corrects_id``), carries the corrected end reading
(the next period opens from it) and is issued with its ledger entry (a credit note when
it refunds) and outbox notice in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from billing_engine.db import Conn, store_errors
from billing_engine.estimates import correction_for
from billing_engine.inputs import ContractInputs, load_contracts
from billing_engine.invoicing import correction_lines, invoice_lines, invoice_totals
from billing_engine.issuing import BilledReading, InvoiceDraft, IssuedInvoice, issue_new
from billing_engine.model import (
    BillingPeriod,
    BoundaryReading,
    InvoiceLine,
    InvoiceTotals,
    MeterReading,
    PeriodConsumption,
    ReadingSource,
    VatSummary,
)
from billing_engine.periods import boundary_instant
from billing_engine.repository import load_tariffs
from meterflow.errors import BillingError

CORRECTION_SERIES = "FK"


@dataclass(frozen=True)
class _Billed:
    contract: ContractInputs
    period: BillingPeriod
    lines: list[InvoiceLine]
    readings: dict[tuple[str, str, str], BilledReading]


def correct_reading(
    conn: Conn,
    invoice_id: int,
    end_m3: Decimal,
    *,
    issue_date: date,
    source: ReadingSource = "inspector",
    due_days: int = 14,
    series: str = CORRECTION_SERIES,
) -> IssuedInvoice:
    """Issue a correction of invoice ``invoice_id`` whose main meter's end read ``end_m3``.

    Raises BillingError if the invoice is not an issued regular one, its period had a
    meter replaced, the next period is invoiced already, the corrected value is below the
    start reading, or nothing changes.
    """
    billed = _load(conn, invoice_id)
    start, end = _main(billed, "start"), _main(billed, "end")
    if end_m3 < start.value_m3:
        raise BillingError(
            f"the corrected reading {end_m3} m3 is below the period's start {start.value_m3} m3"
        )
    corrected = BilledReading(end.meter_id, "main", "end", end.on_date, end_m3, source)
    return _issue(conn, invoice_id, billed, start, corrected, issue_date, due_days, series)


def correct_estimate(
    conn: Conn,
    invoice_id: int,
    actual: MeterReading,
    *,
    issue_date: date,
    due_days: int = 14,
    series: str = CORRECTION_SERIES,
) -> IssuedInvoice:
    """Issue a correction of an invoice whose end was estimated, from the actual reading.

    Raises BillingError if the billed end is not (or no longer) an estimate, the reading is
    not an actual one of that meter after the period's start, or as ``correct_reading``.
    """
    billed = _load(conn, invoice_id)
    start, end = _main(billed, "start"), _main(billed, "end")
    estimate = PeriodConsumption(
        billed.period,
        "main",
        _boundary(start),
        _boundary(end),
        end.value_m3 - start.value_m3,
        "billed",
    )
    fixed = correction_for(estimate, actual).corrected_end
    corrected = BilledReading(
        end.meter_id, "main", "end", end.on_date, fixed.value_m3, fixed.source
    )
    return _issue(conn, invoice_id, billed, start, corrected, issue_date, due_days, series)


def _boundary(reading: BilledReading) -> BoundaryReading:
    return BoundaryReading(
        reading.meter_id,
        boundary_instant(reading.on_date),
        reading.value_m3,
        "estimate" if reading.source == "estimate" else "inspector",
        f"billed {reading.source} reading of {reading.on_date}",
    )


def _load(conn: Conn, invoice_id: int) -> _Billed:
    row = conn.execute(
        "SELECT contract_id, period_start, period_end, kind, status FROM invoices"
        " WHERE invoice_id = %s",
        (invoice_id,),
    ).fetchone()
    if row is None or row[3] != "regular" or row[4] != "issued":
        raise BillingError(f"invoice {invoice_id} is not an issued regular invoice")
    contract = load_contracts(conn, [row[0]])[row[0]]
    later = conn.execute(
        "SELECT 1 FROM invoices WHERE contract_id = %s AND kind = 'regular' AND period_start = %s",
        (row[0], row[2] + timedelta(days=1)),
    ).fetchone()
    if later is not None:
        raise BillingError(
            f"the period after invoice {invoice_id} is invoiced already from its end reading;"
            " the difference is settled there"
        )
    period = BillingPeriod(row[1], row[2], contract.contract.billing_kind)
    return _Billed(contract, period, _billed_lines(conn, invoice_id), _readings(conn, invoice_id))


def _billed_lines(conn: Conn, invoice_id: int) -> list[InvoiceLine]:
    """The lines billed so far: the original's plus its corrections', summed per line key."""
    rows = conn.execute(
        "SELECT l.kind, l.description, l.valid_from, l.valid_to, l.quantity, l.unit,"
        " l.unit_price, l.net_gr, l.vat_rate FROM invoice_lines l JOIN invoices i"
        " USING (invoice_id) WHERE i.invoice_id = %s OR i.corrects_id = %s"
        " ORDER BY i.invoice_id, l.line_no",
        (invoice_id, invoice_id),
    ).fetchall()
    summed: dict[tuple[object, ...], InvoiceLine] = {}
    for r in rows:
        key = (r[0], r[2], r[3], r[6], r[8], r[5])
        line = summed.get(key)
        quantity, net = (line.quantity, line.net_grosze) if line else (Decimal(0), 0)
        description = line.description if line else r[1]
        summed[key] = InvoiceLine(
            r[0], description, r[2], r[3], quantity + r[4], r[5], r[6], net + int(r[7]), r[8]
        )
    return list(summed.values())


def _readings(conn: Conn, invoice_id: int) -> dict[tuple[str, str, str], BilledReading]:
    rows = conn.execute(
        "SELECT b.meter_id, b.role, b.boundary, b.on_date, b.value_m3, b.source"
        " FROM billed_readings b JOIN invoices i USING (invoice_id)"
        " WHERE i.invoice_id = %s OR i.corrects_id = %s ORDER BY i.invoice_id",
        (invoice_id, invoice_id),
    ).fetchall()
    return {(r[0], r[1], r[2]): BilledReading(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows}


def _main(billed: _Billed, boundary: str) -> BilledReading:
    found = [
        r for (_, role, side), r in billed.readings.items() if role == "main" and side == boundary
    ]
    if len(found) != 1:
        raise BillingError("a period with a replaced main meter is corrected by staff by hand")
    return found[0]


def _consumption(
    period: BillingPeriod, role: str, start: BilledReading, end: BilledReading
) -> PeriodConsumption:
    return PeriodConsumption(
        period,
        "garden" if role == "garden" else "main",
        _boundary(start),
        _boundary(end),
        end.value_m3 - start.value_m3,
        "corrected",
    )


def _issue(
    conn: Conn,
    invoice_id: int,
    billed: _Billed,
    start: BilledReading,
    end: BilledReading,
    issue_date: date,
    due_days: int,
    series: str,
) -> IssuedInvoice:
    tariff = load_tariffs(conn)[billed.contract.tariff_id]
    main = _consumption(billed.period, "main", start, end)
    garden_ends = [r for (_, role, _), r in billed.readings.items() if role == "garden"]
    garden = None
    if len(garden_ends) == 2:
        first, last = sorted(garden_ends, key=lambda r: r.boundary != "start")
        garden = _consumption(billed.period, "garden", first, last)
    contract = billed.contract.contract
    should = invoice_lines(contract, tariff, billed.period, main, garden)
    lines = correction_lines(billed.lines, should)
    if not lines:
        raise BillingError(f"the corrected reading changes nothing on invoice {invoice_id}")
    draft = InvoiceDraft(
        contract.contract_id,
        contract.customer_id,
        billed.period,
        tuple(lines),
        _difference(invoice_totals(billed.lines), invoice_totals(should)),
        (start, end),
        kind="correction",
        corrects_id=invoice_id,
        series=series,
    )
    with store_errors(f"correction of invoice {invoice_id}"), conn.transaction():
        return issue_new(conn, [draft], issue_date, due_days)[0]


def _difference(before: InvoiceTotals, after: InvoiceTotals) -> InvoiceTotals:
    """Per VAT rate: nets and VAT amounts after less before."""
    rates = sorted({s.vat_rate for s in (*before.by_rate, *after.by_rate)})
    old = {s.vat_rate: s for s in before.by_rate}
    new = {s.vat_rate: s for s in after.by_rate}
    zero = VatSummary(Decimal(0), 0, 0)
    return InvoiceTotals(
        tuple(
            VatSummary(
                rate,
                new.get(rate, zero).net_grosze - old.get(rate, zero).net_grosze,
                new.get(rate, zero).vat_grosze - old.get(rate, zero).vat_grosze,
            )
            for rate in rates
        )
    )
