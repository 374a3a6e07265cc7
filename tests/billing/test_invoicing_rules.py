"""Invoice lines, pro rata tariff split, garden sub-meter, VAT per rate and corrections."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest

from billing_engine.invoicing import correction_lines, invoice_lines, invoice_totals
from billing_engine.model import (
    BoundaryReading,
    Contract,
    InvoiceLine,
    PeriodConsumption,
    TariffVersion,
)
from billing_engine.periods import boundary_instant
from billing_engine.tariffs import Tariff
from meterflow.errors import BillingError
from tests.billing.rules_helpers import OCTOBER

CONTRACT = Contract(1, 10, "consumer", "G1", "monthly", date(2020, 1, 1))
V1 = TariffVersion(date(2026, 1, 1), date(2026, 10, 14), Decimal("5.00"), Decimal("7.00"), 450)
V2 = TariffVersion(date(2026, 10, 15), None, Decimal("5.50"), Decimal("7.80"), 500)
TARIFF = Tariff("G1", (V1, V2))
FLAT = Tariff("G1", (replace(V2, valid_from=date(2026, 1, 1)),))


def used(volume: str, role: str = "main") -> PeriodConsumption:
    start = BoundaryReading("M", boundary_instant(OCTOBER.start), Decimal(0), "remote", "r")
    end = replace(start, value_m3=Decimal(volume))
    return PeriodConsumption(OCTOBER, role, start, end, Decimal(volume), "test")  # type: ignore[arg-type]


def test_period_across_a_tariff_change_is_split_by_days_with_garden_deducted() -> None:
    lines = invoice_lines(CONTRACT, TARIFF, OCTOBER, used("12.345"), used("2.000", "garden"))
    table = [(line.kind, line.quantity, line.unit_price, line.net_grosze) for line in lines]
    assert table == [
        ("water", Decimal("5.575"), Decimal("5.00"), 2788),  # 12.345 x 14/31, 27.875 up
        ("water", Decimal("6.770"), Decimal("5.50"), 3724),  # 37.235 up
        ("sewage", Decimal("4.672"), Decimal("7.00"), 3270),  # 10.345 x 14/31
        ("sewage", Decimal("5.673"), Decimal("7.80"), 4425),  # 44.2494
        ("subscription", Decimal("0.4516"), Decimal("4.5"), 203),  # 450 x 14/31
        ("subscription", Decimal("0.5484"), Decimal("5"), 274),  # 500 x 17/31
    ]
    totals = invoice_totals(lines)
    assert (totals.net_grosze, totals.vat_grosze, totals.gross_grosze) == (14684, 1175, 15859)


def test_vat_is_rounded_once_per_rate_not_per_line() -> None:
    tiny = InvoiceLine(
        "water",
        "w",
        date(2026, 10, 1),
        date(2026, 10, 31),
        Decimal("0.012"),
        "m3",
        Decimal("5"),
        6,
        Decimal("0.08"),
    )
    other = replace(tiny, net_grosze=1000, vat_rate=Decimal("0.23"))
    totals = invoice_totals([tiny, tiny, tiny, other])
    # per line: 0.48 gr rounds to 0 three times; on the rate's total 18 gr x 8% = 1.44 -> 1
    assert [(s.vat_rate, s.net_grosze, s.vat_grosze) for s in totals.by_rate] == [
        (Decimal("0.08"), 18, 1),
        (Decimal("0.23"), 1000, 230),
    ]
    assert totals.gross_grosze == 1249


def test_vat_rounds_half_up_to_the_grosz() -> None:
    line = InvoiceLine(
        "water",
        "w",
        date(2026, 10, 1),
        date(2026, 10, 31),
        Decimal("1"),
        "m3",
        Decimal("0.5"),
        50,
        Decimal("0.23"),
    )
    assert invoice_totals([line]).vat_grosze == 12  # 11.5 -> 12
    eight = replace(line, vat_rate=Decimal("0.08"))
    assert invoice_totals([replace(eight, net_grosze=1256)]).vat_grosze == 100  # 100.48
    assert invoice_totals([replace(eight, net_grosze=1257)]).vat_grosze == 101  # 100.56


def test_garden_larger_than_main_gives_no_negative_sewage() -> None:
    lines = invoice_lines(CONTRACT, FLAT, OCTOBER, used("1"), used("3", "garden"))
    sewage = [line for line in lines if line.kind == "sewage"]
    assert [(line.quantity, line.net_grosze) for line in sewage] == [(Decimal("0"), 0)]


def test_contract_starting_mid_period_pays_its_days() -> None:
    late = replace(CONTRACT, starts_on=date(2026, 10, 22), sewage=False)
    lines = invoice_lines(late, FLAT, OCTOBER, used("3.100"))
    assert [(line.kind, line.net_grosze) for line in lines] == [
        ("water", 1705),  # 3.1 x 5.50
        ("subscription", 161),  # 500 x 10/31 = 161.29
    ]


def test_held_consumption_is_not_invoiced() -> None:
    held = replace(used("99"), held=True, hold_reason="implausible jump")
    with pytest.raises(BillingError, match="held for review"):
        invoice_lines(CONTRACT, TARIFF, OCTOBER, held)


def test_correction_lines_bill_the_difference() -> None:
    billed = invoice_lines(CONTRACT, FLAT, OCTOBER, used("6.208"))
    corrected = invoice_lines(CONTRACT, FLAT, OCTOBER, used("6.102"))
    lines = correction_lines(billed, corrected)
    assert [(line.kind, line.quantity, line.net_grosze) for line in lines] == [
        ("water", Decimal("-0.106"), 3356 - 3414),  # 6.102 x 5.50 = 33.561; 6.208 x 5.5 = 34.144
        ("sewage", Decimal("-0.106"), 4760 - 4842),  # 47.5956; 48.4224
    ]
    assert invoice_totals(lines).gross_grosze == -140 - 11
