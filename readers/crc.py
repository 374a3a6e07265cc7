"""CRC-16 of EN 13757-4 (polynomial 0x3D65, initial value 0, final XOR 0xFFFF).

Computed by ``fastcrc`` (compiled): checking the CRC blocks of every radio telegram is the
one per-byte loop of wireless decoding, and a Python table loop cost a sixth of it.
"""

from __future__ import annotations

from collections.abc import Callable

from fastcrc import crc16 as _crc16

# The EN 13757 CRC-16 of some bytes (transmitted big-endian after its block).
crc16_en13757: Callable[[bytes], int] = _crc16.en_13757

# Running a block and then its correct CRC through the CRC always gives this value, so a
# CRC-framed block is checked with one call and one compare.
BLOCK_CHECK = crc16_en13757(b"\xff\xff")
