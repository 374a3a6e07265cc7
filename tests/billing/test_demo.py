"""Demo data: safe on every start, and last month settles at once for a fresh fleet."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import psycopg

from billing_engine.demo import seed_demo
from billing_engine.settlement import RunOptions, settle

TODAY = date(2026, 11, 22)
NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def _fleet(url: str) -> None:
    """Three meters read for the first time this morning, one never read."""
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO meters (meter_id, manufacturer, serial, status)"
            " SELECT 'D' || g, 'DEM', lpad(g::text, 8, '0'), 'active'"
            " FROM generate_series(1, 4) g"
        )
        conn.execute(
            "INSERT INTO readings (meter_id, read_at, storage, tariff, subunit, quantity,"
            " function, unit, value, received_at)"
            " SELECT 'D' || g, '2026-11-22 07:00+00', 0, 0, 0, 'volume', 'instantaneous',"
            " 'm3', 100 * g + 0.123, now() FROM generate_series(1, 3) g"
        )
        conn.commit()


def test_seed_demo_is_idempotent_and_last_month_settles_at_once(billing_db: str) -> None:
    _fleet(billing_db)
    assert seed_demo(billing_db, TODAY) == 3
    assert seed_demo(billing_db, TODAY) == 0
    summary = settle(billing_db, "2026-10", options=RunOptions(now=NOW))
    assert (summary.due, summary.issued, summary.held, summary.failed) == (3, 3, 0, {})
    with psycopg.connect(billing_db) as conn:
        history = conn.execute(
            "SELECT count(*), min(read_at AT TIME ZONE 'Europe/Warsaw')::date,"
            " max(value) FILTER (WHERE meter_id = 'D1') FROM readings WHERE source = 'demo'"
        ).fetchone()
        fitted = conn.execute(
            "SELECT meter_id, installed_on FROM meter_installations ORDER BY 1"
        ).fetchall()
    assert history is not None and history[0] == 3 * 52 and history[1] == date(2026, 10, 1)
    assert history[2] is not None and history[2] < Decimal("100.123")
    assert [f[0] for f in fitted] == ["D1", "D2", "D3"]
    assert {f[1] for f in fitted} == {date(2026, 10, 1)}
