"""The settlement's fast path gives the very invoices the full rules give, to the grosz."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal

import psycopg
import pytest

from billing_engine.fastpath import fast_drafts
from billing_engine.model import BillingPeriod, ConsumptionRules, TariffVersion
from billing_engine.repository import add_tariff, load_tariffs
from billing_engine.settlement import RunOptions, settle
from billing_engine.tariffs import Tariff
from tests.billing.conftest import make_fleet

LATER = datetime(2026, 11, 6, 12, 0, tzinfo=UTC)
OCTOBER = BillingPeriod(date(2026, 10, 1), date(2026, 10, 31))
CHANGE = Tariff(
    "W2",
    (
        TariffVersion(date(2026, 1, 1), date(2026, 10, 14), Decimal("4.1"), Decimal("6.2"), 300),
        TariffVersion(date(2026, 10, 15), None, Decimal("4.3"), Decimal("6.6"), 310),
    ),
)
BUSINESS = Tariff(
    "W3",
    (
        TariffVersion(
            date(2026, 1, 1), None, Decimal("6.0123"), Decimal("9.8765"), 999, Decimal("0.23")
        ),
    ),
)

# Each statement makes some contracts of the fleet differ from the plain case.
VARIATIONS = (
    # a September invoice (the October opening) for half of them: group G2 is not settled
    "UPDATE contracts SET group_code = 'G2' WHERE contract_id % 2 = 0",
    # no readings near the start or near the end: estimates
    "DELETE FROM readings WHERE substr(meter_id, 2)::int % 5 = 1"
    " AND read_at BETWEEN '2026-09-28' AND '2026-10-05'",
    "DELETE FROM readings WHERE substr(meter_id, 2)::int % 7 = 3 AND read_at >= '2026-10-28'",
    # readings at odd hours, values with two decimals, a tie at the end boundary
    "UPDATE readings SET read_at = read_at + interval '13 hours 7 minutes'"
    " WHERE substr(meter_id, 2)::int % 11 = 4",
    "UPDATE readings SET value = round(value, 2) WHERE substr(meter_id, 2)::int % 4 = 3",
    "INSERT INTO readings (meter_id, read_at, storage, tariff, subunit, quantity, function,"
    " unit, value, received_at) SELECT meter_id, '2026-10-31 23:00:00+00'::timestamptz"
    " - (read_at - '2026-10-31 23:00:00+00'::timestamptz), 0, 0, 0, 'volume',"
    " 'instantaneous', 'm3', value - 0.007, now() FROM readings"
    " WHERE meter_id IN ('T0000022', 'T0000023') AND read_at > '2026-10-30 20:00+00'",
    # a jump, a falling register, a customer's reading
    "UPDATE readings SET value = value + 300 WHERE meter_id = 'T0000008'"
    " AND read_at > '2026-10-15'",
    "UPDATE readings SET value = value - 5 WHERE meter_id = 'T0000009' AND read_at > '2026-10-30'",
    "INSERT INTO customer_readings (contract_id, meter_id, read_on, value_m3)"
    " SELECT c.contract_id, i.meter_id, '2026-10-31', 9999 FROM contracts c"
    " JOIN meter_installations i USING (service_point_id) WHERE i.meter_id = 'T0000010'",
    # water only, sewage only
    "UPDATE contracts SET sewage = false WHERE contract_id % 6 = 1",
    "UPDATE contracts SET water = false WHERE contract_id % 10 = 7 AND sewage",
)


@pytest.fixture
def varied_fleet(billing_db: str) -> str:
    """60 contracts, some in the common case and some not, September settled for half."""
    make_fleet(billing_db, 60, first_day=date(2026, 6, 1))
    with psycopg.connect(billing_db) as conn:
        change, business = add_tariff(conn, CHANGE), add_tariff(conn, BUSINESS)
        conn.execute("INSERT INTO billing_groups (group_code) VALUES ('G2')")
        for statement in VARIATIONS:
            conn.execute(statement)
        conn.execute("UPDATE contracts SET tariff_id = %s WHERE contract_id %% 9 = 2", (change,))
        conn.execute("UPDATE contracts SET tariff_id = %s WHERE contract_id %% 13 = 5", (business,))
        conn.commit()
    settle(billing_db, "2026-09", group="G1", options=RunOptions(now=LATER))
    return billing_db


@pytest.fixture
def twin(varied_fleet: str) -> Iterator[str]:
    """A copy of the varied fleet's database."""
    base, name = varied_fleet.rsplit("/", 1)
    copy = f"mf_bill_twin_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{copy}" TEMPLATE "{name}"')
    yield f"{base}/{copy}"
    with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{copy}" WITH (FORCE)')


def _invoices(url: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT i.contract_id, i.invoice_no, i.net_gr, i.vat_gr, i.gross_gr, i.estimated,"
            " (SELECT array_agg(row(l.line_no, l.kind, l.description, l.valid_from, l.valid_to,"
            "   l.quantity::text, l.unit, l.unit_price::text, l.net_gr, l.vat_rate::text,"
            "   l.estimated)::text ORDER BY l.line_no) FROM invoice_lines l"
            "   WHERE l.invoice_id = i.invoice_id),"
            " (SELECT array_agg(row(b.meter_id, b.role, b.boundary, b.on_date, b.value_m3::text,"
            "   b.source)::text ORDER BY b.boundary) FROM billed_readings b"
            "   WHERE b.invoice_id = i.invoice_id)"
            " FROM invoices i WHERE i.period_start = '2026-10-01' ORDER BY i.contract_id"
        ).fetchall()


def test_fast_path_takes_the_common_case_and_leaves_the_rest(varied_fleet: str) -> None:
    with psycopg.connect(varied_fleet) as conn:
        ids = [r[0] for r in conn.execute("SELECT contract_id FROM contracts ORDER BY 1")]
        result = fast_drafts(conn, ids, OCTOBER, load_tariffs(conn), ConsumptionRules(), LATER)
    taken = {d.contract_id for d in result.drafts}
    assert 20 <= len(taken) <= 50
    assert taken.isdisjoint(result.rest) and taken | set(result.rest) == set(ids)
    assert not taken & {8, 9, 10}


def test_fast_path_and_full_rules_issue_identical_invoices(varied_fleet: str, twin: str) -> None:
    fast = settle(varied_fleet, "2026-10", options=RunOptions(now=LATER))
    full = settle(twin, "2026-10", options=RunOptions(now=LATER, fast_path=False))
    assert (fast.issued, fast.held, fast.failed) == (full.issued, full.held, full.failed)
    assert fast.gross_grosze == full.gross_grosze and fast.issued >= 50
    assert _invoices(varied_fleet) == _invoices(twin)


def test_fast_path_waits_while_boundary_readings_may_be_in_the_future(billing_db: str) -> None:
    make_fleet(billing_db, 3)
    soon = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
    with psycopg.connect(billing_db) as conn:
        ids = [r[0] for r in conn.execute("SELECT contract_id FROM contracts ORDER BY 1")]
        result = fast_drafts(conn, ids, OCTOBER, load_tariffs(conn), ConsumptionRules(), soon)
    assert (result.drafts, result.rest) == ([], ids)
