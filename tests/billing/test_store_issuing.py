"""Issuing in the store: gapless numbers under concurrency, outbox and ledger with invoices."""

from __future__ import annotations

import threading
from datetime import date

import psycopg
import pytest

from billing_engine.issuing import InvoiceDraft, insert_drafts, issue_drafts
from billing_engine.model import BillingPeriod
from billing_engine.settlement import RunOptions, settle
from tests.billing.conftest import NOW, make_fleet

OCTOBER = BillingPeriod(date(2026, 10, 1), date(2026, 10, 31))


def _numbers(url: str) -> list[int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT number FROM invoices WHERE status = 'issued' ORDER BY 1")
        return [r[0] for r in rows.fetchall()]


def test_settlement_writes_invoice_lines_ledger_and_outbox_together(billing_db: str) -> None:
    make_fleet(billing_db, 12)
    summary = settle(billing_db, "2026-10", options=RunOptions(now=NOW))
    assert (summary.due, summary.issued, summary.failed) == (12, 12, {})
    with psycopg.connect(billing_db) as conn:
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM invoices), (SELECT count(*) FROM ledger_entries),"
            " (SELECT count(*) FROM outbox WHERE kind = 'invoice_issued' AND sent_at IS NULL),"
            " (SELECT count(DISTINCT invoice_id) FROM invoice_lines),"
            " (SELECT sum(gross_gr) FROM invoices), (SELECT sum(amount_gr) FROM ledger_entries)"
        ).fetchone()
    assert counts is not None
    assert counts[:4] == (12, 12, 12, 12)
    assert counts[4] == counts[5] == summary.gross_grosze


def test_rerun_issues_nothing_twice(billing_db: str) -> None:
    make_fleet(billing_db, 5)
    settle(billing_db, "2026-10", options=RunOptions(now=NOW))
    again = settle(billing_db, "2026-10", options=RunOptions(now=NOW))
    assert (again.due, again.issued) == (0, 0)
    assert _numbers(billing_db) == [1, 2, 3, 4, 5]


def test_dry_run_writes_nothing(billing_db: str) -> None:
    make_fleet(billing_db, 4)
    summary = settle(billing_db, "2026-10", dry_run=True, options=RunOptions(now=NOW))
    assert summary.issued == 4 and summary.gross_grosze > 0
    assert _numbers(billing_db) == []


def test_concurrent_issuers_get_gapless_unique_numbers(billing_db: str) -> None:
    make_fleet(billing_db, 40)
    with psycopg.connect(billing_db) as conn:
        rows = conn.execute("SELECT contract_id, customer_id FROM contracts ORDER BY 1").fetchall()
    from billing_engine.invoicing import invoice_totals

    drafts = [InvoiceDraft(c, k, OCTOBER, (), invoice_totals([])) for c, k in rows]
    errors: list[BaseException] = []

    def issue(chunk: list[InvoiceDraft]) -> None:
        try:
            for draft in chunk:
                with psycopg.connect(billing_db, autocommit=True) as conn, conn.transaction():
                    created = insert_drafts(conn, [draft])
                    issue_drafts(conn, list(created.values()), date(2026, 11, 3))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=issue, args=(drafts[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert _numbers(billing_db) == list(range(1, 41))


def test_a_failed_issuing_transaction_leaves_no_gap(billing_db: str) -> None:
    make_fleet(billing_db, 3)
    with psycopg.connect(billing_db) as conn:
        rows = conn.execute("SELECT contract_id, customer_id FROM contracts ORDER BY 1").fetchall()
    from billing_engine.invoicing import invoice_totals

    drafts = [InvoiceDraft(c, k, OCTOBER, (), invoice_totals([])) for c, k in rows]
    with psycopg.connect(billing_db, autocommit=True) as conn:
        with pytest.raises(RuntimeError), conn.transaction():
            issue_drafts(conn, list(insert_drafts(conn, drafts[:1]).values()), date(2026, 11, 3))
            raise RuntimeError("crash after numbering")
        with conn.transaction():
            issue_drafts(conn, list(insert_drafts(conn, drafts).values()), date(2026, 11, 3))
    assert _numbers(billing_db) == [1, 2, 3]
