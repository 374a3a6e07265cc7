"""Encode records into the EN 13757-3 variable data structure (the inverse of decoding).

The encoder picks the primary VIF table first (then FB, FD), the coarsest scale that keeps
a value exact and the smallest data field that holds it; what it cannot write exactly
raises UnsupportedError.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from decimal import Context, Decimal

from meterflow.errors import UnsupportedError
from readers import vif as tables
from readers.datatypes import bcd_bytes, encode_datetime, encode_type_g
from readers.dibvib import (
    FUNCTIONS,
    MANUFACTURER_SPECIFIC,
    MAX_DIFES,
    MORE_RECORDS_FOLLOW,
    PLAIN_TEXT,
)
from readers.model import Record

_EXACT = Context(prec=200)

Codes = tuple[int, ...]


def _encodable() -> tuple[
    dict[tuple[str, str], list[tuple[int, Codes]]], dict[tuple[str, str], tuple[Codes, bool]]
]:
    """Return the scaled and the unscaled VIF codings of every (quantity, unit)."""
    scaled: dict[tuple[str, str], list[tuple[int, Codes]]] = {}
    plain: dict[tuple[str, str], tuple[Codes, bool]] = {}
    sources = ((tables.PRIMARY, ()), (tables.FB, (0xFB,)), (tables.FD, (0xFD,)))
    for table, prefix in sources:
        for code, info in table.items():
            codes: Codes = (*prefix, code)
            key = (info.quantity, info.unit)
            if info.exponent is None:
                plain.setdefault(key, (codes, info.time_point))
            elif key not in scaled or len(scaled[key][0][1]) == len(codes):
                scaled.setdefault(key, []).append((info.exponent, codes))
    scaled[(PLAIN_TEXT, "")] = [(0, (tables.PLAIN_TEXT,))]
    return scaled, plain


_SCALED, _PLAIN = _encodable()
_MODIFIER_CODES = {
    vife.modifier: code
    for code, vife in tables.COMBINABLE.items()
    if vife.modifier and not vife.exponent and vife.unit is None and not vife.time_point
}
_INT_SIZES = ((1, 0x1), (2, 0x2), (3, 0x3), (4, 0x4), (6, 0x6), (8, 0x7))
_BCD_SIZES = ((1, 0x9), (2, 0xA), (3, 0xB), (4, 0xC), (6, 0xE))


def _chain(codes: Codes) -> bytes:
    """Return ``codes`` with the extension bit set on all but the last."""
    return bytes([c | 0x80 for c in codes[:-1]] + [codes[-1]])


def _dib(code: int, record: Record) -> bytes:
    """Return the DIF and DIFEs of ``record`` around data field ``code``.

    Raises UnsupportedError for an unknown function or numbers beyond ten DIFEs.
    """
    if record.function not in FUNCTIONS:
        raise UnsupportedError(f"function {record.function!r} is not one of {FUNCTIONS}")
    storage, tariff, subunit = record.storage, record.tariff, record.subunit
    if min(storage, tariff, subunit) < 0:
        raise UnsupportedError("storage, tariff and subunit must not be negative")
    dib = [code | FUNCTIONS.index(record.function) << 4 | (storage & 1) << 6]
    storage >>= 1
    while storage or tariff or subunit:
        dib.append((storage & 0x0F) | (tariff & 0x03) << 4 | (subunit & 0x01) << 6)
        storage, tariff, subunit = storage >> 4, tariff >> 2, subunit >> 1
    if len(dib) > MAX_DIFES + 1:
        raise UnsupportedError("storage, tariff or subunit needs more than ten DIFEs")
    return _chain(tuple(dib))


def _integer(raw: int, *, signed: bool, bcd: bool) -> tuple[int, bytes]:
    """Return (data field code, bytes) of the smallest field that holds ``raw``.

    Raises UnsupportedError if it does not fit in 64 bits.
    """
    if bcd:
        for size, code in _BCD_SIZES:
            if -(10 ** (2 * size - 1)) < raw < 10 ** (2 * size):
                return code, bcd_bytes(raw, size)
    if not signed and raw < 0:
        raise UnsupportedError(f"{raw} is negative but this quantity is unsigned")
    for size, code in _INT_SIZES:
        bits = 8 * size
        low, high = (-(1 << (bits - 1)), 1 << (bits - 1)) if signed else (0, 1 << bits)
        if low <= raw < high:
            return code, raw.to_bytes(size, "little", signed=signed)
    raise UnsupportedError(f"{raw} does not fit in a 64-bit data field")


def _last_digit(value: Decimal) -> int:
    """Return the power of ten of the last significant digit of ``value`` (0 for zero)."""
    exponent = value.normalize(_EXACT).as_tuple().exponent if value else 0
    if not isinstance(exponent, int):
        raise UnsupportedError(f"{value} is not a finite number")
    return exponent


def _choose_scale(options: list[tuple[int, Codes]], value: Decimal) -> tuple[int, Codes, Codes]:
    """Return (exponent, VIF codes, correction VIFE) keeping ``value`` exact and small.

    Falls back to the finest scale plus a 10^(n-6) multiplicative correction VIFE.
    Raises UnsupportedError if no coding keeps the value exact.
    """
    needed = _last_digit(value)
    fitting = [option for option in options if option[0] <= needed]
    if fitting:
        exponent, codes = max(fitting)
        return exponent, codes, ()
    exponent, codes = min(options)
    shift = needed - exponent
    if shift < -6:
        raise UnsupportedError(f"{value} has more decimals than any M-Bus scale can hold")
    return needed, codes, (0x76 + shift,)


def _key(record: Record) -> tuple[str, str]:
    """Return the (quantity, unit) the coding tables know ``record`` by."""
    return (PLAIN_TEXT, "") if record.quantity == PLAIN_TEXT else (record.quantity, record.unit)


def _number(record: Record, value: Decimal | int, bcd: bool) -> tuple[Codes, Codes, int, bytes]:
    """Return (VIF codes, correction VIFE, data field code, data) of a numeric record.

    Raises UnsupportedError if its quantity and unit have no coding or the value no fit.
    """
    number = Decimal(value)
    options = _SCALED.get(_key(record))
    if options is not None:
        exponent, codes, correction = _choose_scale(options, number)
        raw = int(number.scaleb(-exponent, _EXACT))
        return (codes, correction, *_integer(raw, signed=True, bcd=bcd))
    plain = _PLAIN.get(_key(record))
    if plain is None or plain[1]:
        raise UnsupportedError(f"no VIF codes {record.quantity!r} as a number in {record.unit!r}")
    if _last_digit(number) < 0:
        raise UnsupportedError(f"{record.quantity} must be a whole number, got {value}")
    return (plain[0], (), *_integer(int(number), signed=False, bcd=bcd))


def _other(record: Record) -> tuple[Codes, int, bytes]:
    """Return (VIB codes, data field code, data) of a text, time-point or empty record.

    Raises UnsupportedError if the quantity cannot carry this kind of value.
    """
    value = record.value
    plain = _PLAIN.get(_key(record))
    scaled = _SCALED.get(_key(record))
    codes = plain[0] if plain else scaled[0][1] if scaled else None
    if codes is None:
        raise UnsupportedError(f"no VIF codes {record.quantity!r} in {record.unit!r}")
    if value is None:
        return codes, 0x0, b""
    if isinstance(value, str):
        text = value[::-1].encode("latin-1", errors="strict") if value.isascii() else b""
        if len(text) != len(value) or len(text) > 0xBF:
            raise UnsupportedError("strings must be ASCII and at most 191 characters")
        return codes, 0xD, bytes([len(text)]) + text
    if not (plain and plain[1]) or not isinstance(value, date):
        raise UnsupportedError(f"{record.quantity} cannot hold {type(value).__name__}")
    if isinstance(value, datetime):
        data = encode_datetime(value)
        return codes, 0x4 if len(data) == 4 else 0x6, data
    return codes, 0x2, encode_type_g(value)


def encode_record(record: Record, *, bcd: bool = False) -> bytes:
    """Return the DIB, VIB and data of one record (``bcd``: numbers as BCD when they fit).

    Raises UnsupportedError if the record cannot be coded exactly.
    """
    value = record.value
    if isinstance(value, bool) or isinstance(value, bytes):
        raise UnsupportedError(f"{record.quantity} cannot hold {type(value).__name__} here")
    correction: Codes = ()
    if isinstance(value, Decimal | int):
        codes, correction, code, data = _number(record, value, bcd)
    else:
        codes, code, data = _other(record)
    extra = []
    for modifier in record.modifiers:
        if modifier not in _MODIFIER_CODES:
            raise UnsupportedError(f"modifier {modifier!r} cannot be encoded")
        extra.append(_MODIFIER_CODES[modifier])
    codes = (*codes, *extra, *correction)
    vib = _chain(codes)
    if record.quantity == PLAIN_TEXT:
        text = record.unit[::-1].encode("latin-1") if record.unit.isascii() else b""
        if len(text) != len(record.unit) or not 0 < len(text) <= 0xFF:
            raise UnsupportedError("a plain-text unit must be 1 to 255 ASCII characters")
        vib = vib[:1] + bytes([len(text)]) + text + vib[1:]
    return _dib(code, record) + vib + data


def encode_records(records: Iterable[Record], *, bcd: bool = False) -> bytes:
    """Return the variable data structure holding ``records`` (the inverse of decode_records).

    A ``manufacturer_specific`` record must come last; with the ``more_records_follow``
    modifier it is written with DIF 0x1F. Raises UnsupportedError for a record that cannot
    be coded exactly.
    """
    parts: list[bytes] = []
    tail: bytes | None = None
    for record in records:
        if tail is not None:
            raise UnsupportedError("the manufacturer-specific record must be the last one")
        if record.quantity == MANUFACTURER_SPECIFIC:
            if not isinstance(record.value, bytes) or set(record.modifiers) - {MORE_RECORDS_FOLLOW}:
                raise UnsupportedError("manufacturer-specific data must be bytes")
            dif = 0x1F if MORE_RECORDS_FOLLOW in record.modifiers else 0x0F
            tail = bytes([dif]) + record.value
            continue
        parts.append(encode_record(record, bcd=bcd))
    if tail is not None:
        parts.append(tail)
    return b"".join(parts)
