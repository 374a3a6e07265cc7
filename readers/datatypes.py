"""EN 13757-3 data types: BCD (type A), reals (type H) and time points (types F, G, I, J).

Meter clocks have no zone. Type F and I date-times are read as the meter's local time in
Poland and returned aware, with ``tzinfo=ZoneInfo("Europe/Warsaw")``; the summer-time bit
picks the right hour when the autumn change makes a wall time ambiguous.
"""

from __future__ import annotations

import math
import struct
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from meterflow.errors import UnsupportedError

METER_ZONE = ZoneInfo("Europe/Warsaw")
_FLOAT = struct.Struct("<f")


def bcd_value(chunk: bytes) -> int | None:
    """Return the integer of little-endian BCD ``chunk``; 0xF in the top nibble means negative.

    Returns None when a nibble is not a decimal digit (meters send FFFF... for "no value").
    """
    text = chunk[::-1].hex()
    if not text:
        return None
    if text.isdigit():
        return int(text)
    if text[0] == "f" and text[1:].isdigit():
        return -int(text[1:])
    return None


def bcd_bytes(value: int, size: int) -> bytes:
    """Return ``value`` as ``size`` little-endian BCD bytes (negative: 0xF top nibble).

    Raises UnsupportedError if the value does not fit.
    """
    digits = size * 2
    text = f"{value:0{digits}d}" if value >= 0 else "f" + f"{-value:0{digits - 1}d}"
    if len(text) != digits:
        raise UnsupportedError(f"{value} does not fit in {digits} BCD digits")
    return bytes.fromhex(text)[::-1]


def real_value(chunk: bytes) -> Decimal | None:
    """Return the 32-bit IEEE real as the shortest Decimal that reads back as the same float.

    Returns None for NaN and infinities, which have no exact value.
    """
    (number,) = _FLOAT.unpack(chunk)
    if not math.isfinite(number):
        return None
    for digits in range(6, 10):
        text = f"{number:.{digits}g}"
        if _FLOAT.pack(float(text)) == chunk:
            return Decimal(text)
    return Decimal(repr(number))


def _year(low: int, high: int, century: int) -> int:
    """Return the full year of a 7-bit year and the hundred-year bits (0 when unused)."""
    year = low | high
    if century:
        return 1900 + 100 * century + year
    return 2000 + year if year < 81 else 1900 + year


def type_g(chunk: bytes) -> date | None:
    """Return the date of a 2-byte type G field, None if it is invalid or unset."""
    b0, b1 = chunk[0], chunk[1]
    try:
        return date(_year((b0 & 0xE0) >> 5, (b1 & 0xF0) >> 1, 0), b1 & 0x0F, b0 & 0x1F)
    except ValueError:
        return None


def _local(
    year: int, month: int, day: int, hour: int, minute: int, second: int, su: int
) -> datetime:
    """Return the meter's wall time, disambiguated by the summer-time bit in autumn."""
    moment = datetime(year, month, day, hour, minute, second, tzinfo=METER_ZONE)
    if month == 10 and not su and moment.replace(fold=1).utcoffset() != moment.utcoffset():
        return moment.replace(fold=1)
    return moment


def type_f(chunk: bytes) -> datetime | None:
    """Return the date-time of a 4-byte type F field, None if invalid (IV bit) or unset."""
    b0, b1, b2, b3 = chunk[0], chunk[1], chunk[2], chunk[3]
    if b0 & 0x80:
        return None
    year = _year((b2 & 0xE0) >> 5, (b3 & 0xF0) >> 1, (b1 >> 5) & 0x03)
    try:
        return _local(year, b3 & 0x0F, b2 & 0x1F, b1 & 0x1F, b0 & 0x3F, 0, b1 & 0x80)
    except ValueError:
        return None


def type_i(chunk: bytes) -> datetime | None:
    """Return the date-time of a 6-byte type I field, None if invalid (IV bit) or unset."""
    b0, b1, b2, b3, b4 = chunk[0], chunk[1], chunk[2], chunk[3], chunk[4]
    if b0 & 0x80:
        return None
    year = _year((b3 & 0xE0) >> 5, (b4 & 0xF0) >> 1, 0)
    try:
        return _local(year, b4 & 0x0F, b3 & 0x1F, b2 & 0x1F, b1 & 0x3F, b0 & 0x3F, b1 & 0x80)
    except ValueError:
        return None


def type_j(chunk: bytes) -> str | None:
    """Return the time of day of a 3-byte type J field as ``HH:MM:SS``, None if invalid."""
    second, minute, hour = chunk[0] & 0x3F, chunk[1] & 0x3F, chunk[2] & 0x1F
    if second > 59 or minute > 59 or hour > 23:
        return None
    return f"{hour:02d}:{minute:02d}:{second:02d}"


def time_point(chunk: bytes) -> date | datetime | str | None:
    """Return the time point coded in ``chunk`` by its length (G 2, J 3, F 4, I 6 bytes).

    Raises UnsupportedError for any other length.
    """
    size = len(chunk)
    if size == 2:
        return type_g(chunk)
    if size == 4:
        return type_f(chunk)
    if size == 6:
        return type_i(chunk)
    if size == 3:
        return type_j(chunk)
    raise UnsupportedError(f"a time point of {size} bytes has no EN 13757-3 type")


def _year_bits(year: int, *, century: bool) -> tuple[int, int]:
    """Return (7-bit year, hundred-year bits) for ``year``.

    Raises UnsupportedError if the year cannot be coded.
    """
    if century and 2000 <= year <= 2299:
        return year % 100, (year - 1900) // 100
    if 1981 <= year <= 2080:
        return year % 100, 0
    raise UnsupportedError(f"year {year} cannot be coded in an M-Bus date")


def encode_type_g(value: date) -> bytes:
    """Return the 2-byte type G coding of ``value``.

    Raises UnsupportedError if the year is outside 1981-2080.
    """
    year, _ = _year_bits(value.year, century=False)
    return bytes([value.day | (year & 0x07) << 5, value.month | (year & 0x78) << 1])


def encode_datetime(value: datetime) -> bytes:
    """Return type F (4 bytes) or, when seconds are set, type I (6 bytes) in meter time.

    Raises UnsupportedError for naive datetimes, microseconds or years out of range.
    """
    if value.tzinfo is None or value.microsecond:
        raise UnsupportedError("M-Bus date-times must be timezone-aware whole seconds")
    local = value.astimezone(METER_ZONE)
    su = 0x80 if local.dst() else 0
    year, century = _year_bits(local.year, century=not local.second)
    day_year = local.day | (year & 0x07) << 5
    month_year = local.month | (year & 0x78) << 1
    if local.second:
        return bytes([local.second, local.minute | su, local.hour, day_year, month_year, 0])
    return bytes([local.minute, local.hour | century << 5 | su, day_year, month_year])
