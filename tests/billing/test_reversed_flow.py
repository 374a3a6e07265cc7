"""Reversed flow in the store: the backward register is read and netted, never billed."""

from __future__ import annotations

import psycopg

from billing_engine.settlement import RunOptions, settle
from tests.billing.conftest import NOW, make_fleet

BACKWARD = (
    "INSERT INTO readings (meter_id, read_at, storage, tariff, subunit, quantity, function,"
    " unit, value, received_at) SELECT meter_id, read_at, 0, 0, 0, 'volume:backward',"
    " 'instantaneous', 'm3', CASE WHEN read_at > '2026-10-20' THEN 3 ELSE 0.5 END, read_at"
    " FROM readings WHERE meter_id = 'T0000001' AND quantity = 'volume'"
)
FALLING = (
    "UPDATE readings SET value = value - 2 WHERE quantity = 'volume' AND read_at > '2026-10-20'"
)


def _october(url: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT b.meter_id, b.value_m3, l.quantity FROM invoices i"
            " JOIN billed_readings b USING (invoice_id) JOIN invoice_lines l USING (invoice_id)"
            " WHERE b.boundary = 'end' AND l.kind = 'water' ORDER BY 1"
        ).fetchall()


def test_falling_register_with_backward_rise_bills_zero_and_carries_start(
    billing_db: str,
) -> None:
    make_fleet(billing_db, 2, litres_per_day=10)
    with psycopg.connect(billing_db) as conn:
        conn.execute(BACKWARD)
        conn.execute(FALLING)
        start = conn.execute(
            "SELECT value FROM readings WHERE meter_id = 'T0000001' AND quantity = 'volume'"
            " AND read_at < '2026-10-01' ORDER BY read_at DESC LIMIT 1"
        ).fetchone()
        conn.commit()
    summary = settle(billing_db, "2026-10", options=RunOptions(now=NOW))
    assert (summary.issued, summary.held) == (1, 1)
    assert start is not None
    assert _october(billing_db) == [("T0000001", start[0], 0)]
    with psycopg.connect(billing_db) as conn:
        held = conn.execute("SELECT meter_id, reason FROM held_readings").fetchall()
    assert [h[0] for h in held] == ["T0000002"]
    assert "without reversed-flow record" in str(held[0][1])
