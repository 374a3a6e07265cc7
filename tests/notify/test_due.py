"""Overdue reminders (a charge still owed 3 days past due, no demand yet) and contract-ending
notices (30 days ahead, unless a newer contract follows), each queued once."""

from __future__ import annotations

from datetime import date, timedelta

import psycopg
import pytest

from billing_engine.notify.due import queue_contract_endings, queue_overdue_reminders
from meterflow.cli import main
from tests.notify.conftest import add_customer

TODAY = date(2026, 11, 20)


def _charge(conn: psycopg.Connection[object], customer: int, due: date, ref: str) -> int:
    row = conn.execute(
        "INSERT INTO ledger_entries (customer_id, kind, amount_gr, booked_on, due_date, reference)"
        " VALUES (%s, 'charge', 10000, %s, %s, %s) RETURNING entry_id",
        (customer, due - timedelta(days=14), due, ref),
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_overdue_reminder_for_what_is_still_owed(notify_db: str) -> None:
    with psycopg.connect(notify_db) as conn:
        customer = add_customer(conn)
        owed = _charge(conn, customer, TODAY - timedelta(days=5), "FV/1/2026")
        paid = _charge(conn, customer, TODAY - timedelta(days=5), "FV/2/2026")
        recent = _charge(conn, customer, TODAY - timedelta(days=1), "FV/3/2026")
        demanded = _charge(conn, customer, TODAY - timedelta(days=5), "FV/4/2026")
        payment = conn.execute(
            "INSERT INTO ledger_entries (customer_id, kind, amount_gr, booked_on, reference)"
            " VALUES (%s, 'payment', -10000, %s, 'P1') RETURNING entry_id",
            (customer, TODAY),
        ).fetchone()
        assert payment is not None
        conn.execute(
            "INSERT INTO payment_allocations VALUES (%s, %s, 10000, %s)", (payment[0], paid, TODAY)
        )
        conn.execute(
            "INSERT INTO payment_demands (charge_id, customer_id, issued_on, overdue_gr, pay_by)"
            " VALUES (%s, %s, %s, 10000, %s)",
            (demanded, customer, TODAY, TODAY + timedelta(days=7)),
        )
        assert queue_overdue_reminders(conn, TODAY) == 1
        assert queue_overdue_reminders(conn, TODAY + timedelta(days=1)) == 0
        rows = conn.execute(
            "SELECT payload->>'charge_id', payload->>'invoice_no', payload->>'overdue_gr'"
            " FROM outbox WHERE kind = 'overdue_reminder'"
        ).fetchall()
    assert rows == [(str(owed), "FV/1/2026", "10000")]  # not recent, paid nor demanded
    assert recent not in (owed, paid, demanded)


def test_contract_ending_once_unless_renewed(notify_db: str) -> None:
    with psycopg.connect(notify_db) as conn:
        conn.execute("INSERT INTO billing_groups (group_code) VALUES ('A')")
        conn.execute("INSERT INTO tariffs (tariff_group) VALUES ('G1')")
        ending = _contract(conn, "U/1", TODAY + timedelta(days=20))
        _contract(conn, "U/2", TODAY + timedelta(days=40))
        renewed = _contract(conn, "U/3", TODAY + timedelta(days=20))
        conn.execute(
            "INSERT INTO contracts (contract_no, customer_id, service_point_id, valid_from,"
            " group_code, tariff_id) SELECT 'U/3b', customer_id, service_point_id, %s, 'A',"
            " tariff_id FROM contracts WHERE contract_id = %s",
            (TODAY + timedelta(days=21), renewed),
        )
        assert queue_contract_endings(conn, TODAY) == 1
        assert queue_contract_endings(conn, TODAY + timedelta(days=1)) == 0
        row = conn.execute(
            "SELECT payload->>'contract_id', payload->>'contract_no', payload->>'valid_to'"
            " FROM outbox WHERE kind = 'contract_ending'"
        ).fetchone()
    assert row == (str(ending), "U/1", (TODAY + timedelta(days=20)).isoformat())


def test_queue_due_command(
    notify_db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("METERFLOW_DATABASE_URL", notify_db)
    assert main(["notify", "queue-due", "--today", TODAY.isoformat()]) == 0
    assert "queued 0 overdue reminders and 0 contract-ending notices" in capsys.readouterr().out


def _contract(conn: psycopg.Connection[object], number: str, valid_to: date) -> int:
    customer = add_customer(conn)
    point = conn.execute(
        "INSERT INTO service_points (address) VALUES ('ul. Wodna 1') RETURNING service_point_id"
    ).fetchone()
    assert point is not None
    row = conn.execute(
        "INSERT INTO contracts (contract_no, customer_id, service_point_id, valid_from, valid_to,"
        " group_code, tariff_id) VALUES (%s, %s, %s, '2020-01-01', %s, 'A',"
        " (SELECT tariff_id FROM tariffs)) RETURNING contract_id",
        (number, customer, point[0], valid_to),
    ).fetchone()
    assert row is not None
    return int(row[0])
