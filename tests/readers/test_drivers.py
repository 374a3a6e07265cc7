"""Every test vector of every shipped driver decodes to its expected fields."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from meterflow.errors import ConfigError
from readers.codec import decode_frame
from readers.drivers import find_driver, load_drivers
from readers.drivers.engine import parse_driver
from readers.model import Header, Record, value_text

VECTORS = [
    pytest.param(driver.name, vector, id=f"{driver.name}-{vector['name']}")
    for driver in load_drivers()
    for vector in driver.tests
]


def _same(expected: Any, actual: Any) -> bool:
    if isinstance(actual, Decimal) and isinstance(expected, str):
        return Decimal(expected) == actual
    return bool(value_text(actual) == expected)


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Decoding must not depend on the clock or the machine's zone: pin both."""
    monkeypatch.setenv("TZ", "UTC")
    monkeypatch.setattr("time.time", lambda: datetime(2026, 1, 1, tzinfo=UTC).timestamp())


@pytest.mark.parametrize(("name", "vector"), VECTORS)
def test_driver_vector(name: str, vector: Mapping[str, Any]) -> None:
    if "skip" in vector:
        pytest.skip(vector["skip"])
    key = bytes.fromhex(vector["key"]) if vector.get("key") else None
    telegram = decode_frame("wmbus", bytes.fromhex(vector["telegram"]), lambda header: key)
    assert telegram.driver == name
    wrong = {
        field: (expected, value_text(telegram.fields.get(field)))
        for field, expected in vector["fields"].items()
        if not _same(expected, telegram.fields.get(field))
    }
    assert not wrong


def test_every_driver_ships_vectors() -> None:
    assert all(driver.tests for driver in load_drivers())


def test_water_meter_without_specific_driver_gets_generic_fields() -> None:
    header = Header("ABC", "12345678", 1, 0x07)
    driver = find_driver(header)
    assert driver is not None and driver.name == "oms_water"


def test_gas_meter_gets_no_water_driver() -> None:
    assert find_driver(Header("ELS", "12345678", 0x33, 0x03)) is None


def test_driver_with_unknown_hook_is_rejected() -> None:
    with pytest.raises(ConfigError, match="unknown hook"):
        parse_driver({"name": "bad", "hook": "nope"})


def test_field_without_quantity_is_rejected() -> None:
    with pytest.raises(ConfigError, match="bad field"):
        parse_driver({"name": "bad", "fields": [{"name": "total_m3"}]})


def test_field_plan_follows_each_record_layout() -> None:
    # Fields are planned once per record layout: the same meter sending its records in
    # another order, or with one more, must still get each field from the right record.
    from readers.wmbus_encode import encode_wmbus

    header = Header("ABC", "12345678", 1, 0x07, status=0)
    total = Record("volume", "m3", Decimal("12.345"))
    target = Record("volume", "m3", Decimal("10.000"), storage=1)
    flow = Record("flow", "m3/h", Decimal("0.125"))
    for records in ([total, target], [target, total], [flow, target, total], [total, target]):
        telegram = decode_frame("wmbus", encode_wmbus(header, records))
        assert telegram.fields["total_m3"] == Decimal("12.345")
        assert telegram.fields["target_m3"] == Decimal("10.000")
        assert ("flow_m3h" in telegram.fields) == (flow in records)
