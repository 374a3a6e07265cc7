"""Row factories of the customer-page tests: a contract with a meter, readings, an invoice."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import psycopg
from psycopg.rows import DictRow

Db = psycopg.Connection[DictRow]


@dataclasses.dataclass(frozen=True)
class Supply:
    """A customer's contract, premises and meter made by :func:`supply`."""

    customer_id: int
    contract_id: int
    service_point_id: int
    meter_id: str
    tariff_id: int
    address: str


def tariff(db: Db) -> int:
    """The test tariff group ``TP`` (made once)."""
    row = db.execute("SELECT tariff_id FROM tariffs WHERE tariff_group = 'TP'").fetchone()
    if row:
        return int(row["tariff_id"])
    db.execute("INSERT INTO billing_groups (group_code) VALUES ('GP') ON CONFLICT DO NOTHING")
    made = db.execute(
        "INSERT INTO tariffs (tariff_group, name) VALUES ('TP', 'Gospodarstwa domowe')"
        " RETURNING tariff_id"
    ).fetchone()
    assert made is not None
    db.execute(
        "INSERT INTO tariff_versions (tariff_id, valid_from, water_price_per_m3,"
        " sewage_price_per_m3, subscription_gr_per_month) VALUES (%s, '2020-01-01', 5.43, 7.12,"
        " 450)",
        (made["tariff_id"],),
    )
    return int(made["tariff_id"])


def supply(
    db: Db, customer_id: int, street: str = "ul. Wodna", installed_on: date | None = None
) -> Supply:
    """A monthly contract of ``customer_id`` at a new premises with a new meter."""
    tag = uuid.uuid4().hex[:8]
    meter_id = f"TST{tag}"
    address = f"{street} {int(tag, 16) % 500 + 1}"
    tariff_id = tariff(db)
    since = installed_on or date(2024, 1, 1)
    db.execute(
        "INSERT INTO meters (meter_id, manufacturer, serial, status, aes_key)"
        " VALUES (%s, 'TST', %s, 'active', %s)",
        (meter_id, tag, bytes(range(16))),
    )
    point = db.execute(
        "INSERT INTO service_points (address, city) VALUES (%s, 'Będzin') RETURNING *",
        (address,),
    ).fetchone()
    assert point is not None
    db.execute(
        "INSERT INTO meter_installations (meter_id, service_point_id, installed_on)"
        " VALUES (%s, %s, %s)",
        (meter_id, point["service_point_id"], since),
    )
    contract = db.execute(
        "INSERT INTO contracts (contract_no, customer_id, service_point_id, tariff_id,"
        " valid_from, group_code) VALUES (%s, %s, %s, %s, %s, 'GP') RETURNING contract_id",
        (f"U-{tag}", customer_id, point["service_point_id"], tariff_id, since),
    ).fetchone()
    assert contract is not None
    return Supply(
        customer_id,
        int(contract["contract_id"]),
        int(point["service_point_id"]),
        meter_id,
        tariff_id,
        address,
    )


def remote_readings(
    db: Db,
    meter_id: str,
    start: datetime,
    count: int,
    step: timedelta,
    per_step: Decimal,
    first: Decimal = Decimal("100"),
    gateway: str = "gw-test",
) -> None:
    """``count`` cumulative volume readings from ``start``, rising ``per_step`` each ``step``."""
    db.execute(
        "INSERT INTO readings (meter_id, read_at, storage, tariff, subunit, quantity, function,"
        " unit, value, received_at, gateway_id)"
        " SELECT %s, %s + n * %s, 0, 0, 0, 'volume', 'instantaneous', 'm3', %s + n * %s,"
        " %s + n * %s, %s FROM generate_series(0, %s - 1) AS n",
        (meter_id, start, step, first, per_step, start, step, gateway, count),
    )


def invoice(db: Db, s: Supply, gross_gr: int = 12_345, due: date | None = None) -> int:
    """An issued invoice of the supply with one line and its ledger charge; returns its id."""
    today = datetime.now(UTC).date()
    number = int(uuid.uuid4().int % 1_000_000_000)
    net = round(gross_gr / Decimal("1.08"))
    row = db.execute(
        "INSERT INTO invoices (contract_id, customer_id, status, series, year, number,"
        " period_start, period_end, issue_date, due_date, net_gr, vat_gr, gross_gr, issued_at)"
        " VALUES (%s, %s, 'issued', 'FT', 2026, %s, %s, %s, %s, %s, %s, %s, %s, now())"
        " RETURNING invoice_id",
        (
            s.contract_id,
            s.customer_id,
            number,
            today.replace(day=1) - timedelta(days=40),
            today.replace(day=1) - timedelta(days=10),
            today - timedelta(days=5),
            due or today + timedelta(days=9),
            net,
            gross_gr - net,
            gross_gr,
        ),
    ).fetchone()
    assert row is not None
    db.execute(
        "INSERT INTO invoice_lines (invoice_id, line_no, kind, description, valid_from, valid_to,"
        " quantity, unit, unit_price, net_gr, vat_rate) VALUES (%s, 1, 'water',"
        " 'Dostawa wody', '2026-01-01', '2026-01-31', 10, 'm3', 5.43, %s, 0.08)",
        (row["invoice_id"], net),
    )
    db.execute(
        "INSERT INTO ledger_entries (customer_id, kind, amount_gr, booked_on, due_date,"
        " invoice_id) VALUES (%s, 'charge', %s, %s, %s, %s)",
        (
            s.customer_id,
            gross_gr,
            today - timedelta(days=5),
            due or today + timedelta(days=9),
            row["invoice_id"],
        ),
    )
    return int(row["invoice_id"])
