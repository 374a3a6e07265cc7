"""Customer-entered readings: two consecutive periods at most, never below the last actual."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from billing_engine.customer_readings import check_customer_reading
from billing_engine.model import ReadingRefused
from tests.billing.rules_helpers import NOW, reading


def refused(new, history) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(ReadingRefused) as caught:
        check_customer_reading(new, history, "monthly", NOW)
    return caught.value.code


def test_two_consecutive_customer_periods_then_a_utility_reading_is_needed() -> None:
    history = [
        reading(date(2026, 8, 20), "100", "remote"),
        reading(date(2026, 9, 25), "110", "customer"),
        reading(date(2026, 10, 25), "120", "customer"),
    ]
    assert refused(reading(date(2026, 11, 25), "130", "customer"), history) == "third_period"
    check_customer_reading(reading(date(2026, 10, 28), "121", "customer"), history, "monthly", NOW)
    with_remote = [*history, reading(date(2026, 11, 3), "125", "remote")]
    check_customer_reading(
        reading(date(2026, 11, 25), "130", "customer"), with_remote, "monthly", NOW
    )


def test_a_period_without_customer_reading_breaks_the_run() -> None:
    history = [
        reading(date(2026, 8, 25), "100", "customer"),
        reading(date(2026, 10, 25), "120", "customer"),
    ]
    check_customer_reading(reading(date(2026, 11, 25), "130", "customer"), history, "monthly", NOW)


def test_bi_monthly_periods_count_as_periods() -> None:
    history = [
        reading(date(2026, 5, 10), "100", "customer"),
        reading(date(2026, 7, 10), "110", "customer"),
    ]
    new = reading(date(2026, 9, 10), "120", "customer")
    with pytest.raises(ReadingRefused, match="remote or inspector"):
        check_customer_reading(new, history, "bimonthly", NOW)


def test_reading_below_the_last_actual_is_refused_with_a_reason() -> None:
    history = [reading(date(2026, 10, 1), "125.000", "remote")]
    with pytest.raises(ReadingRefused, match=r"below the last actual reading 125.000 m3") as caught:
        check_customer_reading(
            reading(date(2026, 10, 20), "120.5", "customer"), history, "monthly", NOW
        )
    assert caught.value.code == "below_last_actual"


def test_estimates_do_not_count_as_last_actual() -> None:
    history = [reading(date(2026, 10, 1), "125.000", "estimate")]
    check_customer_reading(
        reading(date(2026, 10, 20), "120.5", "customer"), history, "monthly", NOW
    )


def test_reading_in_the_future_is_refused() -> None:
    assert refused(reading(NOW + timedelta(minutes=5), "1", "customer"), []) == "future"


def test_only_customer_readings_are_checked() -> None:
    assert refused(reading(date(2026, 10, 20), "1", "remote"), []) == "not_customer"
