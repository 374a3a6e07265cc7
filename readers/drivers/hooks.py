"""Named hooks for manufacturer-specific payloads that field specs cannot describe.

Each hook takes a decoded telegram and returns extra named fields. Layouts follow the
public wmbusmeters drivers of the same name; what they do not decode is said per hook.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from readers.model import Telegram, Value

Hook = Callable[[Telegram], dict[str, Value]]

# Apator at-wmbus-16-2 registers: id -> size. Unknown ids stop the scan.
_APATOR162_SIZES: dict[int, int] = {
    0x00: 4, 0x01: 3, 0x10: 4, 0xA1: 4, 0x11: 2, 0x40: 6, 0x41: 2, 0x42: 4, 0x43: 2,
    0x44: 3, 0x71: 9, 0x72: 13, 0x73: 17, 0x75: 25, 0x7B: 49,
    0x80: 10, 0x81: 10, 0x82: 10, 0x83: 10, 0x84: 10, 0x86: 10, 0x87: 10,
    0x85: 11, 0x88: 11, 0x8F: 11, 0x8A: 9, 0x8B: 6, 0x8C: 6, 0x8E: 7,
    0xA0: 4, 0xA2: 1, 0xA3: 7, 0xA4: 4, 0xA5: 1, 0xA6: 3, 0xA7: 2, 0xA8: 2, 0xA9: 1,
    0xAA: 2, 0xAB: 2, 0xAC: 2, 0xAD: 2, 0xAF: 1,
    0xB0: 5, 0xB1: 8, 0xB2: 16, 0xB3: 8, 0xB4: 2, 0xB5: 16,
    **{code: 3 for code in range(0xB6, 0xC8)}, 0xD0: 3, 0xD3: 3, 0xF0: 4,
}  # fmt: skip
_APATOR162_TOTAL = 0x10
_APATOR162_SKIP = 7  # date (4 bytes) and fault flags (3 bytes) after the 0x0F marker

_HYDRODIGIT_VOLTS = {
    0x1: "1.9", 0x2: "2.1", 0x3: "2.2", 0x4: "2.3", 0x5: "2.4", 0x6: "2.5", 0x7: "2.65",
    0x8: "2.8", 0x9: "2.9", 0xA: "3.05", 0xB: "3.2", 0xC: "3.35", 0xD: "3.5",
}  # fmt: skip


def _manufacturer_data(telegram: Telegram) -> bytes | None:
    for record in telegram.records:
        if record.quantity == "manufacturer_specific" and isinstance(record.value, bytes):
            return record.value
    return None


def apator162(telegram: Telegram) -> dict[str, Value]:
    """Return ``total_m3`` from the proprietary register list of an Apator 16-2 telegram.

    Only the total volume register (0x10, litres) is decoded; event and history registers
    are skipped by size, as wmbusmeters does.
    """
    data = _manufacturer_data(telegram)
    if data is None:
        return {}
    i = _APATOR162_SKIP
    while i < len(data) and data[i] != 0xFF:
        size = _APATOR162_SIZES.get(data[i])
        if size is None or i + 1 + size > len(data):
            break
        if data[i] == _APATOR162_TOTAL:
            litres = int.from_bytes(data[i + 1 : i + 5], "little")
            return {"total_m3": Decimal(litres).scaleb(-3)}
        i += 1 + size
    return {}


def hydrodigit(telegram: Telegram) -> dict[str, Value]:
    """Return ``battery_v`` and ``backflow_m3`` from a Bmeters Hydrodigit 0x0F block.

    Frame ids 0x15 and 0x95 (with a leak date) are decoded; the monthly history that
    follows is not.
    """
    data = _manufacturer_data(telegram)
    if data is None or len(data) < 2 or data[0] not in (0x15, 0x95):
        return {}
    fields: dict[str, Value] = {"battery_v": Decimal(_HYDRODIGIT_VOLTS.get(data[1] & 0x0F, "3.7"))}
    at = 2 + (3 if data[0] == 0x95 else 0)
    if len(data) >= at + 4:
        fields["backflow_m3"] = Decimal(int.from_bytes(data[at : at + 4], "little")).scaleb(-3)
    return fields


def mkradio4(telegram: Telegram) -> dict[str, Value]:
    """Return ``total_m3`` and ``target_m3`` of a Techem MK Radio 4 (CI 0xA2) payload.

    The payload holds the previous period's and the current period's volume in 0.1 m3.
    """
    data = _manufacturer_data(telegram)
    if data is None or len(data) < 9:
        return {}
    previous = Decimal(int.from_bytes(data[3:5], "little")).scaleb(-1)
    current = Decimal(int.from_bytes(data[7:9], "little")).scaleb(-1)
    return {"total_m3": previous + current, "target_m3": previous}


HOOKS: dict[str, Hook] = {
    "apator162": apator162,
    "hydrodigit": hydrodigit,
    "mkradio4": mkradio4,
}
