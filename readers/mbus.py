"""Wired M-Bus frames (EN 13757-2): parse and build, and decode RSP_UD telegrams.

Four frame types: the single character ACK (E5), the short frame (10 C A CS 16), the
control frame (68 03 03 68 C A CI CS 16) and the long frame (68 L L 68 C A CI data CS 16).
The checksum is the byte sum of C, A, CI and data.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from meterflow.errors import ChecksumError, FrameError, UnsupportedError
from readers.datarecords import (
    MANUFACTURER_SPECIFIC,
    MORE_RECORDS_FOLLOW,
    Layout,
    decode_layout,
    encode_records,
)
from readers.fixed import NO_MANUFACTURER, decode_fixed
from readers.header import (
    LONG_HEADER_LEN,
    SHORT_HEADER_LEN,
    encode_long_header,
    long_header_identity,
    manufacturer_code,
    manufacturer_number,
    parse_short_header,
)
from readers.model import Header, Record, Telegram

ACK = 0xE5
START_SHORT = 0x10
START_LONG = 0x68
STOP = 0x16

SND_NKE = 0x40
REQ_UD2 = 0x5B
REQ_UD1 = 0x5A
SND_UD = 0x53
RSP_UD = 0x08
FCB = 0x20
FCV = 0x10

ADDRESS_SELECTED = 0xFD
ADDRESS_BROADCAST = 0xFF

CI_APPLICATION_RESET = 0x50
CI_SELECT_SECONDARY = 0x52
CI_LONG_HEADER = 0x72
CI_LONG_HEADER_MSB = 0x76
CI_SHORT_HEADER = 0x7A
CI_FIXED = 0x73
CI_FIXED_MSB = 0x77
RSP_UD_CONTROLS = frozenset((0x08, 0x18, 0x28, 0x38))


@dataclasses.dataclass(frozen=True, slots=True)
class Ack:
    """The single character E5: a slave's acknowledgement."""


@dataclasses.dataclass(frozen=True, slots=True)
class ShortFrame:
    """A short frame: control field and address (SND_NKE, REQ_UD2...)."""

    c: int
    a: int


@dataclasses.dataclass(frozen=True, slots=True)
class ControlFrame:
    """A control frame: a long frame without data (e.g. application reset, CI 0x50)."""

    c: int
    a: int
    ci: int


@dataclasses.dataclass(frozen=True, slots=True)
class LongFrame:
    """A long frame: control field, address, CI field and user data."""

    c: int
    a: int
    ci: int
    data: bytes


Frame = Ack | ShortFrame | ControlFrame | LongFrame


def checksum(body: bytes) -> int:
    """Return the M-Bus checksum (byte sum modulo 256) of C, A, CI and data."""
    return sum(body) & 0xFF


def _parse_short(raw: bytes) -> ShortFrame:
    """Return the short frame in ``raw`` (exactly 5 bytes).

    Raises FrameError for a wrong length or stop byte, ChecksumError for a bad checksum.
    """
    if len(raw) != 5 or raw[4] != STOP:
        raise FrameError("a short frame is 5 bytes: 10 C A CS 16")
    if checksum(raw[1:3]) != raw[3]:
        raise ChecksumError(
            f"short frame checksum 0x{raw[3]:02X}, computed 0x{checksum(raw[1:3]):02X}"
        )
    return ShortFrame(raw[1], raw[2])


def _parse_long(raw: bytes) -> ControlFrame | LongFrame:
    """Return the control or long frame in ``raw``.

    Raises FrameError for a broken start, length or stop byte, ChecksumError for a bad sum.
    """
    if len(raw) < 9 or raw[3] != START_LONG:
        raise FrameError("a long frame starts 68 L L 68 and is at least 9 bytes")
    length = raw[1]
    if raw[2] != length:
        raise FrameError(f"the two length fields differ: 0x{raw[1]:02X} and 0x{raw[2]:02X}")
    if length < 3 or len(raw) != length + 6:
        raise FrameError(f"length field {length} does not match a frame of {len(raw)} bytes")
    if raw[-1] != STOP:
        raise FrameError(f"a frame ends with stop byte 16, not {raw[-1]:02X}")
    body = raw[4:-2]
    if checksum(body) != raw[-2]:
        raise ChecksumError(f"long frame checksum 0x{raw[-2]:02X}, computed 0x{checksum(body):02X}")
    if length == 3:
        return ControlFrame(body[0], body[1], body[2])
    return LongFrame(body[0], body[1], body[2], bytes(body[3:]))


def parse_frame(raw: bytes) -> Frame:
    """Return the frame in ``raw`` (exactly one frame, nothing after it).

    Raises FrameError for a broken structure, ChecksumError for a bad checksum.
    """
    if not raw:
        raise FrameError("an empty buffer holds no M-Bus frame")
    start = raw[0]
    if start == ACK:
        if len(raw) != 1:
            raise FrameError("the single character E5 stands alone")
        return Ack()
    if start == START_SHORT:
        return _parse_short(raw)
    if start == START_LONG:
        return _parse_long(raw)
    raise FrameError(f"0x{start:02X} is not an M-Bus start byte (E5, 10 or 68)")


def _primary_header(address: int, data: bytes) -> Header:
    """Return the header of a short-header telegram: no secondary address, so the id is
    the primary address as 8 decimal digits and the manufacturer the null code."""
    short = parse_short_header(data)
    return Header(NO_MANUFACTURER, f"{address:08d}", 0, 0, short.access_no, short.status)


def decode_frame(frame: LongFrame) -> Telegram:
    """Return the telegram of an RSP_UD long frame.

    Raises UnsupportedError for CI fields other than 0x72, 0x7A, 0x73 and 0x77 (0x76 too),
    FrameError or UnsupportedError from the data records.
    """
    return _decode_long(frame)[0]


def _decode_long(frame: LongFrame) -> tuple[Telegram, Layout | None]:
    """Return the telegram of an RSP_UD long frame and its record layout (None if fixed).

    Raises what ``decode_frame`` raises.
    """
    ci, data = frame.ci, frame.data
    if ci == CI_LONG_HEADER:
        header = long_header_identity(data)
        records, layout = decode_layout(data[LONG_HEADER_LEN:])
        return Telegram("mbus", header, records), layout
    if ci == CI_SHORT_HEADER:
        header = _primary_header(frame.a, data)
        records, layout = decode_layout(data[SHORT_HEADER_LEN:])
        return Telegram("mbus", header, records), layout
    if ci in (CI_FIXED, CI_FIXED_MSB):
        return decode_fixed(data, msb_first=ci == CI_FIXED_MSB), None
    if ci == CI_LONG_HEADER_MSB:
        raise UnsupportedError(
            "CI 0x76 (variable data, multi-byte fields MSB first) is not supported"
        )
    raise UnsupportedError(f"CI 0x{ci:02X} is not an M-Bus response this codec decodes")


def decode_mbus(raw: bytes) -> Telegram:
    """Return the telegram of a wired RSP_UD long frame.

    Raises FrameError or ChecksumError for a broken frame, FrameError if it is not a long
    frame, UnsupportedError for CI fields or codes this codec does not handle.
    """
    return decode_mbus_layout(raw)[0]


def decode_mbus_layout(raw: bytes) -> tuple[Telegram, Layout | None]:
    """Return ``decode_mbus`` of ``raw`` and the layout of its records (None if fixed).

    Raises what ``decode_mbus`` raises.
    """
    frame = parse_frame(raw)
    if not isinstance(frame, LongFrame):
        raise FrameError(f"a {type(frame).__name__} carries no telegram; RSP_UD is a long frame")
    return _decode_long(frame)


def more_records_follow(telegram: Telegram) -> bool:
    """Return True if the slave announced another telegram (DIF 0x1F)."""
    return any(
        r.quantity == MANUFACTURER_SPECIFIC and MORE_RECORDS_FOLLOW in r.modifiers
        for r in telegram.records[-1:]
    )


def encode_short(c: int, a: int) -> bytes:
    """Return the short frame 10 C A CS 16."""
    return bytes([START_SHORT, c, a, (c + a) & 0xFF, STOP])


def encode_control(c: int, a: int, ci: int) -> bytes:
    """Return the control frame 68 03 03 68 C A CI CS 16."""
    return bytes([START_LONG, 3, 3, START_LONG, c, a, ci, (c + a + ci) & 0xFF, STOP])


def encode_long(c: int, a: int, ci: int, data: bytes) -> bytes:
    """Return the long frame 68 L L 68 C A CI data CS 16.

    Raises FrameError if the data is longer than the 252 bytes a frame can carry.
    """
    length = len(data) + 3
    if length > 0xFF:
        raise FrameError(f"a long frame carries at most 252 data bytes, got {len(data)}")
    body = bytes([c, a, ci]) + data
    return bytes([START_LONG, length, length, START_LONG]) + body + bytes([checksum(body), STOP])


def encode_snd_nke(a: int) -> bytes:
    """Return SND_NKE (link reset) to primary address ``a``."""
    return encode_short(SND_NKE, a)


def encode_req_ud2(a: int, fcb: bool = False) -> bytes:
    """Return REQ_UD2 (request class 2 data) to ``a`` with the frame count bit ``fcb``."""
    return encode_short(REQ_UD2 | (FCB if fcb else 0), a)


def encode_application_reset(a: int, subcode: int | None = None, fcb: bool = False) -> bytes:
    """Return SND_UD with CI 0x50 (application reset), with an optional subcode byte."""
    c = SND_UD | (FCB if fcb else 0)
    if subcode is None:
        return encode_control(c, a, CI_APPLICATION_RESET)
    return encode_long(c, a, CI_APPLICATION_RESET, bytes([subcode & 0xFF]))


def encode_rsp_ud(
    header: Header,
    records: Iterable[Record],
    address: int = 0,
    *,
    configuration: int = 0,
    more_records_follow: bool = False,
    c: int = RSP_UD,
    bcd: bool = False,
) -> bytes:
    """Return an RSP_UD long frame with CI 0x72: the long header of ``header`` and records.

    ``more_records_follow`` appends DIF 0x1F, announcing another telegram.
    Raises UnsupportedError if a record cannot be coded, FrameError if it is too long.
    """
    items = list(records)
    if more_records_follow:
        last = items[-1] if items else None
        if last is not None and last.quantity == MANUFACTURER_SPECIFIC:
            items[-1] = last._replace(modifiers=(MORE_RECORDS_FOLLOW,))
        else:
            items.append(Record(MANUFACTURER_SPECIFIC, "", b"", modifiers=(MORE_RECORDS_FOLLOW,)))
    data = encode_long_header(header, configuration) + encode_records(items, bcd=bcd)
    return encode_long(c, address, CI_LONG_HEADER, data)


@dataclasses.dataclass(frozen=True, slots=True)
class SecondarySelection:
    """A select-secondary-address request; ``None`` fields and F digits are wildcards."""

    id_pattern: str
    manufacturer: str | None = None
    version: int | None = None
    medium: int | None = None

    def matches(self, header: Header) -> bool:
        """Return True if the meter of ``header`` is selected by this request."""
        digits = zip(self.id_pattern.upper(), header.id, strict=True)
        return (
            all(p in ("F", d) for p, d in digits)
            and self.manufacturer in (None, header.manufacturer)
            and self.version in (None, header.version)
            and self.medium in (None, header.device_type)
        )


def encode_select_secondary(selection: SecondarySelection, fcb: bool = False) -> bytes:
    """Return SND_UD to address 0xFD with CI 0x52 selecting ``selection``.

    Raises FrameError if the id pattern is not 8 characters of digits and F wildcards.
    """
    pattern = selection.id_pattern.upper()
    if len(pattern) != 8 or any(ch not in "0123456789F" for ch in pattern):
        raise FrameError(f"id pattern {selection.id_pattern!r} must be 8 digits or F wildcards")
    maker = (
        0xFFFF if selection.manufacturer is None else manufacturer_number(selection.manufacturer)
    )
    data = (
        bytes.fromhex(pattern)[::-1]
        + maker.to_bytes(2, "little")
        + bytes([0xFF if selection.version is None else selection.version])
        + bytes([0xFF if selection.medium is None else selection.medium])
    )
    return encode_long(SND_UD | (FCB if fcb else 0), ADDRESS_SELECTED, CI_SELECT_SECONDARY, data)


def parse_select_secondary(frame: LongFrame) -> SecondarySelection:
    """Return the selection a CI 0x52 frame asks for.

    Raises FrameError if the frame is not an 8-byte secondary selection.
    """
    data = frame.data
    if frame.ci != CI_SELECT_SECONDARY or len(data) != 8:
        raise FrameError("a secondary selection is CI 0x52 with 8 data bytes")
    pattern = data[3::-1].hex().upper()
    if any(ch not in "0123456789F" for ch in pattern):
        raise FrameError(f"id pattern {pattern} holds nibbles other than digits and F")
    maker = int.from_bytes(data[4:6], "little")
    return SecondarySelection(
        pattern,
        None if maker == 0xFFFF else manufacturer_code(maker),
        None if data[6] == 0xFF else data[6],
        None if data[7] == 0xFF else data[7],
    )
