"""Tariff versions, billing calendars and money helpers."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from billing_engine.model import TariffVersion
from billing_engine.money import format_pln, parse_pln, round_grosze, to_pln
from billing_engine.periods import (
    boundary_instant,
    next_period,
    period_containing,
    period_for_label,
    periods_between,
)
from billing_engine.tariffs import Tariff, tariff_spans
from meterflow.errors import BillingError

V1 = TariffVersion(date(2026, 1, 1), date(2026, 6, 30), Decimal("5.12"), Decimal("7.40"), 450)
V2 = TariffVersion(date(2026, 7, 1), None, Decimal("5.40"), Decimal("7.90"), 480)


def test_overlapping_tariff_versions_are_refused() -> None:
    with pytest.raises(BillingError, match="overlaps the version from 2026-06-15"):
        Tariff("G1", (V1, replace(V2, valid_from=date(2026, 6, 15))))
    with pytest.raises(BillingError, match="overlaps"):
        Tariff("G1", (replace(V1, valid_to=None), V2))


def test_negative_price_or_fee_is_refused() -> None:
    with pytest.raises(BillingError, match="water_price_per_m3 must be a price of 0 or more"):
        Tariff("G1", (replace(V1, water_price_per_m3=Decimal("-0.01")),))
    with pytest.raises(BillingError, match="subscription fee is negative"):
        Tariff("G1", (replace(V1, subscription_fee_per_month=-1),))
    with pytest.raises(BillingError, match="more than 4 decimals"):
        Tariff("G1", (replace(V1, sewage_price_per_m3=Decimal("7.00001")),))
    with pytest.raises(BillingError, match="VAT rate"):
        Tariff("G1", (replace(V1, vat_rate=Decimal("8")),))


def test_spans_split_a_range_by_version_and_gaps_are_refused() -> None:
    tariff = Tariff("G1", (V2, V1))
    spans = tariff_spans(tariff, date(2026, 6, 20), date(2026, 7, 10))
    assert [(s.version, s.days) for s in spans] == [(V1, 11), (V2, 10)]
    with pytest.raises(BillingError, match="no version in force on 2025-12-31"):
        tariff_spans(tariff, date(2025, 12, 31), date(2026, 1, 2))


def test_calendars() -> None:
    assert period_containing(date(2026, 10, 17), "monthly").days == 31
    bimonthly = period_containing(date(2026, 10, 17), "bimonthly")
    assert (bimonthly.start, bimonthly.end) == (date(2026, 9, 1), date(2026, 10, 31))
    shifted = period_containing(date(2026, 10, 17), "bimonthly", anchor_month=2)
    assert (shifted.start, shifted.end) == (date(2026, 10, 1), date(2026, 11, 30))
    quarter = period_for_label("2026-11", "quarterly")
    assert (quarter.start, quarter.end, quarter.months) == (
        date(2026, 10, 1),
        date(2026, 12, 31),
        3,
    )
    assert next_period(quarter).start == date(2027, 1, 1)
    assert len(periods_between(date(2026, 1, 15), date(2026, 12, 1), "bimonthly")) == 6
    with pytest.raises(BillingError, match="not a month"):
        period_for_label("2026-13", "monthly")


def test_boundaries_are_warsaw_midnight_in_utc() -> None:
    assert boundary_instant(date(2026, 7, 1)) == datetime(2026, 6, 30, 22, tzinfo=UTC)
    assert boundary_instant(date(2026, 12, 1)) == datetime(2026, 11, 30, 23, tzinfo=UTC)


def test_money_helpers_are_exact() -> None:
    assert round_grosze(Decimal("27.875")) == 2788
    assert round_grosze(Decimal("-0.005")) == -1
    assert to_pln(15859) == Decimal("158.59")
    assert parse_pln("1 234,56") == 123456
    assert format_pln(123456) == "1\u00a0234,56\u00a0zł"
    with pytest.raises(BillingError, match="at most two decimals"):
        parse_pln("1.234")
    with pytest.raises(BillingError, match="not a PLN amount"):
        parse_pln("abc")
