"""Consumption of a period from cumulative readings: boundaries, estimates, meter events."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from billing_engine.consumption import consumption_for_period, daily_use_series
from billing_engine.estimates import correction_for
from billing_engine.model import BillingPeriod
from billing_engine.periods import boundary_instant
from meterflow.errors import BillingError
from tests.billing.rules_helpers import NOVEMBER, NOW, OCTOBER, meter, reading

NORM = Decimal("0.1")


def consume(period, installations, readings, **kw):  # type: ignore[no-untyped-def]
    return consumption_for_period(
        period, installations, readings, norm_m3_per_day=NORM, now=NOW, **kw
    )


def test_remote_readings_nearest_the_boundaries_give_the_volume() -> None:
    readings = [
        reading(datetime(2026, 9, 30, 22, 5, tzinfo=UTC), "100.000"),
        reading(datetime(2026, 9, 29, 12, 0, tzinfo=UTC), "99.500"),
        reading(datetime(2026, 10, 31, 23, 10, tzinfo=UTC), "112.345"),
    ]
    result = consume(OCTOBER, [meter()], readings)
    assert result.volume_m3 == Decimal("12.345")
    assert not result.estimated and not result.held
    assert result.start_reading.source == "remote"


def test_utility_reading_wins_over_a_nearer_customer_reading() -> None:
    readings = [
        reading(date(2026, 10, 1), "100", "customer"),
        reading(datetime(2026, 10, 1, 12, tzinfo=UTC), "101", "remote"),
        reading(date(2026, 11, 1), "110", "customer"),
    ]
    result = consume(OCTOBER, [meter()], readings)
    assert result.start_reading.source == "remote"
    assert result.end_reading.source == "customer"
    assert result.volume_m3 == Decimal("9")


def test_meter_replacement_adds_old_final_and_new_initial() -> None:
    installations = [
        meter("OLD", removed=date(2026, 10, 15), final="150.500"),
        meter("NEW", installed=date(2026, 10, 15), initial="0.020"),
    ]
    readings = [
        reading(date(2026, 10, 1), "140.000", meter="OLD"),
        reading(date(2026, 11, 1), "5.520", meter="NEW"),
    ]
    result = consume(OCTOBER, installations, readings)
    assert result.volume_m3 == Decimal("16.000")
    assert result.start_reading.meter_id == "OLD" and result.end_reading.meter_id == "NEW"
    assert "meter replaced" in result.basis


def test_removed_meter_without_final_reading_is_refused() -> None:
    installations = [meter("OLD", removed=date(2026, 10, 15)), meter("NEW", date(2026, 10, 15))]
    with pytest.raises(BillingError, match="without a final reading"):
        consume(OCTOBER, installations, [reading(date(2026, 10, 1), "1", meter="OLD")])


def test_register_roll_over_counts_through_zero() -> None:
    readings = [reading(date(2026, 10, 1), "99990.000"), reading(date(2026, 11, 1), "10.000")]
    result = consume(OCTOBER, [meter()], readings)
    assert result.volume_m3 == Decimal("20.000")
    assert "rolled over" in result.basis


def test_reversed_flow_bills_nothing_and_nets_against_later_use() -> None:
    readings = [
        reading(date(2026, 10, 1), "100", backward="0.5"),
        reading(date(2026, 11, 1), "98", backward="2.5"),
        reading(date(2026, 12, 1), "105", backward="2.5"),
    ]
    october = consume(OCTOBER, [meter()], readings)
    assert october.volume_m3 == 0 and not october.held
    assert october.end_reading.value_m3 == Decimal("100")
    november = consume(NOVEMBER, [meter()], readings, opening=october.end_reading)
    assert november.volume_m3 == Decimal("5")


def test_register_going_back_without_reversed_flow_record_is_held() -> None:
    readings = [reading(date(2026, 10, 1), "100"), reading(date(2026, 11, 1), "98")]
    result = consume(OCTOBER, [meter()], readings)
    assert result.held and "went back by 2 m3" in str(result.hold_reason)


def test_implausible_jump_is_held_for_review() -> None:
    readings = [
        reading(date(2026, 7, 3), "100.000"),
        reading(date(2026, 10, 1), "117.800"),
        reading(date(2026, 11, 1), "217.800"),
    ]
    result = consume(OCTOBER, [meter()], readings)
    assert result.held and "implausible jump" in str(result.hold_reason)
    assert result.volume_m3 == Decimal("100.000")


def _estimated_october():  # type: ignore[no-untyped-def]
    readings = [
        reading(datetime(2026, 7, 2, 22, tzinfo=UTC), "100.000"),
        reading(datetime(2026, 9, 30, 22, tzinfo=UTC), "118.000"),
    ]
    return readings, consume(OCTOBER, [meter()], readings)


def test_missing_end_reading_is_estimated_from_the_last_three_months() -> None:
    _, october = _estimated_october()
    # 0.2 m3/day for 31 days and 1 hour (the clocks go back on 25 October): 6.208333...
    assert october.end_reading.estimated
    assert october.end_reading.value_m3 == Decimal("124.208")
    assert october.volume_m3 == Decimal("6.208")
    assert "previous 90 days" in october.end_reading.basis


def test_actual_reading_corrects_the_estimate_both_ways() -> None:
    readings, october = _estimated_october()
    actual = reading(datetime(2026, 11, 30, 23, tzinfo=UTC), "130.000")
    correction = correction_for(october, actual)
    # 12 m3 over 61 days 1 hour, of which 31 days 1 hour fall in October: 6.099...
    assert correction.corrected_end.value_m3 == Decimal("124.102")
    assert correction.volume_delta_m3 == Decimal("-0.106")
    november = consume(NOVEMBER, [meter()], [*readings, actual], opening=october.end_reading)
    assert november.volume_m3 == Decimal("5.792")
    assert october.volume_m3 + november.volume_m3 == Decimal("12.000")


def test_overestimate_is_refunded_by_the_next_period() -> None:
    readings, october = _estimated_october()
    low = reading(datetime(2026, 11, 30, 23, tzinfo=UTC), "123.000")
    november = consume(NOVEMBER, [meter()], [*readings, low], opening=october.end_reading)
    assert november.volume_m3 == Decimal("-1.208")
    assert "estimate refunded" in november.basis


def test_estimate_falls_back_to_same_period_last_year() -> None:
    readings = [
        reading(date(2025, 10, 1), "50.000"),
        reading(date(2025, 11, 1), "59.300"),
        reading(date(2026, 10, 1), "140.000"),
    ]
    result = consume(OCTOBER, [meter()], readings)
    assert "same period last year" in result.end_reading.basis
    assert result.volume_m3 == Decimal("9.300")


def test_period_with_no_readings_at_all_is_estimated_from_the_norm() -> None:
    result = consume(OCTOBER, [meter(installed=date(2026, 1, 1))], [])
    assert result.start_reading.estimated and result.end_reading.estimated
    assert "norm" in result.end_reading.basis
    # 0.1 m3/day over 31 days and 1 hour
    assert result.volume_m3 == Decimal("3.104")


def test_reading_in_the_future_is_refused() -> None:
    future = reading(NOW + timedelta(hours=1), "1")
    with pytest.raises(BillingError, match="in the future"):
        consume(OCTOBER, [meter()], [future])


def test_period_not_yet_ended_is_refused() -> None:
    period = BillingPeriod(date(2027, 5, 1), date(2027, 6, 30))
    with pytest.raises(BillingError, match="has not ended"):
        consume(period, [meter()], [])


def test_no_meter_installed_is_refused() -> None:
    with pytest.raises(BillingError, match="no main meter"):
        consume(OCTOBER, [meter(installed=date(2026, 11, 5))], [])


def test_daily_use_series_is_exact_litres() -> None:
    frame = daily_use_series(
        [reading(date(2026, 10, 1), "1.000"), reading(date(2026, 10, 3), "1.500")]
    )
    assert list(frame["litres_per_day"]) == [0, 250]
    assert str(frame["litres"].dtype) == "int64"
    assert boundary_instant(date(2026, 10, 1)) == frame["read_at"][0].to_pydatetime()
