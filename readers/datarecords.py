"""Decode the EN 13757-3 variable data structure into records (wired and wireless alike).

A data record is a DIB (DIF plus up to ten DIFEs: data field, function, storage number,
tariff, subunit), a VIB (VIF plus VIFEs: quantity, unit, scale, modifiers) and the data.
Each distinct DIB+VIB byte string is compiled once into a ``Shape`` (how to read the data
and every field of the record but its value) and cached, so a record layout seen before
decodes with a slice, one dict lookup and ``int.from_bytes``.
"""

from __future__ import annotations

import collections
import itertools
from decimal import Context, Decimal

from meterflow.errors import FrameError, UnsupportedError
from readers.datatypes import bcd_value, real_value, time_point
from readers.dibvib import (
    COMPACT_PROFILES,
    FUNCTIONS,
    MANUFACTURER_SPECIFIC,
    MAX_DIFES,
    MAX_VIFES,
    MORE_RECORDS_FOLLOW,
    PLAIN_TEXT,
    Meaning,
    read_difes,
    read_lvar,
    read_vib,
    vib_meaning,
)
from readers.model import Record, Value
from readers.record_encode import encode_record, encode_records

__all__ = [
    "FUNCTIONS",
    "MANUFACTURER_SPECIFIC",
    "MAX_DIFES",
    "MAX_VIFES",
    "MORE_RECORDS_FOLLOW",
    "MANUFACTURER_LAYOUT",
    "PLAIN_TEXT",
    "Layout",
    "decode_layout",
    "decode_records",
    "encode_record",
    "encode_records",
    "vib_meaning",
]

# Fixed sizes of data field codes 0x0-0xE; 0xD (variable length) is sized by its LVAR byte.
_SIZES = (0, 1, 2, 3, 4, 4, 6, 8, 0, 1, 2, 3, 4, -1, 6)
_BCD_CODES = frozenset((0x9, 0xA, 0xB, 0xC, 0xE))
_TIME_CODES = frozenset((0x2, 0x3, 0x4, 0x6))
_EXACT = Context(prec=200)
_multiply = _EXACT.multiply
_CACHE_LIMIT = 4096

# How a shape reads its data: the integer readers are inlined in decode_layout.
NOTHING, UNSIGNED, SCALED_DOWN, SCALED_UP, BCD, REAL, TIME, VARIABLE = range(8)

# size, reader, exponent, scale, quantity, unit, storage, tariff, subunit, function,
# modifiers, token. The scale is 10**exponent (1 without an exponent): an int when the
# exponent is positive, a Decimal (1E-3...) when negative, where multiplying by it gives the
# same exact Decimal as scaleb in a third of the time. The token is a serial number naming
# the shape (None if uncached).
Shape = tuple[
    int, int, int | None, int | Decimal, str, str, int, int, int, str, tuple[str, ...], int | None
]
# The shape tokens of a frame's records (None when a record had no cached shape): drivers
# key their field plans on it.
Layout = tuple[int | None, ...]

# Oldest first: when full, the oldest shape goes (a hot one comes back after one compile,
# while the decode loop's lookup stays a plain dict get).
_SHAPES: collections.OrderedDict[bytes, Shape] = collections.OrderedDict()
_TOKENS = itertools.count(1)
_MANUFACTURER_TOKENS = {0x0F: -1, 0x1F: -2}
MANUFACTURER_LAYOUT: Layout = (-1,)  # one manufacturer_specific record without modifiers


def _reader(code: int, meaning: Meaning) -> tuple[int, int | Decimal]:
    """Return (reader, scale) for data field ``code`` under ``meaning``."""
    exponent, when = meaning[2], meaning[3]
    if _SIZES[code] == 0:
        return NOTHING, 1
    if code == 0xD:
        return VARIABLE, 1
    if when and code in _TIME_CODES:
        return TIME, 1
    if code == 0x5:
        return REAL, 1
    scale: int | Decimal = 1
    if exponent is not None:
        scale = Decimal(1).scaleb(exponent) if exponent < 0 else 10**exponent
    if code in _BCD_CODES:
        return BCD, scale
    if exponent is None:
        return UNSIGNED, scale
    return (SCALED_DOWN, scale) if exponent < 0 else (SCALED_UP, scale)


def _compile(data: bytes, i: int) -> tuple[int, Shape]:
    """Read the record header at ``i`` in full; return the index of its data and its shape.

    The shape is cached under the header bytes unless it holds plain text.
    Raises FrameError if the header is truncated, UnsupportedError for reserved codes.
    """
    dif = data[i]
    if dif & 0x80:
        j, storage, tariff, subunit = read_difes(data, i + 1, dif)
    else:
        j, storage, tariff, subunit = i + 1, (dif >> 6) & 1, 0, 0
    end, meaning, text = read_vib(data, j)
    code = dif & 0x0F
    reader, scale = _reader(code, meaning)
    function = FUNCTIONS[(dif >> 4) & 0x03]
    token = None if text else next(_TOKENS)
    quantity, unit, exponent, _, modifiers = meaning
    shape = (_SIZES[code], reader, exponent, scale, quantity, unit, storage, tariff, subunit)
    compiled: Shape = (*shape, function, modifiers, token)
    if not text:
        if len(_SHAPES) >= _CACHE_LIMIT:
            _SHAPES.popitem(last=False)  # bounded, so hostile input cannot grow it
        _SHAPES[data[i:end]] = compiled
    return end, compiled


def _header_end(data: bytes, i: int, n: int) -> int:
    """Return where the record header at ``i`` ends, judged by extension bits alone."""
    j = i + 1
    if data[i] & 0x80:
        while j < n and data[j] & 0x80:
            j += 1
        j += 1
    if j < n and data[j] & 0x80:
        j += 1
        while j < n and data[j] & 0x80:
            j += 1
    return j + 1


def _bcd(chunk: bytes, exponent: int | None, scale: int | Decimal) -> Value:
    """Return the value of a BCD data field (None if it holds a digit A-E)."""
    digits = chunk[::-1].hex()
    raw = int(digits) if digits.isdigit() else bcd_value(chunk)
    if raw is None or exponent is None:
        return raw
    return _multiply(raw, scale) if exponent < 0 else Decimal(raw * scale)


def _other_value(reader: int, chunk: bytes, exponent: int | None) -> Value:
    """Return the value of a real or time-point data field."""
    if reader == TIME:
        return time_point(chunk)
    real = real_value(chunk)
    if real is None or exponent is None:
        return real
    return real.scaleb(exponent, _EXACT) if exponent < 0 else real * 10**exponent


def _scaled(raw: int | None, exponent: int | None) -> Value:
    """Return ``raw`` with its power of ten applied (plain int when there is no scale)."""
    if raw is None or exponent is None:
        return raw
    if exponent >= 0:
        return Decimal(raw * 10**exponent)
    return Decimal(raw).scaleb(exponent, _EXACT)


def _variable(data: bytes, i: int, shape: Shape) -> tuple[int, int, Value]:
    """Read the LVAR data at ``i``; return (next index, data size, value).

    Compact profiles (EN 13757-3:2018) are returned undecoded, as bytes.
    Raises FrameError if the data runs past the end, UnsupportedError for reserved LVARs.
    """
    i, size, coding = read_lvar(data, i)
    if i + size > len(data):
        raise FrameError("variable-length data runs past the end of the record")
    chunk = data[i : i + size]
    exponent = shape[2]
    if coding == "text":
        if COMPACT_PROFILES.intersection(shape[10]):
            return i + size, size, bytes(chunk)
        return i + size, size, chunk[::-1].decode("latin-1")
    if coding == "binary":
        raw = int.from_bytes(chunk, "little", signed=exponent is not None)
        return i + size, size, _scaled(raw, exponent)
    number = bcd_value(chunk)
    if number is not None and coding == "-bcd":
        number = -number
    return i + size, size, _scaled(number, exponent)


def _manufacturer_record(dif: int, data: bytes, i: int) -> Record:
    """Return the record holding the manufacturer-specific rest after DIF 0x0F / 0x1F.

    Raises UnsupportedError for the other DIFs 0x?F, which the standard reserves or uses
    for readout requests.
    """
    if dif in (0x0F, 0x1F):
        modifiers = (MORE_RECORDS_FOLLOW,) if dif == 0x1F else ()
        return Record(MANUFACTURER_SPECIFIC, "", data[i:], modifiers=modifiers)
    raise UnsupportedError(f"DIF 0x{dif:02X} is reserved or a readout request")


def decode_layout(data: bytes) -> tuple[tuple[Record, ...], Layout]:
    """Return the records of a variable data structure and the layout they came in.

    Raises FrameError if a record is truncated or malformed, UnsupportedError for codes
    the standard reserves.
    """
    data = bytes(data)  # the same object for bytes; shape keys must be hashable slices
    records: list[Record] = []
    tokens: list[int | None] = []
    shapes = _SHAPES
    new_record = tuple.__new__  # Record(...) without the keyword handling of its __new__
    n = len(data)
    i = 0
    while i < n:
        dif = data[i]
        if dif == 0x2F:  # idle filler (encrypted payloads start and are padded with it)
            i += 1
            while i < n and data[i] == 0x2F:
                i += 1
            continue
        if dif & 0x0F == 0x0F:
            records.append(_manufacturer_record(dif, data, i + 1))
            tokens.append(_MANUFACTURER_TOKENS[dif])
            break
        if dif & 0x80 or i + 1 >= n or data[i + 1] & 0x80:
            j = _header_end(data, i, n)
        else:
            j = i + 2  # the usual record: a DIF and a VIF, no extensions
        shape = shapes.get(data[i:j])
        if shape is None:
            j, shape = _compile(data, i)
        (
            size,
            reader,
            exponent,
            scale,
            quantity,
            unit,
            storage,
            tariff,
            subunit,
            function,
            modifiers,
            token,
        ) = shape
        i = j + size
        if reader == VARIABLE:
            i, size, value = _variable(data, j, shape)
        elif i > n:
            raise FrameError(f"data of DIF 0x{dif:02X} runs past the end of the record")
        elif reader == SCALED_DOWN:
            value = _multiply(int.from_bytes(data[j:i], "little", signed=True), scale)
        elif reader == UNSIGNED:
            value = int.from_bytes(data[j:i], "little")
        elif reader == SCALED_UP:
            value = Decimal(int.from_bytes(data[j:i], "little", signed=True) * scale)
        elif reader == BCD:
            value = _bcd(data[j:i], exponent, scale)
        elif reader == NOTHING:
            value = None
        else:
            value = _other_value(reader, data[j:i], exponent)
        if value is None and size:
            modifiers = (*modifiers, "invalid")
        fields = (quantity, unit, value, storage, tariff, subunit, function, modifiers)
        records.append(new_record(Record, fields))
        tokens.append(token)
    return tuple(records), tuple(tokens)


def decode_records(data: bytes) -> tuple[Record, ...]:
    """Return the records of a variable data structure (the bytes after the data header).

    Raises FrameError if a record is truncated or malformed, UnsupportedError for codes
    the standard reserves.
    """
    return decode_layout(data)[0]
