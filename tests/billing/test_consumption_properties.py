"""Property: billed volumes of consecutive periods add up to the meter's actual total."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from billing_engine.consumption import consumption_for_period
from billing_engine.model import ConsumptionRules
from billing_engine.periods import boundary_instant, periods_between
from tests.billing.rules_helpers import NOW, meter, reading

PERIODS = periods_between(date(2026, 1, 1), date(2026, 6, 30), "monthly")
LAST_BOUNDARY = boundary_instant(date(2026, 7, 1))
NO_HOLDS = ConsumptionRules(jump_factor=Decimal(10**9))

steps = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=180 * 24),
        st.integers(min_value=0, max_value=5_000),
        st.sampled_from(["remote", "customer", "inspector"]),
    ),
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(steps, st.integers(min_value=0, max_value=50_000))
def test_consecutive_periods_add_up_once_an_actual_reading_arrives(
    raw: list[tuple[int, int, str]], final_extra: int
) -> None:
    litres = 0
    readings = []
    for hours, used, source in sorted(raw):
        litres += used
        at = boundary_instant(date(2026, 1, 1)) + timedelta(hours=hours)
        readings.append(reading(at, str(Decimal(litres) / 1000), source))  # type: ignore[arg-type]
    total = Decimal(litres + final_extra) / 1000
    readings.append(reading(LAST_BOUNDARY, str(total), "remote"))
    installations = [meter(installed=date(2026, 1, 1))]
    opening = None
    billed = Decimal(0)
    for period in PERIODS:
        result = consumption_for_period(
            period,
            installations,
            readings,
            norm_m3_per_day=Decimal("0.15"),
            now=NOW,
            opening=opening,
            rules=NO_HOLDS,
        )
        assert not result.held
        billed += result.volume_m3
        opening = result.end_reading
    assert billed == total
