"""Correction invoices: worked to the grosz, chained into the next period, refused when late."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import psycopg
import pytest

from billing_engine.corrections import correct_estimate, correct_reading
from billing_engine.inputs import load_inputs
from billing_engine.model import BillingPeriod, MeterReading
from billing_engine.settlement import RunOptions, settle
from meterflow.errors import BillingError
from tests.billing.conftest import NOW, make_fleet

ISSUE = date(2026, 11, 12)
NOVEMBER = BillingPeriod(date(2026, 11, 1), date(2026, 11, 30))


def _october(url: str) -> int:
    settle(url, "2026-10", options=RunOptions(now=NOW))
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT invoice_id, gross_gr FROM invoices").fetchone()
    assert row is not None
    return int(row[0])


def test_staff_correction_worked_to_the_grosz(billing_db: str) -> None:
    # Meter T0000001 reads 127.600 on 1 Oct and 136.600 on 31 Oct: 9 m3 at 5.89 + 7.64 PLN
    # and 4.80 PLN a month: net 126.57, VAT 10.13, gross 136.70 PLN. Staff correct the end to
    # 137.234 (9.634 m3): water 56.74, sewage 73.60, net 135.14, VAT 10.81, gross 145.95.
    make_fleet(billing_db, 1)
    original = _october(billing_db)
    with psycopg.connect(billing_db) as conn:
        issued = correct_reading(conn, original, Decimal("137.234"), issue_date=ISSUE)
        conn.commit()
        head = conn.execute(
            "SELECT kind, corrects_id, series, net_gr, vat_gr, gross_gr FROM invoices"
            " WHERE invoice_id = %s",
            (issued.invoice_id,),
        ).fetchone()
        lines = conn.execute(
            "SELECT kind, quantity, net_gr FROM invoice_lines WHERE invoice_id = %s"
            " ORDER BY line_no",
            (issued.invoice_id,),
        ).fetchall()
        gross = conn.execute("SELECT gross_gr FROM invoices WHERE invoice_id = %s", (original,))
        ledger = conn.execute(
            "SELECT kind, amount_gr FROM ledger_entries WHERE invoice_id = %s",
            (issued.invoice_id,),
        ).fetchone()
        opening = load_inputs(conn, [1], NOVEMBER, 90, 3)[1].openings["T0000001"]
    assert gross.fetchone() == (13670,)
    assert head == ("correction", original, "FK", 857, 68, 925)
    assert lines == [("water", Decimal("0.634"), 373), ("sewage", Decimal("0.634"), 484)]
    assert ledger == ("charge", 925)
    assert issued.invoice_no == "FK/1/2026"
    assert opening.value_m3 == Decimal("137.234")


def test_lower_reading_refunds_with_a_credit_note(billing_db: str) -> None:
    make_fleet(billing_db, 1)
    original = _october(billing_db)
    with psycopg.connect(billing_db) as conn:
        issued = correct_reading(conn, original, Decimal("136.000"), issue_date=ISSUE)
        ledger = conn.execute(
            "SELECT kind, amount_gr FROM ledger_entries WHERE invoice_id = %s",
            (issued.invoice_id,),
        ).fetchone()
        with pytest.raises(BillingError, match="below the period's start"):
            correct_reading(conn, original, Decimal("100"), issue_date=ISSUE)
        with pytest.raises(BillingError, match="changes nothing"):
            correct_reading(conn, original, Decimal("136.000"), issue_date=ISSUE)
    assert issued.gross_grosze < 0
    assert ledger == ("credit_note", issued.gross_grosze)


def test_actual_reading_corrects_an_estimated_end_once(billing_db: str) -> None:
    make_fleet(billing_db, 1)
    with psycopg.connect(billing_db) as conn:
        conn.execute("DELETE FROM readings WHERE read_at >= '2026-10-24'")
        conn.commit()
    original = _october(billing_db)
    actual = MeterReading(
        "T0000001", datetime(2026, 11, 10, 23, 0, tzinfo=UTC), Decimal("140.000"), "remote"
    )
    with psycopg.connect(billing_db) as conn:
        estimated = conn.execute(
            "SELECT source FROM billed_readings WHERE boundary = 'end'"
        ).fetchone()
        issued = correct_estimate(conn, original, actual, issue_date=ISSUE)
        conn.commit()
        ends = conn.execute(
            "SELECT source, value_m3 FROM billed_readings WHERE invoice_id = %s"
            " AND boundary = 'end'",
            (issued.invoice_id,),
        ).fetchone()
        with pytest.raises(BillingError, match="not an estimate"):
            correct_estimate(conn, original, actual, issue_date=ISSUE)
    assert estimated == ("estimate",)
    # Interpolated in time: 127.600 + 12.400 * (31 d 1 h / 41 d 1 h, the clock change
    # included) = 136.97868, to the litre.
    assert ends == ("remote", Decimal("136.979"))
