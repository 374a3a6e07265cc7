"""The fixed data structure of EN 13757-3 (CI 0x73, and 0x77 with multi-byte fields MSB first).

Sixteen bytes: identification number, access number, status, two medium/unit bytes and
two 4-byte counters. Status bit 7 says the counters are binary (set) or BCD (clear); status
bit 6 says they are stored (historic) values, which we report as storage number 1.
The fixed structure carries no manufacturer, so the header uses the null code ``"@@@"``.
"""

from __future__ import annotations

from decimal import Decimal

from meterflow.errors import FrameError
from readers.datatypes import bcd_value
from readers.header import bcd_id
from readers.model import Header, Record, Telegram, Value

FIXED_LEN = 16
NO_MANUFACTURER = "@@@"
STATUS_BINARY = 0x80
STATUS_STORED = 0x40


def _unit_table() -> dict[int, tuple[str, str, int | None]]:
    """Return the fixed-structure unit codes (EN 1434-3 / EN 13757-3 Annex) as quantities."""
    table: dict[int, tuple[str, str, int | None]] = {
        0x00: ("time_of_day", "", None),
        0x01: ("date", "", None),
        0x38: ("temperature", "C", -3),
        0x39: ("hca_units", "", None),
    }
    spans = (
        (0x02, "energy", "Wh", 0),
        (0x0B, "energy", "J", 3),
        (0x14, "power", "W", 0),
        (0x1D, "power", "J/h", 3),
        (0x26, "volume", "m3", -6),
        (0x2F, "flow", "m3/h", -6),
    )
    for start, quantity, unit, bias in spans:
        for n in range(9):
            table[start + n] = (quantity, unit, bias + n)
    return table


UNITS = _unit_table()


def _counter(raw: bytes, status: int, unit_code: int) -> Record:
    """Return one counter as a record, scaled by its unit code."""
    quantity, unit, exponent = UNITS.get(unit_code & 0x3F, ("counter", "", None))
    number = int.from_bytes(raw, "little") if status & STATUS_BINARY else bcd_value(raw)
    value: Value = number
    if number is not None and exponent is not None:
        value = Decimal(number).scaleb(exponent) if exponent < 0 else Decimal(number * 10**exponent)
    storage = 1 if status & STATUS_STORED else 0
    modifiers = () if value is not None else ("invalid",)
    return Record(quantity, unit, value, storage=storage, modifiers=modifiers)


def decode_fixed(data: bytes, *, msb_first: bool = False) -> Telegram:
    """Return the telegram of a fixed data structure (the bytes after CI 0x73 or 0x77).

    Raises FrameError if it is not 16 bytes or the identification number is not BCD.
    """
    if len(data) != FIXED_LEN:
        raise FrameError(f"a fixed data structure has {FIXED_LEN} bytes, got {len(data)}")
    ident, counter1, counter2 = data[0:4], data[8:12], data[12:16]
    if msb_first:
        ident, counter1, counter2 = ident[::-1], counter1[::-1], counter2[::-1]
    status, unit1, unit2 = data[5], data[6], data[7]
    medium = (unit1 >> 6) | ((unit2 >> 6) << 2)
    header = Header(NO_MANUFACTURER, bcd_id(ident), 0, medium, data[4], status)
    records = (_counter(counter1, status, unit1), _counter(counter2, status, unit2))
    return Telegram("mbus", header, records)
