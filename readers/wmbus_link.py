"""Wireless M-Bus data link layer (EN 13757-4): L, C, M, A fields and the CRC blocks of
frame formats A and B, present (raw radio dongles) or already stripped (many gateways)."""

from __future__ import annotations

import dataclasses
import functools
from typing import Literal

from meterflow.errors import CrcError, FrameError
from readers.crc import BLOCK_CHECK, crc16_en13757
from readers.header import manufacturer_code, manufacturer_number, manufacturer_of
from readers.model import Header

FrameFormat = Literal["A", "B"]

LINK_LEN = 10  # L, C, M (2), A (6): the first block of format A
DATA_BLOCK = 16  # format A: every later block holds 16 bytes before its CRC
B_FIRST_SPAN = 126  # format B: bytes covered by the CRC of blocks 1 and 2
CRC_LEN = 2


@dataclasses.dataclass(frozen=True, slots=True)
class LinkHeader:
    """The link layer fields: C field, manufacturer (M) and address (A: id, version, type)."""

    c_field: int
    m_field: bytes
    a_field: bytes

    @property
    def manufacturer(self) -> str:
        """The three-letter manufacturer code."""
        return manufacturer_code(int.from_bytes(self.m_field, "little"))

    def header(self, access_no: int | None = None, status: int | None = None) -> Header:
        """Return the meter header this link address names."""
        return address_header(self.m_field, self.a_field, access_no, status)


def address_header(
    m_field: bytes, a_field: bytes, access_no: int | None, status: int | None
) -> Header:
    """Return a Header from raw M (2 bytes) and A (id 4 bytes, version, type) fields.

    The id is printed most significant byte first: 8 digits for BCD ids, hex otherwise
    (some radio meters use binary ids). Raises FrameError if M is not a valid code.
    """
    code = manufacturer_of(m_field)
    return Header(code, a_field[3::-1].hex(), a_field[4], a_field[5], access_no, status)


def address_fields(header: Header) -> tuple[bytes, bytes]:
    """Return the raw M (2 bytes) and A (6 bytes) fields of ``header``.

    Raises FrameError unless the id is 8 hex digits and the manufacturer three letters.
    """
    try:
        id_bytes = bytes.fromhex(header.id)[::-1]
    except ValueError:
        id_bytes = b""
    if len(id_bytes) != 4:
        raise FrameError(f"meter id {header.id!r} must be 8 digits")
    m_field = manufacturer_number(header.manufacturer).to_bytes(2, "little")
    return m_field, id_bytes + bytes([header.version & 0xFF, header.device_type & 0xFF])


def parse_link(frame: bytes) -> LinkHeader:
    """Return the link header of a CRC-free frame.

    Raises FrameError if the frame is shorter than the link header plus a CI field.
    """
    if len(frame) < LINK_LEN + 1:
        raise FrameError(f"telegram too short: {len(frame)} bytes, need at least {LINK_LEN + 1}")
    return LinkHeader(frame[1], frame[2:4], frame[4:10])


def format_a_length(l_field: int) -> int:
    """Return the on-air length of a format A frame with CRCs whose L field is ``l_field``."""
    blocks = 1 + -(-(l_field + 1 - LINK_LEN) // DATA_BLOCK)
    return l_field + 1 + CRC_LEN * blocks


def unframe(raw: bytes, crc: bool | None = None, frame_format: FrameFormat | None = None) -> bytes:
    """Return the frame without its CRC blocks, checking them.

    ``crc`` None detects: a frame as long as format A with CRCs is checked as such; a frame
    of exactly L + 1 bytes is format B with CRCs when its CRC matches, else CRC-free.
    Raises FrameError on a length mismatch and CrcError naming the block on a bad CRC.
    """
    if len(raw) < LINK_LEN + 1:
        raise FrameError(f"telegram too short: {len(raw)} bytes, need at least {LINK_LEN + 1}")
    l_field = raw[0]
    if crc is False:
        return _check_plain(raw, l_field)
    if frame_format == "B" or (crc and frame_format is None and len(raw) == l_field + 1):
        return strip_format_b(raw)
    if frame_format == "A" or crc or len(raw) == format_a_length(l_field):
        return strip_format_a(raw)
    if len(raw) == l_field + 1 and _format_b_matches(raw):
        return strip_format_b(raw)
    return _check_plain(raw, l_field)


def _check_plain(raw: bytes, l_field: int) -> bytes:
    if len(raw) < l_field + 1:
        raise FrameError(f"telegram truncated: L field says {l_field + 1} bytes, got {len(raw)}")
    # Bytes past the L field (an appended RSSI, a receiver's trailer) are not the meter's.
    return raw[: l_field + 1]


def _check_crc(block: bytes, crc: bytes, number: int) -> None:
    if len(crc) != CRC_LEN:
        raise FrameError(f"telegram truncated in block {number}")
    if int.from_bytes(crc, "big") != crc16_en13757(block):
        raise _crc_error(block, crc, number)


def _crc_error(block: bytes, crc: bytes, number: int) -> CrcError:
    expected = crc16_en13757(block)
    return CrcError(f"CRC of block {number} is {crc.hex().upper()}, computed {expected:04X}")


@functools.cache
def _format_a_blocks(l_field: int) -> tuple[tuple[int, int], ...]:
    """Return the (start, end) data byte spans of a format A frame's blocks, each followed
    by its 2-byte CRC."""
    spans = [(0, LINK_LEN)]
    start, remaining = LINK_LEN + CRC_LEN, l_field + 1 - LINK_LEN
    while remaining > 0:
        size = min(DATA_BLOCK, remaining)
        spans.append((start, start + size))
        start, remaining = start + size + CRC_LEN, remaining - size
    return tuple(spans)


def strip_format_a(raw: bytes) -> bytes:
    """Return a format A frame without its CRCs.

    Raises FrameError if the frame is truncated and CrcError naming the first bad block.
    """
    l_field = raw[0]
    stop = format_a_length(l_field)
    if len(raw) < stop:
        raise FrameError(
            f"telegram truncated: format A with L={l_field} needs {stop} bytes, got {len(raw)}"
        )
    spans = _format_a_blocks(l_field)
    crc16 = crc16_en13757
    for number, (start, end) in enumerate(spans, 1):
        if crc16(raw[start : end + CRC_LEN]) != BLOCK_CHECK:
            raise _crc_error(raw[start:end], raw[end : end + CRC_LEN], number)
    return b"".join([raw[start:end] for start, end in spans])


def _format_b_matches(raw: bytes) -> bool:
    span = min(len(raw), B_FIRST_SPAN + CRC_LEN) - CRC_LEN
    return crc16_en13757(raw[:span]) == int.from_bytes(raw[span : span + CRC_LEN], "big")


def strip_format_b(raw: bytes) -> bytes:
    """Return a format B frame (L counts the CRC bytes) without its CRCs.

    Raises FrameError if the frame is truncated and CrcError naming the bad block.
    """
    total = raw[0] + 1
    if len(raw) < total:
        raise FrameError(f"telegram truncated: L field says {total} bytes, got {len(raw)}")
    raw = raw[:total]
    if total <= B_FIRST_SPAN + CRC_LEN:
        _check_crc(raw[: total - CRC_LEN], raw[total - CRC_LEN :], 2)
        return raw[: total - CRC_LEN]
    first_end = B_FIRST_SPAN + CRC_LEN
    _check_crc(raw[:B_FIRST_SPAN], raw[B_FIRST_SPAN:first_end], 2)
    if total - first_end <= CRC_LEN:
        raise FrameError("format B block 3 holds no data")
    _check_crc(raw[first_end : total - CRC_LEN], raw[total - CRC_LEN :], 3)
    return raw[:B_FIRST_SPAN] + raw[first_end : total - CRC_LEN]


def add_crcs(frame: bytes, frame_format: FrameFormat) -> bytes:
    """Return a CRC-free frame (L = len - 1) with its L field fixed and CRC blocks added."""
    if frame_format == "A":
        parts = [frame[:LINK_LEN], _crc_bytes(frame[:LINK_LEN])]
        for start in range(LINK_LEN, len(frame), DATA_BLOCK):
            block = frame[start : start + DATA_BLOCK]
            parts += [block, _crc_bytes(block)]
        return b"".join(parts)
    crcs = CRC_LEN if len(frame) <= B_FIRST_SPAN else 2 * CRC_LEN
    body = bytes([len(frame) - 1 + crcs]) + frame[1:]
    if crcs == CRC_LEN:
        return body + _crc_bytes(body)
    first, rest = body[:B_FIRST_SPAN], body[B_FIRST_SPAN:]
    return first + _crc_bytes(first) + rest + _crc_bytes(rest)


def _crc_bytes(block: bytes) -> bytes:
    return crc16_en13757(block).to_bytes(2, "big")
