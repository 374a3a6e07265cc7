"""The radio collector's inputs: telegrams from hex lines, rtl_wmbus output and serial streams.

Each input yields ``RawFrame`` values (the telegram bytes as received, a receive time and,
when the source gives it in dBm, the RSSI) for a ``FramePublisher`` of kind ``wmbus``. A line
or chunk that cannot be read is logged, counted and skipped: a bad reception never stops the
collector.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime

import serial

from meterflow.errors import CrcError, DecodeError, FrameError, TransportError
from readers.wmbus_link import format_a_length
from schemas.envelope import RawFrame

log = logging.getLogger(__name__)

MIN_L_FIELD = 10  # C, M (2), A (6) and a CI field
Clock = Callable[[], datetime]
Sink = Callable[[Sequence[RawFrame]], None]
LineParser = Callable[[str, datetime], tuple[RawFrame, ...]]

_HEX_LINE = re.compile(
    r"""\s*
    (?:(?P<time>\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:?\d\d)?)[\s;,]+)?
    (?:0x)?(?P<hex>[0-9A-Fa-f]+)
    (?:[\s;,]+(?P<rssi>-?\d{1,3})(?:\s*dBm)?)?
    \s*""",
    re.VERBOSE,
)
_RTL_MODES = ("T1", "C1", "S1")
_RTL_TIME = "%Y-%m-%d %H:%M:%S.%f"


@dataclasses.dataclass(slots=True)
class InputStats:
    """What an input produced: frames passed on and lines or bytes skipped as unreadable."""

    frames: int = 0
    skipped: int = 0


def utc_now() -> datetime:
    """Return the current time, timezone-aware UTC."""
    return datetime.now(UTC)


def check_telegram(data: bytes) -> bytes:
    """Return ``data`` if its length agrees with its L field, with or without format A CRCs.

    Raises FrameError if the telegram is too short or its length contradicts the L field.
    """
    if len(data) < MIN_L_FIELD + 1:
        raise FrameError(f"telegram of {len(data)} bytes is too short for a link header")
    l_field = data[0]
    if l_field < MIN_L_FIELD or len(data) not in (l_field + 1, format_a_length(l_field)):
        raise FrameError(
            f"telegram of {len(data)} bytes does not match its L field 0x{l_field:02X} "
            f"(want {l_field + 1} without CRCs or {format_a_length(l_field)} with)"
        )
    return data


def parse_hex_line(line: str, now: datetime) -> tuple[RawFrame, ...]:
    """Parse ``[TIME] HEX [RSSI]`` (separated by spaces, ``;`` or ``,``); blank and ``#`` lines
    give nothing. A time without a zone is UTC; without a time the frame gets ``now``.

    Raises DecodeError if the line is not of that form or the telegram is malformed.
    """
    text = line.strip()
    if not text or text.startswith("#"):
        return ()
    match = _HEX_LINE.fullmatch(text)
    if match is None:
        raise FrameError(f"not a hex telegram line: {_excerpt(text)}")
    digits = match["hex"]
    if len(digits) % 2:
        raise FrameError(f"odd number of hex digits ({len(digits)})")
    data = check_telegram(bytes.fromhex(digits))
    received_at = _parse_time(match["time"]) if match["time"] else now
    rssi = int(match["rssi"]) if match["rssi"] else None
    if rssi is not None and not -200 <= rssi <= 50:
        raise FrameError(f"RSSI {rssi} dBm is out of range (-200 to 50)")
    return (RawFrame(received_at, data, rssi),)


def parse_rtlwmbus_line(line: str, now: datetime) -> tuple[RawFrame, ...]:
    """Parse a line of rtl_wmbus:
    ``MODE;CRC_OK;3OUTOF6OK;TIME;PACKET_RSSI;CURRENT_RSSI;ID;0xTELEGRAM[;0xTELEGRAM]``.

    rtl_wmbus strips the CRCs and prints the time in UTC; its RSSI is a raw signal level,
    not dBm, so the frames carry none. Blank lines give nothing. Raises CrcError if rtl_wmbus
    flagged a CRC or 3-out-of-6 error and DecodeError if the line is malformed.
    """
    text = line.strip()
    if not text:
        return ()
    fields = text.split(";")
    if len(fields) < 8 or fields[0] not in _RTL_MODES:
        raise FrameError(f"not an rtl_wmbus line: {_excerpt(text)}")
    if fields[1] != "1":
        raise CrcError(f"rtl_wmbus reported a CRC error for meter {fields[6]}")
    if fields[2] != "1":
        raise CrcError(f"rtl_wmbus reported a 3-out-of-6 coding error for meter {fields[6]}")
    try:
        received_at = datetime.strptime(fields[3], _RTL_TIME).replace(tzinfo=UTC)
    except ValueError:
        raise FrameError(f"rtl_wmbus time {fields[3]!r} is not YYYY-MM-DD HH:MM:SS.fff") from None
    frames = []
    for field in fields[7:]:
        if not field.startswith("0x"):
            raise FrameError(f"rtl_wmbus telegram {_excerpt(field)} does not start with 0x")
        try:
            data = bytes.fromhex(field[2:])
        except ValueError:
            raise FrameError(f"rtl_wmbus telegram {_excerpt(field)} is not hex") from None
        frames.append(RawFrame(received_at, check_telegram(data)))
    return tuple(frames)


LINE_PARSERS: dict[str, LineParser] = {"hex": parse_hex_line, "rtlwmbus": parse_rtlwmbus_line}


def _parse_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace(" ", "T", 1))
    except ValueError:
        raise FrameError(f"time {text!r} is not ISO 8601") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _excerpt(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def collect_lines(
    lines: Iterable[str],
    parser: LineParser,
    sink: Sink,
    *,
    clock: Clock = utc_now,
    batch_size: int = 50,
    stats: InputStats | None = None,
) -> InputStats:
    """Parse every line and pass the frames to ``sink`` in batches; return the counts.

    A line that cannot be parsed is logged with its number and reason, then skipped.
    Counts go to ``stats`` when given (so they survive an interruption).
    """
    stats = InputStats() if stats is None else stats
    batch: list[RawFrame] = []
    for number, line in enumerate(lines, start=1):
        try:
            frames = parser(line, clock())
        except DecodeError as exc:
            stats.skipped += 1
            log.warning("line %d skipped: %s", number, exc)
            continue
        batch.extend(frames)
        stats.frames += len(frames)
        if len(batch) >= batch_size:
            sink(batch)
            batch = []
    if batch:
        sink(batch)
    return stats


class LFieldFramer:
    """Cuts a raw byte stream of telegrams, each starting with its L field, into telegrams.

    With ``crc`` the stream carries format A CRC blocks (as received on air); without, the
    dongle stripped them. An impossible L field is skipped byte by byte to find the next start.
    """

    def __init__(self, *, crc: bool = False) -> None:
        self.crc = crc
        self.skipped_bytes = 0
        self._buffer = bytearray()

    def _length(self, l_field: int) -> int:
        return format_a_length(l_field) if self.crc else l_field + 1

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return the telegrams that are now complete."""
        self._buffer += data
        telegrams = []
        while self._buffer:
            l_field = self._buffer[0]
            if l_field < MIN_L_FIELD:
                del self._buffer[0]
                self.skipped_bytes += 1
                continue
            length = self._length(l_field)
            if len(self._buffer) < length:
                break
            telegrams.append(bytes(self._buffer[:length]))
            del self._buffer[:length]
        return telegrams


def open_serial(url: str, baudrate: int = 57600, timeout: float = 0.2) -> serial.Serial:
    """Open a pyserial URL (``/dev/ttyUSB0``, ``socket://host:port``, ``rfc2217://``, ``loop://``).

    Raises TransportError if the port cannot be opened.
    """
    try:
        return serial.serial_for_url(url, baudrate=baudrate, timeout=timeout)
    except (serial.SerialException, ValueError) as exc:
        raise TransportError(f"cannot open serial port {url}: {exc}") from exc


def collect_serial(
    port: serial.Serial,
    framer: LFieldFramer,
    sink: Sink,
    stop: threading.Event,
    *,
    clock: Clock = utc_now,
    stats: InputStats | None = None,
) -> InputStats:
    """Read ``port`` until ``stop`` is set, passing each complete telegram to ``sink``.

    Counts go to ``stats`` when given. Raises TransportError if the port fails.
    """
    stats = InputStats() if stats is None else stats
    while not stop.is_set():
        try:
            chunk = port.read(max(1, port.in_waiting))
        except (serial.SerialException, OSError) as exc:
            raise TransportError(f"serial port {port.name} failed: {exc}") from exc
        if not chunk:
            continue
        now = clock()
        frames = [RawFrame(now, telegram) for telegram in framer.feed(chunk)]
        stats.skipped = framer.skipped_bytes
        if frames:
            stats.frames += len(frames)
            sink(frames)
    return stats
