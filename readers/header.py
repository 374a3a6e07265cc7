"""The EN 13757-3 application-layer header parts shared by wired and wireless M-Bus.

Manufacturer codes (three letters packed in 15 bits), BCD identification numbers and
the long (12 byte) and short (4 byte) data headers.
"""

from __future__ import annotations

import dataclasses

from meterflow.errors import FrameError
from readers.model import Header

LONG_HEADER_LEN = 12
SHORT_HEADER_LEN = 4
# Manufacturer codes by their two raw bytes: at most 65,536 entries whatever the input, and
# no entry per meter (a city has hundreds of thousands; the id is cheaper to print than to
# cache).
_MANUFACTURERS: dict[bytes, str] = {}


@dataclasses.dataclass(frozen=True, slots=True)
class DataHeader:
    """Access number, status and configuration (signature) word of a data header."""

    access_no: int
    status: int
    configuration: int

    @property
    def security_mode(self) -> int:
        """The OMS security mode: bits 8-12 of the configuration word."""
        return (self.configuration >> 8) & 0x1F


def manufacturer_code(number: int) -> str:
    """Return the three-letter code of a packed manufacturer number (0x0477 -> ``"APA"``).

    Raises FrameError if a letter falls outside A-Z.
    """
    letters = [(number >> 10) & 0x1F, (number >> 5) & 0x1F, number & 0x1F]
    if number & 0x8000 or not all(1 <= letter <= 26 for letter in letters):
        raise FrameError(f"manufacturer field 0x{number:04X} is not a valid three-letter code")
    return "".join(chr(64 + letter) for letter in letters)


def manufacturer_of(m_field: bytes) -> str:
    """Return the three-letter code of the 2-byte little-endian M field, cached.

    Raises FrameError if a letter falls outside A-Z.
    """
    code = _MANUFACTURERS.get(m_field)
    if code is None:
        code = _MANUFACTURERS[bytes(m_field)] = manufacturer_code(int.from_bytes(m_field, "little"))
    return code


def manufacturer_number(code: str) -> int:
    """Return the packed number of a three-letter manufacturer code (``"APA"`` -> 0x0477).

    Raises FrameError unless the code is three letters A-Z.
    """
    if len(code) != 3 or not code.isascii() or not code.isalpha():
        raise FrameError(f"manufacturer code {code!r} must be three letters A-Z")
    a, b, c = (ord(ch) - 64 for ch in code.upper())
    return (a << 10) | (b << 5) | c


def bcd_id(raw: bytes) -> str:
    """Return the 8-digit identification number stored little-endian BCD in ``raw``.

    Raises FrameError if a nibble is not a decimal digit.
    """
    text = raw[::-1].hex()
    if not text.isdigit():
        raise FrameError(f"identification number {raw.hex().upper()} is not BCD")
    return text


def bcd_id_bytes(id_: str) -> bytes:
    """Return the 4 little-endian BCD bytes of an 8-digit identification number.

    Raises FrameError unless ``id_`` is exactly 8 decimal digits.
    """
    if len(id_) != 8 or not id_.isdigit():
        raise FrameError(f"identification number {id_!r} must be 8 decimal digits")
    return bytes.fromhex(id_)[::-1]


def parse_long_header(data: bytes) -> tuple[Header, DataHeader]:
    """Parse the 12-byte long header: id, manufacturer, version, medium, access, status, cfg.

    Raises FrameError if ``data`` is shorter than 12 bytes or a field is invalid.
    """
    header = long_header_identity(data)
    return header, DataHeader(data[8], data[9], int.from_bytes(data[10:12], "little"))


def long_header_identity(data: bytes) -> Header:
    """Return the meter header of a 12-byte long header (``parse_long_header``'s first half).

    Raises FrameError if ``data`` is shorter than 12 bytes or a field is invalid.
    """
    if len(data) < LONG_HEADER_LEN:
        raise FrameError(f"long header needs {LONG_HEADER_LEN} bytes, got {len(data)}")
    code = manufacturer_of(data[4:6])
    return Header(code, bcd_id(data[0:4]), data[6], data[7], data[8], data[9])


def parse_short_header(data: bytes) -> DataHeader:
    """Parse the 4-byte short header: access number, status, configuration word.

    Raises FrameError if ``data`` is shorter than 4 bytes.
    """
    if len(data) < SHORT_HEADER_LEN:
        raise FrameError(f"short header needs {SHORT_HEADER_LEN} bytes, got {len(data)}")
    return DataHeader(data[0], data[1], int.from_bytes(data[2:4], "little"))


def encode_long_header(header: Header, configuration: int = 0) -> bytes:
    """Return the 12-byte long header for ``header`` (access number and status default 0)."""
    return (
        bcd_id_bytes(header.id)
        + manufacturer_number(header.manufacturer).to_bytes(2, "little")
        + bytes([header.version, header.device_type, header.access_no or 0, header.status or 0])
        + configuration.to_bytes(2, "little")
    )


def encode_short_header(access_no: int, status: int, configuration: int = 0) -> bytes:
    """Return the 4-byte short header."""
    return bytes([access_no & 0xFF, status & 0xFF]) + configuration.to_bytes(2, "little")
