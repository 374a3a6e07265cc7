"""Decode the EN 13757-3 variable data structure into records (wired and wireless alike).

A data record is a DIB (DIF plus up to ten DIFEs: data field, function, storage number,
tariff, subunit), a VIB (VIF plus VIFEs: quantity, unit, scale, modifiers) and the data.
The meaning of each VIB byte string is computed once and cached, so a meter that sends the
same layout every time costs one dict lookup per record for it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from decimal import Context, Decimal

from meterflow.errors import FrameError, UnsupportedError
from readers import vif as tables
from readers.datatypes import (
    bcd_bytes,
    bcd_value,
    encode_datetime,
    encode_type_g,
    real_value,
    time_point,
)
from readers.model import Record, Value

FUNCTIONS = ("instantaneous", "maximum", "minimum", "error")
MAX_DIFES = 10
MAX_VIFES = 10
MANUFACTURER_SPECIFIC = "manufacturer_specific"
MORE_RECORDS_FOLLOW = "more_records_follow"
PLAIN_TEXT = "plain_text"

# Fixed sizes of data field codes 0x0-0xE; 0xD (variable length) is sized by its LVAR byte.
_SIZES = (0, 1, 2, 3, 4, 4, 6, 8, 0, 1, 2, 3, 4, -1, 6)
_BCD_CODES = frozenset((0x9, 0xA, 0xB, 0xC, 0xE))
_INT_CODES = frozenset((0x1, 0x2, 0x3, 0x4, 0x6, 0x7))
_EXACT = Context(prec=200)
_CACHE_LIMIT = 4096

# quantity, unit, exponent (None: plain int), time point, modifiers
Meaning = tuple[str, str, int | None, bool, tuple[str, ...]]


def _vif_meaning(info: tables.Vif) -> Meaning:
    """Return the meaning of a VIF without VIFEs."""
    return (info.quantity, info.unit, info.exponent, info.time_point, ())


def _combine(base: tables.Vif, vifes: bytes) -> Meaning:
    """Return the meaning of ``base`` qualified by combinable ``vifes``.

    Raises UnsupportedError for VIFE codes the standard reserves.
    """
    unit, exponent, when = base.unit, base.exponent, base.time_point
    modifiers: list[str] = []
    for index, byte in enumerate(vifes):
        code = byte & 0x7F
        if code == tables.MANUFACTURER_VIFES:
            modifiers.append("manufacturer_vifes")
            modifiers.extend(f"manufacturer_vife_{b & 0x7F:02x}" for b in vifes[index + 1 :])
            break
        vife = tables.COMBINABLE.get(code)
        if vife is None:
            raise UnsupportedError(f"VIFE 0x{code:02X} is reserved in EN 13757-3")
        if vife.modifier:
            modifiers.append(vife.modifier)
        if vife.exponent and exponent is not None:
            exponent += vife.exponent
        if vife.unit is not None:
            unit, exponent = vife.unit, 0
        when = when or vife.time_point
    return (base.quantity, unit, exponent, when, tuple(modifiers))


def vib_meaning(vib: bytes) -> Meaning:
    """Return the meaning of a whole VIB (VIF and its VIFEs, plain text removed).

    Raises UnsupportedError for reserved codes, FrameError for a missing extension VIFE.
    """
    code = vib[0] & 0x7F
    rest = vib[1:]
    if code in (tables.EXTENSION_FB, tables.EXTENSION_FD):
        if not rest:
            raise FrameError(f"VIF 0x{vib[0]:02X} announces an extension table but no VIFE follows")
        table = tables.FB if code == tables.EXTENSION_FB else tables.FD
        base = table.get(rest[0] & 0x7F)
        name = "FB" if code == tables.EXTENSION_FB else "FD"
        if base is None:
            raise UnsupportedError(f"VIFE 0x{rest[0] & 0x7F:02X} of table {name} is reserved")
        rest = rest[1:]
    elif code == tables.PLAIN_TEXT:
        base = tables.Vif(PLAIN_TEXT, "", 0)
    elif code == tables.MANUFACTURER_VIFES:
        codes = tuple(f"manufacturer_vife_{b & 0x7F:02x}" for b in rest)
        return ("manufacturer_vif", "", None, False, codes)
    else:
        found = tables.PRIMARY.get(code)
        if found is None:
            raise UnsupportedError(f"VIF 0x{code:02X} is reserved in EN 13757-3")
        base = found
    return _combine(base, rest) if rest else _vif_meaning(base)


_SIMPLE: dict[int, Meaning] = {code: _vif_meaning(info) for code, info in tables.PRIMARY.items()}
_VIB_CACHE: dict[bytes, Meaning] = {}


def _cached_meaning(vib: bytes) -> Meaning:
    """Return ``vib_meaning`` from a bounded cache (bounded so hostile input cannot grow it)."""
    meaning = _VIB_CACHE.get(vib)
    if meaning is None:
        meaning = vib_meaning(vib)
        if len(_VIB_CACHE) >= _CACHE_LIMIT:
            _VIB_CACHE.clear()
        _VIB_CACHE[vib] = meaning
    return meaning


def _read_dife(data: bytes, i: int, dif: int) -> tuple[int, int, int, int]:
    """Read the DIFEs after ``dif`` at ``i``; return (next index, storage, tariff, subunit).

    Raises FrameError if the DIFEs run past the end or number more than ten.
    """
    storage, tariff, subunit = (dif >> 6) & 1, 0, 0
    n = len(data)
    for k in range(MAX_DIFES):
        if i >= n:
            raise FrameError("data record ends inside its DIFEs")
        dife = data[i]
        i += 1
        storage |= (dife & 0x0F) << (1 + 4 * k)
        tariff |= ((dife >> 4) & 0x03) << (2 * k)
        subunit |= ((dife >> 6) & 0x01) << k
        if not dife & 0x80:
            return i, storage, tariff, subunit
    raise FrameError(f"a data record has more than {MAX_DIFES} DIFEs")


def _plain_text_at(data: bytes, i: int) -> str | None:
    """Return the printable ASCII text whose length byte is at ``i``, None if there is none."""
    if i >= len(data) or i + 1 + data[i] > len(data):
        return None
    raw = data[i + 1 : i + 1 + data[i]]
    return (
        raw[::-1].decode("ascii") if raw.isascii() and raw.decode("ascii").isprintable() else None
    )


def _read_plain_vib(data: bytes, i: int) -> tuple[int, bytes, str]:
    """Read a plain-text VIB at ``i``; return (next index, VIF and VIFEs, text).

    Most meters put the text right after the VIF; EN 13757-3 puts it after the VIFEs.
    Both are accepted: text first when it fits and is printable, else VIFEs first.
    Raises FrameError if neither reading fits.
    """
    vif = data[i]
    text = _plain_text_at(data, i + 1)
    if text is not None or not vif & 0x80:
        if text is None:
            raise FrameError("plain-text VIF runs past the end of the data")
        i += 2 + len(text)
        end = _vife_end(data, i, 1) if vif & 0x80 else i
        return end, bytes([vif]) + data[i:end], text
    end = _vife_end(data, i + 1, 1)
    text = _plain_text_at(data, end)
    if text is None:
        raise FrameError("plain-text VIF has no printable text that fits the data")
    return end + 1 + len(text), data[i:end], text


def _read_vib(data: bytes, i: int) -> tuple[int, Meaning]:
    """Read a VIB at ``i`` (with plain text); return the next index and its meaning.

    Raises FrameError if the VIB runs past the end, UnsupportedError for reserved codes.
    """
    if data[i] & 0x7F == tables.PLAIN_TEXT:
        i, vib, text = _read_plain_vib(data, i)
        quantity, _, exponent, when, modifiers = _cached_meaning(vib)
        return i, (quantity, text, exponent, when, modifiers)
    end = _vife_end(data, i + 1, 1) if data[i] & 0x80 else i + 1
    return end, _cached_meaning(data[i:end])


def _vife_end(data: bytes, i: int, seen: int) -> int:
    """Return the index after the VIFE chain starting at ``i``.

    Raises FrameError if it runs past the end or holds more than ten VIFEs.
    """
    n = len(data)
    while True:
        if i >= n:
            raise FrameError("data record ends inside its VIFEs")
        seen += 1
        if seen > MAX_VIFES + 1:
            raise FrameError(f"a data record has more than {MAX_VIFES} VIFEs")
        i += 1
        if not data[i - 1] & 0x80:
            return i


def _lvar(data: bytes, i: int) -> tuple[int, int, str]:
    """Read an LVAR byte at ``i``; return (data start, data size, coding).

    Codings: ``text`` (reversed ASCII), ``bcd`` / ``-bcd`` and ``binary``.
    Raises FrameError if it is missing, UnsupportedError for reserved LVAR values.
    """
    if i >= len(data):
        raise FrameError("variable-length record ends before its LVAR byte")
    lvar = data[i]
    if lvar <= 0xBF:
        return i + 1, lvar, "text"
    if lvar <= 0xCF:
        return i + 1, (lvar - 0xC0) * 2, "bcd"
    if lvar <= 0xDF:
        return i + 1, (lvar - 0xD0) * 2, "-bcd"
    if lvar <= 0xEF:
        return i + 1, lvar - 0xE0, "binary"
    if lvar <= 0xF4:
        return i + 1, 4 * (lvar - 0xEC), "binary"
    if lvar in (0xF5, 0xF6):
        return i + 1, 48 if lvar == 0xF5 else 64, "binary"
    raise UnsupportedError(f"LVAR 0x{lvar:02X} is reserved")


def _scaled(raw: int | None, exponent: int | None) -> Value:
    """Return ``raw`` with its power of ten applied (plain int when there is no scale)."""
    if raw is None or exponent is None:
        return raw
    if exponent >= 0:
        return Decimal(raw * 10**exponent)
    return Decimal(raw).scaleb(exponent, _EXACT)


def _variable_value(chunk: bytes, coding: str, exponent: int | None) -> Value:
    """Return the value of a variable-length data field."""
    if coding == "text":
        return chunk[::-1].decode("latin-1")
    if coding == "binary":
        return _scaled(int.from_bytes(chunk, "little", signed=exponent is not None), exponent)
    raw = bcd_value(chunk)
    if raw is not None and coding == "-bcd":
        raw = -raw
    return _scaled(raw, exponent)


def _value(code: int, chunk: bytes, meaning: Meaning) -> Value:
    """Return the value of a fixed-size data field as the VIB says to read it."""
    if not chunk:
        return None
    exponent = meaning[2]
    if meaning[3] and code in (0x2, 0x3, 0x4, 0x6):
        return time_point(chunk)
    if code in _BCD_CODES:
        return _scaled(bcd_value(chunk), exponent)
    if code == 0x5:
        real = real_value(chunk)
        if real is None or exponent is None:
            return real
        return real.scaleb(exponent, _EXACT) if exponent < 0 else real * 10**exponent
    return _scaled(int.from_bytes(chunk, "little", signed=exponent is not None), exponent)


def _manufacturer_record(dif: int, rest: bytes) -> Record:
    """Return the record holding the manufacturer-specific tail after DIF 0x0F / 0x1F."""
    modifiers = (MORE_RECORDS_FOLLOW,) if dif == 0x1F else ()
    return Record(MANUFACTURER_SPECIFIC, "", rest, modifiers=modifiers)


def decode_records(data: bytes) -> tuple[Record, ...]:
    """Return the records of a variable data structure (the bytes after the data header).

    Raises FrameError if a record is truncated or malformed, UnsupportedError for codes
    the standard reserves.
    """
    records: list[Record] = []
    append = records.append
    n = len(data)
    i = 0
    while i < n:
        dif = data[i]
        i += 1
        code = dif & 0x0F
        if code == 0x0F:
            if dif == 0x2F:
                continue
            if dif in (0x0F, 0x1F):
                append(_manufacturer_record(dif, data[i:]))
                break
            raise UnsupportedError(f"DIF 0x{dif:02X} is reserved or a readout request")
        if dif & 0x80:
            i, storage, tariff, subunit = _read_dife(data, i, dif)
        else:
            storage, tariff, subunit = (dif >> 6) & 1, 0, 0
        if i >= n:
            raise FrameError("data record ends before its VIF")
        vif = data[i]
        if vif < 0x7B:
            meaning = _SIMPLE.get(vif)
            if meaning is None:
                raise UnsupportedError(f"VIF 0x{vif:02X} is reserved in EN 13757-3")
            i += 1
        else:
            i, meaning = _read_vib(data, i)
        size = _SIZES[code]
        if size < 0:
            i, size, coding = _lvar(data, i)
            if i + size > n:
                raise FrameError("variable-length data runs past the end of the record")
            value = _variable_value(data[i : i + size], coding, meaning[2])
        else:
            if i + size > n:
                raise FrameError(f"data of DIF 0x{dif:02X} runs past the end of the record")
            exponent = meaning[2]
            if code in _INT_CODES and not meaning[3]:
                if exponent is None:
                    value = int.from_bytes(data[i : i + size], "little")
                else:
                    raw = int.from_bytes(data[i : i + size], "little", signed=True)
                    value = (
                        _EXACT.scaleb(Decimal(raw), exponent)
                        if exponent < 0
                        else Decimal(raw * 10**exponent)
                    )
            else:
                value = _value(code, data[i : i + size], meaning)
        i += size
        modifiers = meaning[4]
        if value is None and size:
            modifiers = (*modifiers, "invalid")
        function = FUNCTIONS[(dif >> 4) & 0x03]
        append(Record(meaning[0], meaning[1], value, storage, tariff, subunit, function, modifiers))
    return tuple(records)


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
