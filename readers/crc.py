"""CRC-16 of EN 13757-4 (polynomial 0x3D65, initial value 0, final XOR 0xFFFF), table driven."""

from __future__ import annotations

POLYNOMIAL = 0x3D65


def _build_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ POLYNOMIAL) if crc & 0x8000 else crc << 1
        table.append(crc & 0xFFFF)
    return tuple(table)


_TABLE = _build_table()


def crc16_en13757(data: bytes) -> int:
    """Return the EN 13757 CRC-16 of ``data`` (transmitted big-endian after its block)."""
    crc = 0
    table = _TABLE
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ table[(crc >> 8) ^ byte]
    return crc ^ 0xFFFF
