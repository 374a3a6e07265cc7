"""Statutory interest for delay across NBP reference rate changes, to the grosz."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from billing_engine.interest import interest_for, load_reference_rates, statutory_rate
from meterflow.errors import BillingError

RATES = load_reference_rates()


def test_rate_table_covers_2020_to_2026_in_order() -> None:
    days = [r.effective_from for r in RATES]
    assert days == sorted(days)
    assert days[0] <= date(2020, 1, 1) and days[-1] >= date(2026, 1, 1)
    assert statutory_rate(date(2024, 6, 1), RATES, "consumer") == Decimal("11.25")
    assert statutory_rate(date(2023, 11, 1), RATES, "business") == Decimal("16.75")


def test_consumer_interest_across_a_reference_rate_change() -> None:
    # 1000.00 PLN due 30.09.2025, paid 20.10.2025; the reference rate fell 4.75 -> 4.50 on 9.10.
    result = interest_for(100_000, date(2025, 9, 30), date(2025, 10, 20), RATES, "consumer")
    spans = [(s.start, s.end, s.days, s.annual_rate_percent) for s in result.spans]
    assert spans == [
        (date(2025, 10, 1), date(2025, 10, 8), 8, Decimal("10.25")),
        (date(2025, 10, 9), date(2025, 10, 20), 12, Decimal("10.00")),
    ]
    # 224.657... + 328.767... = 553.424... grosze, rounded once at the end
    assert result.total_grosze == 553


def test_business_rate_is_fixed_per_half_year() -> None:
    # on 1 July 2025 the reference rate was 5.25 (5.00 only from 3 July): 15.25 % all along
    result = interest_for(100_000, date(2025, 9, 30), date(2025, 10, 20), RATES, "business")
    assert [(s.days, s.annual_rate_percent) for s in result.spans] == [(20, Decimal("15.25"))]
    assert result.total_grosze == 836  # 835.616...


def test_interest_across_the_half_year_for_business() -> None:
    result = interest_for(50_000, date(2025, 6, 20), date(2025, 7, 10), RATES, "business")
    assert [(s.days, s.annual_rate_percent) for s in result.spans] == [
        (10, Decimal("15.75")),  # 21-30 June at 5.75 + 10
        (10, Decimal("15.25")),  # 1-10 July at 5.25 + 10
    ]
    assert result.total_grosze == 425  # 215.753... + 208.904... = 424.657...


def test_paid_on_time_earns_nothing() -> None:
    result = interest_for(100_000, date(2025, 9, 30), date(2025, 9, 30), RATES, "consumer")
    assert result.total_grosze == 0 and result.spans == ()


def test_missing_rate_and_negative_amount_are_refused() -> None:
    with pytest.raises(BillingError, match="no NBP reference rate"):
        interest_for(100, date(2001, 1, 1), date(2001, 2, 1), RATES, "consumer")
    with pytest.raises(BillingError, match="negative"):
        interest_for(-1, date(2025, 1, 1), date(2025, 2, 1), RATES, "consumer")
