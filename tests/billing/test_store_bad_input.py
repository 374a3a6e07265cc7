"""Bad input gets a clear BillingError and leaves nothing half-written."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import psycopg
import pytest

from billing_engine.model import TariffVersion
from billing_engine.repository import add_customer, add_tariff, add_tariff_versions
from billing_engine.settlement import RunOptions, settle
from billing_engine.tariffs import Tariff
from meterflow.errors import BillingError
from tests.billing.conftest import NOW, make_fleet

V1 = TariffVersion(date(2026, 1, 1), date(2026, 6, 30), Decimal("5.00"), Decimal("6.00"), 400)


def _count(url: str, table: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(row[0]) if row else 0


def test_tariff_with_overlapping_versions_is_refused_whole(billing_db: str) -> None:
    overlapping = TariffVersion(date(2026, 6, 1), None, Decimal("5.50"), Decimal("6.50"), 400)
    with psycopg.connect(billing_db) as conn, pytest.raises(BillingError, match="overlaps"):
        add_tariff(conn, Tariff("X", (V1, overlapping)))
    assert _count(billing_db, "tariffs") == 0


def test_store_refuses_an_overlapping_version_added_later(billing_db: str) -> None:
    with psycopg.connect(billing_db) as conn:
        tariff_id = add_tariff(conn, Tariff("X", (V1,)))
        conn.commit()
        later = TariffVersion(date(2026, 6, 30), None, Decimal("5.5"), Decimal("6.5"), 400)
        with pytest.raises(BillingError, match="tariff_versions_no_overlap"):
            add_tariff_versions(conn, tariff_id, [later])
    assert _count(billing_db, "tariff_versions") == 1


def test_negative_price_is_refused(billing_db: str) -> None:
    negative = TariffVersion(date(2026, 1, 1), None, Decimal("-1"), Decimal("6"), 400)
    with psycopg.connect(billing_db) as conn, pytest.raises(BillingError, match="price"):
        add_tariff(conn, Tariff("N", (negative,)))
    assert _count(billing_db, "tariffs") == 0


def test_business_with_a_bad_nip_is_refused(billing_db: str) -> None:
    with psycopg.connect(billing_db) as conn, pytest.raises(BillingError, match="NIP"):
        add_customer(conn, "K-1", "Zakład", nip="5261040827")
    assert _count(billing_db, "customers") == 0


def test_period_with_no_readings_at_all_is_refused(billing_db: str) -> None:
    make_fleet(billing_db, 3, first_day=date(2026, 7, 1), last_day=date(2026, 8, 31))
    with pytest.raises(BillingError, match="single meter reading"):
        settle(billing_db, "2026-10", options=RunOptions(now=NOW))
    assert _count(billing_db, "invoices") == _count(billing_db, "billing_runs") == 0


def test_reading_in_the_future_fails_its_contract_only(billing_db: str) -> None:
    make_fleet(billing_db, 3)
    with psycopg.connect(billing_db) as conn:
        conn.execute(
            "INSERT INTO readings (meter_id, read_at, storage, tariff, subunit, quantity,"
            " function, unit, value, received_at) VALUES ('T0000002', %s, 0, 0, 0, 'volume',"
            " 'instantaneous', 'm3', 999, %s)",
            (datetime(2026, 11, 2, 12, tzinfo=UTC), NOW),
        )
    early = datetime(2026, 11, 1, 0, 0, tzinfo=UTC)
    summary = settle(billing_db, "2026-10", options=RunOptions(now=early))
    assert summary.issued == 2
    assert list(summary.failed) == [2] and "future" in summary.failed[2]
    with psycopg.connect(billing_db) as conn:
        rows = conn.execute("SELECT contract_id FROM invoices ORDER BY 1").fetchall()
        booked = conn.execute("SELECT count(*) FROM ledger_entries").fetchone()
    assert [r[0] for r in rows] == [1, 3] and booked == (2,)
