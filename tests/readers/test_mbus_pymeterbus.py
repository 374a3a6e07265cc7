"""Differential test: our wired M-Bus decoder agrees with pymeterbus on every frame both parse.

pymeterbus goes through float, so numbers are compared to 1e-9 relative. Where the two
disagree, EN 13757-3 decides and the case is listed in DISAGREEMENTS with the reason.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import meterbus
import pytest

from readers.mbus import decode_mbus
from readers.model import Record
from tests.readers.vectors_mbus import VECTORS, Vector

SECONDS = {"s": 1, "min": 60, "h": 3600, "d": 86400}
INVALID_BCD = "BCD digits A-E are invalid (EN 13757-3 type A); pymeterbus reads them as decimal"
TIME_POINT_VIFE = "VIFE 0x6F makes the record a type F date; pymeterbus ignores the VIFE"
UNSET_DATE = "day 0 / month 0 is no date; pymeterbus prints 2000-00-00"
DISAGREEMENTS = {
    ("siemens_water", 3): UNSET_DATE,
    ("siemens_wfh21", 3): UNSET_DATE,
    ("ACW_Itron-BM-plus-m", 2): UNSET_DATE,
    ("ELS_Elster-F96-Plus", 4): INVALID_BCD,
    ("ELS_Elster-F96-Plus", 5): INVALID_BCD,
    ("abb_f95", 2): INVALID_BCD,
    ("abb_f95", 3): INVALID_BCD,
    ("landis+gyr_ultraheat_t230", 19): TIME_POINT_VIFE,
    ("landis+gyr_ultraheat_t230", 20): TIME_POINT_VIFE,
    ("landis+gyr_ultraheat_t230", 21): TIME_POINT_VIFE,
    ("landis+gyr_ultraheat_t230", 22): TIME_POINT_VIFE,
}


FRAME_DISAGREEMENTS = {
    "example_binary16_lvar": "LVAR 0xF0 is a 16-byte binary number; pymeterbus splits it into"
    " two records (libmbus agrees with us)",
}


def ours_comparable(record: Record) -> Any:
    """Return our value in pymeterbus's terms: seconds, ISO text, spaced hex, None."""
    value = record.value
    if isinstance(value, Decimal) and record.unit in SECONDS:
        return value * SECONDS[record.unit]
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex(" ").upper() or None
    return value


def agree(theirs: Any, ours: Any) -> bool:
    """Return True if the two values are the same (numbers to 1e-9 relative)."""
    numbers = (int, Decimal)
    if isinstance(theirs, numbers) and isinstance(ours, numbers):
        tolerance = Decimal("1e-9") * max(Decimal(1), abs(Decimal(ours)))
        return abs(Decimal(theirs) - Decimal(ours)) <= tolerance
    return bool(theirs == ours or str(theirs) == str(ours))


def their_values(raw: bytes) -> list[Any] | None:
    """Return pymeterbus's record values (a sentinel where it crashes), None if it fails."""
    try:
        records = meterbus.load(raw).body.bodyPayload.records
    except Exception:  # noqa: BLE001 - any failure means "pymeterbus cannot parse it"
        return None
    values: list[Any] = []
    for record in records:
        try:
            values.append(record.value)
        except Exception:  # noqa: BLE001
            values.append(NotImplemented)
    return values


@pytest.mark.parametrize("vector", VECTORS, ids=[v.name for v in VECTORS])
def test_values_agree_with_pymeterbus(vector: Vector) -> None:
    raw = bytes.fromhex(vector.hex)
    theirs = their_values(raw)
    if theirs is None:
        pytest.skip("pymeterbus cannot parse this frame")
    ours = decode_mbus(raw).records
    if vector.name in FRAME_DISAGREEMENTS:
        assert len(theirs) != len(ours)
        return
    assert len(theirs) == len(ours)
    for index, (their, record) in enumerate(zip(theirs, ours, strict=True)):
        if their is NotImplemented or (vector.name, index) in DISAGREEMENTS:
            continue
        assert agree(their, ours_comparable(record)), f"record {index}: {their!r} vs {record}"


def test_disagreements_are_real() -> None:
    by_name = {v.name: v for v in VECTORS}
    for name, index in DISAGREEMENTS:
        raw = bytes.fromhex(by_name[name].hex)
        theirs = their_values(raw)
        assert theirs is not None
        record = decode_mbus(raw).records[index]
        assert not agree(theirs[index], ours_comparable(record))
