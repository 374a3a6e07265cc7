"""The settlement's fast path: the common case priced in bulk, everything else left over.

The common case: a contract covering the whole period, one main meter fitted before it and
not removed in it, no other meter, no customer or inspector reading near it, one tariff
version for the whole period, the start from the previous invoice's actual end reading (or
the remote reading nearest the start) and the remote reading nearest the end, both in the
boundary window, the register going up, and use below the jump floor. Set-based SQL finds
the candidates, both boundary readings (``DISTINCT ON`` the nearest) and the openings; the
volume is taken in exact litres; NumPy prices water, sewage, the fee and the VAT on int64
grosze (prices in 1/10,000 PLN, rates in 1/10,000). Every other contract
goes to the full rules, which give the very same invoice for a common-case contract
(``tests/billing/test_fast_path.py`` proves it on a varied population).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from billing_engine.db import Conn, id_array, text_array
from billing_engine.inputs import VOLUME
from billing_engine.invoicing import DESCRIPTIONS, MONTH_QUANTUM
from billing_engine.issuing import (
    LineTemplate,
    StagedInvoice,
    line_row,
    line_template,
    reading_row,
)
from billing_engine.model import (
    ACTUAL_SOURCES,
    BillingPeriod,
    ConsumptionRules,
    InvoiceLine,
    LineKind,
    TariffVersion,
)
from billing_engine.money import round_half_up
from billing_engine.periods import boundary_instant
from billing_engine.tariffs import Tariff

ZERO = Decimal(0)
HALF_DAY = timedelta(hours=12)
Ints = npt.NDArray[np.int64]


class _Row(NamedTuple):
    contract_id: int
    customer_id: int
    tariff_id: int
    water: bool
    sewage: bool
    start_source: str
    start_m3: Decimal | None
    end_m3: Decimal | None
    litres: int | None
    meter_id: str


@dataclass(frozen=True)
class FastResult:
    """Drafts priced by the fast path and the contract ids the full rules must take."""

    drafts: list[StagedInvoice]
    rest: list[int]


def fast_drafts(
    conn: Conn,
    contract_ids: Sequence[int],
    period: BillingPeriod,
    tariffs: dict[int, Tariff],
    rules: ConsumptionRules,
    now: datetime,
    series: str = "FV",
) -> FastResult:
    """Price the common-case contracts of ``contract_ids`` in bulk; return drafts and the rest.

    Nothing is taken by the fast path while a reading in the boundary window after the
    period could still be in the future (the full rules then refuse or bill it).
    """
    start, end = boundary_instant(period.start), boundary_instant(period.end + timedelta(1))
    window = timedelta(days=rules.boundary_window_days)
    floor_litres = rules.jump_floor_m3_per_day * 1000
    if now < end + window or floor_litres != floor_litres.to_integral_value():
        return FastResult([], list(contract_ids))
    versions = {tid: _single_version(t, period) for tid, t in tariffs.items()}
    params = {
        "ids": id_array(contract_ids),
        "ps": period.start,
        "pe": period.end,
        "prev": period.start - timedelta(days=1),
        "s": start,
        "e": end,
        "win": window,
        "near": timedelta(days=rules.boundary_window_days + 1),
        "today": (now - timedelta(days=2)).date(),
    }
    seconds = int((end - start).total_seconds())
    taken = [
        row
        for row in _common_case(conn, params, window)
        if versions.get(row.tariff_id) is not None
        and row.litres is not None
        and row.start_source in ACTUAL_SOURCES
        and 0 <= row.litres * 86400 <= int(floor_litres) * seconds
    ]
    drafts = _price(taken, period, versions, series)
    done = {d.contract_id for d in drafts}
    return FastResult(drafts, [cid for cid in contract_ids if cid not in done])


def _common_case(conn: Conn, params: dict[str, object], window: timedelta) -> list[_Row]:
    """Candidate rows: three simple set-based reads joined here (no CTE misestimates)."""
    with conn.transaction():
        # Index lookups for a batch: compiling them (JIT, costed high on a big table) or
        # starting parallel workers costs more than running them. The nearest-reading sort
        # fits in memory with this much.
        conn.execute("SET LOCAL jit = off")
        conn.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        conn.execute("SET LOCAL work_mem = '64MB'")
        candidates = conn.execute(_CANDIDATES, params).fetchall()
        meters = [c[5] for c in candidates]
        nearest = _nearest(conn, params, meters, window)
        found = conn.execute(_OPENINGS, params).fetchall()
    openings = {(r[0], r[1]): (r[2], r[3]) for r in found}
    rows = []
    for contract_id, customer_id, tariff_id, water, sewage, meter in candidates:
        opening = openings.get((contract_id, meter))
        source, start_m3 = opening or ("remote", nearest.get((meter, False)))
        end_m3 = nearest.get((meter, True))
        rows.append(
            _Row(
                contract_id,
                customer_id,
                tariff_id,
                water,
                sewage,
                source,
                start_m3,
                end_m3,
                _litres(start_m3, end_m3),
                meter,
            )
        )
    return rows


def _nearest(
    conn: Conn, params: dict[str, object], meters: list[str], window: timedelta
) -> dict[tuple[str, bool], Decimal]:
    """{(meter, at the end): value} of the remote reading nearest each boundary (the start,
    the end) in the window.

    Looked for within half a day first: a meter read at least daily has a reading there, and
    the nearest in the window is then the nearest in that half day (ties included); only the
    meters without one are looked for in the whole window.
    """
    near = conn.execute(
        _NEAREST, {**params, "meters": text_array(meters), "win": min(HALF_DAY, window)}
    ).fetchall()
    nearest: dict[tuple[str, bool], Decimal] = {(r[0], r[1]): r[2] for r in near}
    rest = [m for m in meters if (m, False) not in nearest or (m, True) not in nearest]
    if rest:
        near = conn.execute(_NEAREST, {**params, "meters": text_array(rest)}).fetchall()
        nearest.update(((r[0], r[1]), r[2]) for r in near)
    return nearest


def _litres(start_m3: Decimal | None, end_m3: Decimal | None) -> int | None:
    """Whole litres from ``start_m3`` to ``end_m3``; None if either is missing or inexact."""
    if start_m3 is None or end_m3 is None:
        return None
    litres = (end_m3 - start_m3) * 1000
    return int(litres) if litres == litres.to_integral_value() else None


def _single_version(tariff: Tariff, period: BillingPeriod) -> TariffVersion | None:
    for version in tariff.versions:
        if version.valid_from <= period.start and (
            version.valid_to is None or version.valid_to >= period.end
        ):
            return version
    return None


def _scaled(values: Sequence[Decimal], scale: int) -> Ints:
    return np.array([int(v * scale) for v in values], dtype=np.int64)


def _price(
    rows: Sequence[_Row],
    period: BillingPeriod,
    versions: dict[int, TariffVersion | None],
    series: str,
) -> list[StagedInvoice]:
    if not rows:
        return []
    chosen = [v for v in (versions[r.tariff_id] for r in rows) if v is not None]
    litres = np.array([r.litres for r in rows], dtype=np.int64)
    water = np.array([r.water for r in rows], dtype=np.int64)
    sewage = np.array([r.sewage for r in rows], dtype=np.int64)
    water_net = _net(litres, _scaled([v.water_price_per_m3 for v in chosen], 10_000)) * water
    sewage_net = _net(litres, _scaled([v.sewage_price_per_m3 for v in chosen], 10_000)) * sewage
    fee = np.array([v.subscription_fee_per_month for v in chosen], dtype=np.int64)
    net = water_net + sewage_net + fee * period.months
    rate = _scaled([v.vat_rate for v in chosen], 10_000)
    vat = (net * rate + 5_000) // 10_000
    templates = _Templates(period)
    return [
        templates.staged(row, version, w, s, n, t, series)
        for row, version, w, s, n, t in zip(
            rows,
            chosen,
            water_net.tolist(),
            sewage_net.tolist(),
            net.tolist(),
            vat.tolist(),
            strict=True,
        )
    ]


def _net(litres: Ints, price: Ints) -> Ints:
    """Litres times a price in 1/10,000 PLN per m3, rounded half up to the grosz."""
    return (litres * price + 50_000) // 100_000


class _Templates:
    """Per-period line rows, rendered once and shared by every invoice."""

    def __init__(self, period: BillingPeriod) -> None:
        self.period = period
        dates = f"{period.start:%d.%m.%Y}–{period.end:%d.%m.%Y}"
        self.texts = {kind: f"{DESCRIPTIONS[kind]} {dates}" for kind in DESCRIPTIONS}
        self.end_day = period.end + timedelta(1)
        self.months = round_half_up(
            Decimal(period.months * period.days) / period.days, MONTH_QUANTUM
        )
        # Keyed by tariff id: a version's own hash would hash every price for every line.
        self.fees: dict[tuple[int, int], str] = {}
        self.volumes: dict[tuple[int, LineKind], LineTemplate] = {}

    def _fee(self, tariff_id: int, version: TariffVersion, no: int) -> str:
        row = self.fees.get((tariff_id, no))
        if row is None:
            fee = version.subscription_fee_per_month
            line = InvoiceLine(
                "subscription",
                self.texts["subscription"],
                self.period.start,
                self.period.end,
                self.months,
                "mies.",
                Decimal(fee) / 100,
                fee * self.period.months,
                version.vat_rate,
            )
            row = self.fees[tariff_id, no] = line_row(no, line, False)
        return row

    def _volume(self, tariff_id: int, version: TariffVersion, kind: LineKind) -> LineTemplate:
        template = self.volumes.get((tariff_id, kind))
        if template is None:
            p = self.period
            price = version.water_price_per_m3 if kind == "water" else version.sewage_price_per_m3
            line = InvoiceLine(
                kind, self.texts[kind], p.start, p.end, ZERO, "m3", price, 0, version.vat_rate
            )
            template = self.volumes[tariff_id, kind] = line_template(line, False)
        return template

    def staged(
        self,
        row: _Row,
        version: TariffVersion,
        water_net: int,
        sewage_net: int,
        net: int,
        vat: int,
        series: str,
    ) -> StagedInvoice:
        """The invoice of one fast-path row (see ``_Row``)."""
        p = self.period
        start_m3, end_m3 = row.start_m3 or ZERO, row.end_m3 or ZERO
        volume = end_m3 - start_m3 - ZERO
        lines = []
        if row.water:
            water = self._volume(row.tariff_id, version, "water")
            lines.append(water.row(1, volume, water_net))
        if row.sewage:
            sewage_m3 = volume - ZERO - ZERO
            sewage = self._volume(row.tariff_id, version, "sewage")
            lines.append(sewage.row(len(lines) + 1, sewage_m3, sewage_net))
        lines.append(self._fee(row.tariff_id, version, len(lines) + 1))
        readings = (
            reading_row(row.meter_id, "main", "start", p.start, start_m3, row.start_source),
            reading_row(row.meter_id, "main", "end", self.end_day, end_m3, "remote"),
        )
        return StagedInvoice(
            row.contract_id, row.customer_id, p, net, vat, tuple(lines), readings, series=series
        )


def _near(at: str, end: bool) -> str:
    """Remote readings of the batch's meters in the window around ``at`` (the end boundary
    or the start), with their distance from it."""
    return (
        f"SELECT r.meter_id, {end} AS at_end, r.read_at, r.value,"
        f" greatest(r.read_at - {at}, {at} - r.read_at) AS distance FROM readings r"
        f" WHERE r.meter_id = ANY(%(meters)s::text[]) AND {VOLUME}"
        f" AND r.read_at BETWEEN {at} - %(win)s AND {at} + %(win)s"
    )


# Contracts of the common shape: whole period, one meter fitted in it, the main one, fitted
# before it and kept through it, no hand-entered reading near it (or possibly in the future).
_CANDIDATES = """
SELECT c.contract_id, c.customer_id, c.tariff_id, c.water, c.sewage, min(m.meter_id)
FROM contracts c JOIN meter_installations m USING (service_point_id)
WHERE c.contract_id = ANY(%(ids)s::bigint[])
  AND c.valid_from <= %(ps)s AND (c.valid_to IS NULL OR c.valid_to >= %(pe)s)
  AND m.installed_on <= %(pe)s AND (m.removed_on IS NULL OR m.removed_on >= %(ps)s)
  AND NOT EXISTS (
      SELECT 1 FROM customer_readings r
      WHERE r.contract_id = c.contract_id
        AND (r.read_on BETWEEN %(ps)s - %(near)s AND %(pe)s + %(near)s
             OR r.read_on >= %(today)s))
GROUP BY c.contract_id
HAVING count(*) = 1 AND bool_and(m.role = 'main' AND m.installed_on < %(ps)s
                                 AND (m.removed_on IS NULL OR m.removed_on >= %(pe)s))
"""

# The remote reading nearest each boundary, the earlier one on a tie (as
# ``consumption.find_boundary``).
_NEAREST = f"""
SELECT DISTINCT ON (meter_id, at_end) meter_id, at_end, value
FROM ({_near("%(s)s", False)} UNION ALL {_near("%(e)s", True)}) x
ORDER BY meter_id, at_end, distance, read_at
"""

# The previous period's billed end at this period's start; a correction's end wins.
_OPENINGS = """
SELECT contract_id, meter_id, source, value_m3 FROM (
    SELECT DISTINCT ON (i.contract_id, br.meter_id)
           i.contract_id, br.meter_id, br.source, br.value_m3, br.on_date
    FROM invoices i JOIN billed_readings br USING (invoice_id)
    WHERE i.contract_id = ANY(%(ids)s::bigint[]) AND i.period_end = %(prev)s AND br.boundary = 'end'
    ORDER BY i.contract_id, br.meter_id, i.invoice_id DESC
) o
WHERE on_date = %(ps)s
"""
