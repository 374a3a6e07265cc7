"""What a settlement reads from the store, set-based for a batch of contracts.

Only the readings the rules can use are fetched per meter: around each period boundary the
nearest remote reading on either side (within the boundary window, or the latest in the
previous ``history_days`` before a boundary), and the first reading of that history, which
gives the average daily use. A meter that must be estimated gets its full history instead
(see ``full_history``), so the rules see the same values as with every reading.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from billing_engine.db import Conn
from billing_engine.model import (
    BillingPeriod,
    BoundaryReading,
    Contract,
    MeterInstallation,
    MeterReading,
    PeriodKind,
)
from billing_engine.periods import boundary_instant

VOLUME = (
    "quantity = 'volume' AND function = 'instantaneous' AND storage = 0 AND tariff = 0"
    " AND subunit = 0"
)
# The reversed-flow register of the same telegram (ingest/rows.py names it so).
BACKWARD = (
    "quantity = 'volume:backward' AND function = 'instantaneous' AND storage = 0"
    " AND tariff = 0 AND subunit = 0"
)
# A customer's reading is taken as read at noon of its day.
CUSTOMER_READ_HOUR = timedelta(hours=12)


@dataclass
class ContractInputs:
    """One contract's contract, meters, readings and the previous billed end readings."""

    contract: Contract
    tariff_id: int
    installations: list[MeterInstallation] = field(default_factory=list)
    readings: list[MeterReading] = field(default_factory=list)
    openings: dict[str, BoundaryReading] = field(default_factory=dict)


def due_contracts(
    conn: Conn, period: BillingPeriod, group: str | None, kind: PeriodKind
) -> list[int]:
    """Ids of contracts of ``kind`` (and ``group``) active in ``period`` and not yet settled
    for it (no regular invoice, no reading held for review)."""
    rows = conn.execute(
        "SELECT c.contract_id FROM contracts c"
        " WHERE c.billing_period = %(kind)s"
        "   AND (%(group)s::text IS NULL OR c.group_code = %(group)s)"
        "   AND c.valid_from <= %(end)s AND (c.valid_to IS NULL OR c.valid_to >= %(start)s)"
        "   AND NOT EXISTS (SELECT 1 FROM invoices i WHERE i.contract_id = c.contract_id"
        "       AND i.kind = 'regular' AND i.period_start = %(start)s AND i.period_end = %(end)s)"
        "   AND NOT EXISTS (SELECT 1 FROM held_readings h WHERE h.contract_id = c.contract_id"
        "       AND h.resolved_at IS NULL AND h.period_start = %(start)s)"
        " ORDER BY c.contract_id",
        {"kind": kind, "group": group, "start": period.start, "end": period.end},
    ).fetchall()
    return [int(r[0]) for r in rows]


def load_inputs(
    conn: Conn,
    contract_ids: Sequence[int],
    period: BillingPeriod,
    history_days: int,
    window_days: int,
) -> dict[int, ContractInputs]:
    """Contracts, installations, boundary readings and openings of ``contract_ids``."""
    inputs = load_contracts(conn, contract_ids)
    by_meter: dict[str, list[ContractInputs]] = {}
    for cid, meter in _installations(conn, contract_ids, period):
        inputs[cid].installations.append(meter)
        by_meter.setdefault(meter.meter_id, []).append(inputs[cid])
    for reading in boundary_readings(conn, list(by_meter), period, history_days, window_days):
        for target in by_meter[reading.meter_id]:
            target.readings.append(reading)
    for cid, reading in _customer_readings(conn, contract_ids, period, history_days):
        inputs[cid].readings.append(reading)
    for cid, opening in _openings(conn, contract_ids, period):
        inputs[cid].openings[opening.meter_id] = opening
    return inputs


def load_contracts(conn: Conn, contract_ids: Sequence[int]) -> dict[int, ContractInputs]:
    """The contracts of ``contract_ids`` (with their tariff id), meters and readings empty."""
    rows = conn.execute(
        "SELECT c.contract_id, c.customer_id, cu.kind, t.tariff_group, c.billing_period,"
        " c.valid_from, c.valid_to, c.water, c.sewage, c.group_code, c.tariff_id"
        " FROM contracts c JOIN customers cu USING (customer_id) JOIN tariffs t USING (tariff_id)"
        " WHERE c.contract_id = ANY(%s)",
        (list(contract_ids),),
    ).fetchall()
    return {
        r[0]: ContractInputs(
            Contract(
                r[0],
                r[1],
                "consumer" if r[2] == "person" else "business",
                r[3],
                r[4],
                r[5],
                r[6],
                r[7],
                r[8],
                r[9],
            ),
            r[10],
        )
        for r in rows
    }


def _installations(
    conn: Conn, contract_ids: Sequence[int], period: BillingPeriod
) -> list[tuple[int, MeterInstallation]]:
    rows = conn.execute(
        "SELECT c.contract_id, m.meter_id, m.installed_on, m.removed_on, m.initial_m3,"
        " m.final_m3, m.role FROM contracts c JOIN meter_installations m USING (service_point_id)"
        " WHERE c.contract_id = ANY(%s) AND m.installed_on <= %s"
        "   AND (m.removed_on IS NULL OR m.removed_on >= %s)",
        (list(contract_ids), period.end, period.start),
    ).fetchall()
    return [(r[0], MeterInstallation(r[1], r[2], r[3], r[4], r[5], r[6])) for r in rows]


def boundary_readings(
    conn: Conn,
    meter_ids: Sequence[str],
    period: BillingPeriod,
    history_days: int,
    window_days: int,
) -> list[MeterReading]:
    """The remote readings of ``meter_ids`` the rules need for ``period`` (see module doc)."""
    if not meter_ids:
        return []
    start, end = _instants(period)
    params = {
        "meters": list(meter_ids),
        "s": start,
        "e": end,
        "hist": timedelta(days=history_days),
        "win": timedelta(days=window_days),
    }
    rows = conn.execute(_BOUNDARY_READINGS, params).fetchall()
    return [MeterReading(r[0], r[1], r[2], "remote", r[3]) for r in rows]


def full_history(
    conn: Conn, meter_ids: Sequence[str], period: BillingPeriod, window_days: int
) -> list[MeterReading]:
    """Every remote reading of ``meter_ids`` from 400 days before ``period`` to its end."""
    start, end = _instants(period)
    rows = conn.execute(
        "SELECT r.meter_id, r.read_at, r.value, b.value FROM readings r"
        " LEFT JOIN readings b ON b.meter_id = r.meter_id AND b.read_at = r.read_at"
        f"   AND {_qualified(BACKWARD, 'b')}"
        f" WHERE r.meter_id = ANY(%s) AND {_qualified(VOLUME, 'r')}"
        " AND r.read_at >= %s AND r.read_at <= %s ORDER BY r.meter_id, r.read_at",
        (list(meter_ids), start - timedelta(days=400), end + timedelta(days=window_days)),
    ).fetchall()
    return [MeterReading(r[0], r[1], r[2], "remote", r[3]) for r in rows]


def _qualified(condition: str, alias: str) -> str:
    """``condition`` (``VOLUME`` or ``BACKWARD``) with every column taken from ``alias``."""
    return f"{alias}." + condition.replace(" AND ", f" AND {alias}.")


def _customer_readings(
    conn: Conn, contract_ids: Sequence[int], period: BillingPeriod, history_days: int
) -> list[tuple[int, MeterReading]]:
    rows = conn.execute(
        "SELECT contract_id, meter_id, read_on, value_m3, source FROM customer_readings"
        " WHERE contract_id = ANY(%s) AND read_on >= %s AND read_on <= %s",
        (
            list(contract_ids),
            period.start - timedelta(days=history_days + 365),
            period.end + timedelta(days=history_days),
        ),
    ).fetchall()
    return [
        (r[0], MeterReading(r[1], boundary_instant(r[2]) + CUSTOMER_READ_HOUR, r[3], r[4]))
        for r in rows
    ]


def _openings(
    conn: Conn, contract_ids: Sequence[int], period: BillingPeriod
) -> list[tuple[int, BoundaryReading]]:
    """The previous period's billed end per meter; a correction invoice's end wins."""
    rows = conn.execute(
        "SELECT DISTINCT ON (i.contract_id, b.meter_id) i.contract_id, b.meter_id, b.on_date,"
        " b.value_m3, b.source FROM invoices i JOIN billed_readings b USING (invoice_id)"
        " WHERE i.contract_id = ANY(%s) AND i.period_end = %s AND b.boundary = 'end'"
        " ORDER BY i.contract_id, b.meter_id, i.invoice_id DESC",
        (list(contract_ids), period.start - timedelta(days=1)),
    ).fetchall()
    return [
        (r[0], BoundaryReading(r[1], boundary_instant(r[2]), r[3], r[4], _opening_basis(r[2])))
        for r in rows
    ]


def _opening_basis(on_date: date) -> str:
    return f"billed end reading of {on_date:%Y-%m-%d}"


def _instants(period: BillingPeriod) -> tuple[datetime, datetime]:
    return boundary_instant(period.start), boundary_instant(period.end + timedelta(days=1))


_ONE = f"""
    SELECT read_at, value FROM readings
    WHERE meter_id = m.meter_id AND {VOLUME} AND read_at >= %(LOW)s AND read_at <= %(HIGH)s
    ORDER BY read_at %(DIR)s LIMIT 1
"""


def _one(low: str, high: str, direction: str) -> str:
    return (
        "("
        + _ONE.replace("%(LOW)s", low).replace("%(HIGH)s", high).replace("%(DIR)s", direction)
        + ")"
    )


_BOUNDARY_READINGS = (
    "SELECT DISTINCT m.meter_id, r.read_at, r.value, (SELECT b.value FROM readings b"
    f" WHERE b.meter_id = m.meter_id AND b.read_at = r.read_at AND {BACKWARD} LIMIT 1)"
    " FROM unnest(%(meters)s::text[]) AS m(meter_id) CROSS JOIN LATERAL ("
    + " UNION ALL ".join(
        [
            _one("%(s)s - %(hist)s", "%(s)s", "ASC"),
            _one("%(s)s - %(hist)s", "%(s)s", "DESC"),
            _one("%(s)s", "%(s)s + %(win)s", "ASC"),
            _one("%(e)s - %(win)s", "%(e)s", "DESC"),
            _one("%(e)s", "%(e)s + %(win)s", "ASC"),
        ]
    )
    + ") AS r ORDER BY 1, 2"
)
