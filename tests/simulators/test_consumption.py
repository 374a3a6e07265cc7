"""The virtual meter's consumption model: exact registers, daily shape, alarms, replacement."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from readers.model import Header
from simulators.consumption import (
    FLAG_BATTERY_LOW,
    FLAG_LEAK,
    FLAG_REVERSE_FLOW,
    STATUS_POWER_LOW,
    Traits,
    VirtualMeter,
    hour_index,
)

START = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # a Monday
HEADER = Header("APA", "12345678", 0x05, 0x07)
KEY = bytes(range(16))


def meter(seed: int = 7, **traits: Any) -> VirtualMeter:
    return VirtualMeter(HEADER, KEY, seed, start=START, traits=Traits(**traits))


def test_register_is_the_exact_sum_of_hourly_litres() -> None:
    m = meter(initial_litres=123_456, persons=3)
    m.advance(START + timedelta(days=10))
    hours = range(hour_index(START), hour_index(START) + 240)
    assert m.total_litres == 123_456 + sum(m.hourly_litres(h)[0] for h in hours)
    volume = m.records(m.clock)[0]
    assert volume.value == Decimal(m.total_litres) / 1000
    assert isinstance(volume.value, Decimal) and volume.value.as_tuple().exponent == -3


def test_register_does_not_depend_on_how_time_is_stepped() -> None:
    coarse, fine = meter(seed=3), meter(seed=3)
    end = START + timedelta(days=3, minutes=17)
    coarse.advance(end)
    moment = START
    while moment < end:
        moment = min(end, moment + timedelta(seconds=97))
        fine.advance(moment)
    assert coarse.total_litres == fine.total_litres


def test_register_never_decreases_without_reverse_flow() -> None:
    m = meter(seed=11)
    last = m.total_litres
    for step in range(1, 500):
        m.advance(START + timedelta(minutes=7 * step))
        assert m.total_litres >= last
        last = m.total_litres


def test_profile_has_quiet_nights_and_busy_days() -> None:
    m = meter(seed=5, persons=3)
    night = day = 0
    for h in range(hour_index(START), hour_index(START) + 24 * 28):
        litres = m.hourly_litres(h)[0]
        hour = h % 24
        if 1 <= hour < 5:
            night += litres
        elif 6 <= hour < 22:
            day += litres
    assert night * 20 < day


def test_weekend_mornings_start_later() -> None:
    m = meter(seed=9, persons=4)
    weekday = weekend = 0
    for day in range(28):
        base = hour_index(START) + 24 * day
        litres = m.hourly_litres(base + 7)[0]
        if (START + timedelta(days=day)).weekday() >= 5:
            weekend += litres
        else:
            weekday += litres
    assert weekday / 20 > 2 * weekend / 8


def test_leak_meter_has_night_flow_and_raises_its_alarm() -> None:
    leak_from = START + timedelta(hours=5)
    m = meter(seed=5, leak_lph=12, leak_from=leak_from)
    healthy = meter(seed=5)
    night = [h for h in range(hour_index(START) + 24, hour_index(START) + 24 * 8) if h % 24 == 3]
    assert all(m.hourly_litres(h)[0] >= 12 for h in night)
    leaking = sum(m.hourly_litres(h)[0] for h in night)
    assert leaking > sum(healthy.hourly_litres(h)[0] for h in night)
    m.advance(leak_from + timedelta(hours=23))
    assert not m.error_flags() & FLAG_LEAK
    m.advance(leak_from + timedelta(hours=25))
    assert m.error_flags() & FLAG_LEAK


def test_reverse_flow_fills_the_backward_register_and_lowers_the_net() -> None:
    m = meter(seed=13, reverse_per_day=1.0)
    forward = backward = 0
    for h in range(hour_index(START), hour_index(START) + 24 * 5):
        f, b = m.hourly_litres(h)
        forward, backward = forward + f, backward + b
    m.advance(START + timedelta(days=5))
    assert backward > 0
    assert m.backward_litres == backward
    assert m.total_litres == forward - backward
    reversed_hours = [
        h for h in range(hour_index(START), hour_index(START) + 48) if m.hourly_litres(h)[1]
    ]
    probe = VirtualMeter(HEADER, KEY, 13, start=START, traits=Traits(reverse_per_day=1.0))
    probe.advance(START + timedelta(hours=reversed_hours[0] - hour_index(START), minutes=30))
    assert probe.error_flags() & FLAG_REVERSE_FLOW
    records = probe.records(probe.clock)
    assert records[1].modifiers == ("backward",)


def test_battery_alarm_sets_flags_and_status() -> None:
    m = meter(battery_low_from=START + timedelta(days=1))
    m.advance(START + timedelta(hours=23))
    assert m.error_flags() == 0 and m.next_header().status == 0
    m.advance(START + timedelta(days=2))
    assert m.error_flags() & FLAG_BATTERY_LOW
    assert m.next_header().status == STATUS_POWER_LOW


def test_replacement_gives_a_new_id_and_restarts_the_register() -> None:
    new_key = bytes(16)
    m = meter(
        initial_litres=500_000,
        replaced_at=START + timedelta(days=2),
        replacement_id="87654321",
        replacement_key=new_key,
    )
    m.advance(START + timedelta(days=2) - timedelta(seconds=1))
    assert m.header.id == "12345678" and m.total_litres > 500_000
    m.advance(START + timedelta(days=2, hours=3))
    assert m.header.id == "87654321" and m.key == new_key
    hours = range(hour_index(START) + 48, hour_index(START) + 51)
    assert m.total_litres == sum(m.hourly_litres(h)[0] for h in hours)


def test_target_value_is_the_register_at_month_end() -> None:
    m = meter(seed=21, initial_litres=40_000)
    month_end = datetime(2026, 4, 1, tzinfo=UTC)
    m.advance(month_end)
    at_month_end = m.total_litres
    m.advance(month_end + timedelta(days=3))
    records = {(r.quantity, r.storage): r.value for r in m.records(m.clock)}
    assert records[("volume", 1)] == Decimal(at_month_end) / 1000
    assert records[("date", 1)] == date(2026, 3, 31)
    assert m.target == (at_month_end, date(2026, 3, 31))


def test_same_seed_same_meter() -> None:
    a, b = meter(seed=99), meter(seed=99)
    end = START + timedelta(days=4, hours=5)
    assert a.records(end) == b.records(end)
    assert meter(seed=98).records(end) != a.records(end)
