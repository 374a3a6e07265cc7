"""The staff CLI, the settlement report (reconciles to invoices) and the invoice PDF."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import psycopg
import pytest
from pypdf import PdfReader

from billing_engine.pdf import load_document, render
from billing_engine.report import reconcile, write_report
from billing_engine.settlement import RunOptions, settle
from meterflow.cli import main
from tests.billing.conftest import NOW, make_fleet


def test_report_totals_reconcile_to_invoices_csv_and_xlsx(billing_db: str, tmp_path: Path) -> None:
    make_fleet(billing_db, 20)
    summary = settle(billing_db, "2026-10", options=RunOptions(now=NOW))
    totals = write_report(billing_db, "2026-10", tmp_path / "r.csv")
    reconcile(billing_db, "2026-10", totals)
    csv = pd.read_csv(tmp_path / "r.csv")
    assert list(csv["tariff_group"]) == ["W1", "TOTAL"]
    assert int(csv.loc[1, "gross_gr"]) == summary.gross_grosze
    assert int(csv.loc[1, "net_gr"]) + int(csv.loc[1, "vat_gr"]) == summary.gross_grosze
    write_report(billing_db, "2026-10", tmp_path / "r.xlsx")
    sheets = pd.read_excel(tmp_path / "r.xlsx", sheet_name=None)
    assert set(sheets) == {"totals", "invoices"} and len(sheets["invoices"]) == 20


def test_invoice_pdf_carries_polish_characters(billing_db: str, tmp_path: Path) -> None:
    make_fleet(billing_db, 10)
    settle(billing_db, "2026-10", options=RunOptions(now=NOW))
    out = tmp_path / "f.pdf"
    out.write_bytes(render(load_document(billing_db, 10)))
    text = PdfReader(out).pages[0].extract_text()
    for phrase in (
        "Faktura VAT nr FV/10/2026",
        "Odprowadzanie ścieków",
        "Opłata abonamentowa",
        "Zakład Żółć",
        "Źródlana",
        "Do zapłaty",
    ):
        assert phrase in text


def test_cli_run_dry_then_real_then_preview(
    billing_db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    make_fleet(billing_db, 6)
    monkeypatch.setenv("METERFLOW_DATABASE_URL", billing_db)
    assert main(["billing", "run", "--period", "2026-10", "--dry-run"]) == 0
    assert "would issue 6 invoices" in capsys.readouterr().out
    assert main(["billing", "run", "--period", "2026-10", "--group", "G1"]) == 0
    assert "issued 6 invoices" in capsys.readouterr().out
    assert main(["billing", "preview", "--customer", "K-T0000001"]) == 0
    shown = capsys.readouterr().out
    assert "FV/1/2026" in shown and "owes" in shown
    with psycopg.connect(billing_db) as conn:
        assert conn.execute("SELECT count(*) FROM billing_runs").fetchone() == (1,)


def test_cli_reports_a_malformed_period(
    billing_db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("METERFLOW_DATABASE_URL", billing_db)
    assert main(["billing", "run", "--period", "October"]) == 1
    assert "not a month like 2026-10" in capsys.readouterr().err
