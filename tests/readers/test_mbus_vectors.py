"""libmbus's test frames decode to the values of their .norm.xml files."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest

from readers.datarecords import MANUFACTURER_SPECIFIC, MORE_RECORDS_FOLLOW, PLAIN_TEXT
from readers.mbus import decode_mbus
from readers.model import Record
from tests.readers.vectors_mbus import VECTORS, Vector

SECONDS = {"s": 1, "min": 60, "h": 3600, "d": 86400}
FUNCTIONS = {"max": "maximum", "min": "minimum", "err": "error"}


def libmbus_view(record: Record) -> tuple[str, str]:
    """Return (unit, value) of ``record`` the way the vector strings write them."""
    value, unit = record.value, record.unit
    if record.quantity == PLAIN_TEXT:
        unit = unit.replace(" ", "~")
    if isinstance(value, datetime):
        return "-", value.strftime("%Y-%m-%dT%H:%M")
    if isinstance(value, date):
        return "-", value.isoformat()
    if isinstance(value, str):
        return unit or "-", value.replace(" ", "~")
    if unit in SECONDS and isinstance(value, Decimal):
        return "s", str(value * SECONDS[unit])
    return unit or "-", str(value)


def same_value(expected: str, got: str) -> bool:
    """Return True if two value texts are equal (numerically when both are numbers)."""
    if expected.startswith("0x"):
        return got.lstrip("-").isdigit() and int(expected, 16) == int(got)
    try:
        return Decimal(expected) == Decimal(got)
    except ArithmeticError:
        return expected == got


def check_record(spec: str, record: Record) -> None:
    """Assert that ``record`` matches one vector record string."""
    main, _, ours = spec.partition(" | ")
    tokens = main.split()
    unit, value, flags = tokens[0], (tokens[1:2] or [""])[0], tokens[2:]
    if unit in ("mfr", "more"):
        assert record.quantity == MANUFACTURER_SPECIFIC
        assert (MORE_RECORDS_FOLLOW in record.modifiers) == (unit == "more")
        return
    numbers = {"s": 0, "t": 0, "d": 0}
    function = "instantaneous"
    for flag in flags:
        if flag in FUNCTIONS:
            function = FUNCTIONS[flag]
        else:
            numbers[flag[0]] = int(flag[1:])
    expected = (numbers["s"], numbers["t"], numbers["d"], function)
    assert (record.storage, record.tariff, record.subunit, record.function) == expected
    got_unit, got_value = libmbus_view(record)
    if ours == "None":
        assert record.value is None and "invalid" in record.modifiers
        return
    if not ours:
        assert got_unit == unit
    assert same_value(ours or value, got_value), f"{spec}: got {got_unit} {got_value}"


@pytest.mark.parametrize("vector", VECTORS, ids=[v.name for v in VECTORS])
def test_libmbus_frame_decodes_to_norm_values(vector: Vector) -> None:
    telegram = decode_mbus(bytes.fromhex(vector.hex))
    assert telegram.kind == "mbus"
    assert telegram.header.manufacturer == vector.manufacturer
    assert int(telegram.header.id) == vector.id
    assert len(telegram.records) == len(vector.records)
    for spec, record in zip(vector.records, telegram.records, strict=True):
        check_record(spec, record)


def test_vectors_cover_many_manufacturers() -> None:
    makers = {v.manufacturer for v in VECTORS}
    assert len(VECTORS) >= 25 and len(makers) >= 15
