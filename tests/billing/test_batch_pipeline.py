"""Batches written ahead on two connections: numbers stay gapless when another issuer comes
between, a contract invoiced meanwhile is skipped, and a second run alongside waits its turn."""

from __future__ import annotations

import threading
from datetime import date

import psycopg

from billing_engine.invoicing import invoice_totals
from billing_engine.issuing import InvoiceDraft, IssuedInvoice, issue_new, stage
from billing_engine.model import BillingPeriod
from billing_engine.pipeline import Batch, BatchWriter
from billing_engine.settlement import RunOptions, settle
from tests.billing.conftest import NOW, make_fleet

OCTOBER = BillingPeriod(date(2026, 10, 1), date(2026, 10, 31))
ISSUED_ON = date(2026, 11, 3)


def _drafts(url: str, series: str = "FV") -> list[InvoiceDraft]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT contract_id, customer_id FROM contracts ORDER BY 1").fetchall()
    return [InvoiceDraft(c, k, OCTOBER, (), invoice_totals([]), series=series) for c, k in rows]


def _issue_alone(url: str, drafts: list[InvoiceDraft]) -> list[IssuedInvoice]:
    with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
        return issue_new(conn, drafts, ISSUED_ON)


def _state(url: str, series: str = "FV") -> tuple[list[int], int, int, int]:
    with psycopg.connect(url) as conn:
        numbers = [
            r[0]
            for r in conn.execute(
                "SELECT number FROM invoices WHERE series = %s ORDER BY 1", (series,)
            )
        ]
        counts = conn.execute(
            "SELECT (SELECT count(DISTINCT contract_id) FROM invoices),"
            " (SELECT count(*) FROM ledger_entries), (SELECT count(*) FROM outbox)"
        ).fetchone()
    assert counts is not None
    return numbers, counts[0], counts[1], counts[2]


def _write_all(url: str, batches: list[list[InvoiceDraft]], between: object = None) -> int:
    """Issue ``batches`` through a BatchWriter; ``between()`` runs once it has started."""
    issued = []
    with psycopg.connect(url, autocommit=True) as reader:
        with BatchWriter(url, reader, "FV", ISSUED_ON, 14, None) as writer:
            if callable(between):
                between()
            for drafts in batches:
                issued.extend(writer.write(Batch(OCTOBER, [stage(d) for d in drafts], ())))
            issued.extend(writer.finish())
    return len(issued)


def test_batches_written_ahead_are_numbered_in_order_without_gaps(billing_db: str) -> None:
    make_fleet(billing_db, 30)
    drafts = _drafts(billing_db)
    assert _write_all(billing_db, [drafts[i : i + 4] for i in range(0, 30, 4)]) == 30
    assert _state(billing_db) == (list(range(1, 31)), 30, 30, 30)
    with psycopg.connect(billing_db) as conn:
        order = conn.execute("SELECT contract_id FROM invoices ORDER BY number").fetchall()
    assert [r[0] for r in order] == [d.contract_id for d in drafts]


def test_numbers_taken_by_another_issuer_meanwhile_are_not_reused(billing_db: str) -> None:
    make_fleet(billing_db, 25)
    drafts = _drafts(billing_db)
    batches = [drafts[i : i + 4] for i in range(0, 24, 4)]
    # The writer expects number 1 next; another issuer takes it before the first batch.
    written = _write_all(billing_db, batches, lambda: _issue_alone(billing_db, drafts[24:]))
    assert written == 24
    assert _state(billing_db) == (list(range(1, 26)), 25, 25, 25)


def test_a_contract_invoiced_meanwhile_is_skipped(billing_db: str) -> None:
    make_fleet(billing_db, 12)
    drafts = _drafts(billing_db)
    # Invoiced in another series: the counter of FV does not move, the contract's key does.
    elsewhere = [
        InvoiceDraft(
            drafts[5].contract_id,
            drafts[5].customer_id,
            OCTOBER,
            (),
            invoice_totals([]),
            series="FX",
        )
    ]
    written = _write_all(
        billing_db,
        [drafts[:4], drafts[4:8], drafts[8:]],
        lambda: _issue_alone(billing_db, elsewhere),
    )
    assert written == 11
    assert _state(billing_db) == (list(range(1, 12)), 12, 12, 12)
    assert _state(billing_db, "FX")[0] == [1]


def test_two_runs_of_one_series_at_once_keep_numbers_gapless(billing_db: str) -> None:
    make_fleet(billing_db, 80)
    with psycopg.connect(billing_db) as conn:
        conn.execute("INSERT INTO billing_groups (group_code) VALUES ('G2')")
        conn.execute("UPDATE contracts SET group_code = 'G2' WHERE contract_id % 2 = 0")
        conn.commit()
    options = RunOptions(now=NOW, batch_size=6)
    issued: list[int] = []

    def run(group: str) -> None:
        issued.append(settle(billing_db, "2026-10", group=group, options=options).issued)

    threads = [threading.Thread(target=run, args=(g,)) for g in ("G1", "G2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(issued) == [40, 40]
    assert _state(billing_db) == (list(range(1, 81)), 80, 80, 80)


def test_a_batch_with_nothing_to_issue_keeps_the_chain(billing_db: str) -> None:
    make_fleet(billing_db, 10)
    drafts = _drafts(billing_db)
    assert _write_all(billing_db, [drafts[:4], [], drafts[4:7], [], [], drafts[7:]]) == 10
    assert _state(billing_db) == (list(range(1, 11)), 10, 10, 10)
