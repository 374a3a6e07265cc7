"""Read the DIB (DIF and DIFEs) and the VIB (VIF and VIFEs) of an EN 13757-3 data record.

The DIB says how the data is coded and which storage number, tariff, subunit and function
the value has; the VIB says what the value means (``Meaning``). ``readers.datarecords``
compiles both into a cached record shape, so this slower, fully checked reading runs once
per distinct record header.
"""

from __future__ import annotations

import functools

from meterflow.errors import FrameError, UnsupportedError
from readers import vif as tables

FUNCTIONS = ("instantaneous", "maximum", "minimum", "error")
MAX_DIFES = 10
MAX_VIFES = 10
PLAIN_TEXT = "plain_text"
MANUFACTURER_SPECIFIC = "manufacturer_specific"
MORE_RECORDS_FOLLOW = "more_records_follow"
COMPACT_PROFILES = frozenset(
    ("reverse_compact_profile", "compact_profile_with_registers", "compact_profile")
)

# quantity, unit, exponent (None: plain int), time point, modifiers
Meaning = tuple[str, str, int | None, bool, tuple[str, ...]]


def _vif_meaning(info: tables.Vif) -> Meaning:
    """Return the meaning of a VIF without VIFEs."""
    return (info.quantity, info.unit, info.exponent, info.time_point, ())


def _combine(base: tables.Vif, vifes: bytes) -> Meaning:
    """Return the meaning of ``base`` qualified by combinable ``vifes``.

    A VIFE 0x7F / 0xFF makes every later VIFE manufacturer-specific.
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

    After the manufacturer-specific VIF 0x7F / 0xFF every VIFE is manufacturer-specific
    (EN 13757-3), so none is read from the standard tables.
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


def read_difes(data: bytes, i: int, dif: int) -> tuple[int, int, int, int]:
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
        end = vife_end(data, i, 1) if vif & 0x80 else i
        return end, bytes([vif]) + data[i:end], text
    end = vife_end(data, i + 1, 1)
    text = _plain_text_at(data, end)
    if text is None:
        raise FrameError("plain-text VIF has no printable text that fits the data")
    return end + 1 + len(text), data[i:end], text


def read_vib(data: bytes, i: int) -> tuple[int, Meaning, bool]:
    """Read a VIB at ``i``; return the next index, its meaning and whether it held text.

    A plain-text VIB's unit is its text. Raises FrameError if the VIB runs past the end,
    UnsupportedError for reserved codes.
    """
    if i >= len(data):
        raise FrameError("data record ends before its VIF")
    if data[i] & 0x7F == tables.PLAIN_TEXT:
        i, vib, text = _read_plain_vib(data, i)
        quantity, _, exponent, when, modifiers = _cached_meaning(vib)
        return i, (quantity, text, exponent, when, modifiers), True
    end = vife_end(data, i + 1, 1) if data[i] & 0x80 else i + 1
    return end, _cached_meaning(data[i:end]), False


@functools.lru_cache(maxsize=4096)
def _cached_meaning(vib: bytes) -> Meaning:
    """Return ``vib_meaning(vib)``, cached (plain-text records are decoded without shapes)."""
    return vib_meaning(vib)


def vife_end(data: bytes, i: int, seen: int) -> int:
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


def read_lvar(data: bytes, i: int) -> tuple[int, int, str]:
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
