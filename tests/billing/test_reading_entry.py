"""Customer and inspector readings into the store, and the settlement using them."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import psycopg
import pytest

from billing_engine.model import ReadingRefused
from billing_engine.reading_entry import submit_customer_reading, submit_inspector_reading
from billing_engine.settlement import RunOptions, settle
from tests.billing.conftest import NOW, make_fleet

OCT_31 = datetime(2026, 10, 31, 9, 0, tzinfo=UTC)


def _customer(conn: psycopg.Connection[tuple[object, ...]], meter: str) -> int:
    row = conn.execute(
        "SELECT c.customer_id FROM contracts c JOIN meter_installations m"
        " USING (service_point_id) WHERE m.meter_id = %s",
        (meter,),
    ).fetchone()
    assert row is not None
    return int(str(row[0]))


def _refusal(conn: psycopg.Connection[tuple[object, ...]], *args: object) -> str:
    with pytest.raises(ReadingRefused) as refused:
        submit_customer_reading(conn, *args)  # type: ignore[arg-type]
    return refused.value.code


def test_customer_reading_is_checked_and_stored(billing_db: str) -> None:
    make_fleet(billing_db, 2)
    with psycopg.connect(billing_db) as conn:
        me = _customer(conn, "T0000001")
        value = Decimal("200.000")
        accepted = submit_customer_reading(conn, me, "T0000001", value, OCT_31, NOW)
        assert (accepted.meter_id, accepted.source, str(accepted.read_on)) == (
            "T0000001",
            "customer",
            "2026-10-31",
        )
        assert _refusal(conn, me, "T0000002", value, OCT_31, NOW) == "not_customer"
        assert _refusal(conn, me, "T0000001", Decimal("100.1"), NOW, NOW) == "below_last_actual"
        assert _refusal(conn, me, "T0000001", value, datetime(2026, 12, 1, tzinfo=UTC), NOW) == (
            "future"
        )
        assert _refusal(conn, me, "T0000001", value, OCT_31, NOW) == "same_day"
        stored = conn.execute("SELECT count(*) FROM customer_readings").fetchone()
        assert stored == (1,)


def test_third_period_read_only_by_the_customer_is_refused(billing_db: str) -> None:
    make_fleet(billing_db, 1)
    with psycopg.connect(billing_db) as conn:
        conn.execute("DELETE FROM readings WHERE read_at >= '2026-07-31 20:00+00'")
        me = _customer(conn, "T0000001")
        for month, value in ((8, "150"), (9, "160")):
            at = datetime(2026, month, 20, 9, 0, tzinfo=UTC)
            submit_customer_reading(conn, me, "T0000001", Decimal(value), at, NOW)
        code = _refusal(conn, me, "T0000001", Decimal("170"), OCT_31, NOW)
    assert code == "third_period"


def test_settlement_takes_the_customer_reading_when_no_remote_one_is_near(
    billing_db: str,
) -> None:
    make_fleet(billing_db, 1)
    with psycopg.connect(billing_db) as conn:
        conn.execute("DELETE FROM readings WHERE read_at >= '2026-10-26'")
        me = _customer(conn, "T0000001")
        submit_customer_reading(conn, me, "T0000001", Decimal("137.000"), OCT_31, NOW)
        conn.commit()
    assert settle(billing_db, "2026-10", options=RunOptions(now=NOW)).issued == 1
    with psycopg.connect(billing_db) as conn:
        row = conn.execute(
            "SELECT value_m3, source FROM billed_readings WHERE boundary = 'end'"
        ).fetchone()
    assert row == (Decimal("137.000"), "customer")


def test_inspector_reading_nearer_the_boundary_wins_over_remote(billing_db: str) -> None:
    make_fleet(billing_db, 1)
    nov_1 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
    with psycopg.connect(billing_db) as conn:
        submit_inspector_reading(conn, "T0000001", Decimal("137.000"), nov_1, NOW)
        again = submit_inspector_reading(conn, "T0000001", Decimal("137.250"), nov_1, NOW)
        with pytest.raises(ReadingRefused):
            submit_inspector_reading(conn, "NOPE", Decimal(1), nov_1, NOW)
        conn.commit()
    assert again.value_m3 == Decimal("137.250")
    assert settle(billing_db, "2026-10", options=RunOptions(now=NOW)).issued == 1
    with psycopg.connect(billing_db) as conn:
        row = conn.execute(
            "SELECT value_m3, source FROM billed_readings WHERE boundary = 'end'"
        ).fetchone()
    assert row == (Decimal("137.250"), "inspector")
