"""An M-Bus master (EN 13757-2/-3) over a pyserial URL: reads meters, scans secondary addresses.

The line is opened with ``serial.serial_for_url``, so ``/dev/ttyUSB0``, ``socket://host:port``
and ``rfc2217://host:port`` all work (2400 baud 8E1 by default; settings are ignored by
network URLs). A slave must start answering within 330 bit times + 50 ms; network URLs get
``NETWORK_MARGIN_S`` on top for the round trip. A request without a valid answer is sent
again (same frame count bit, so the slave repeats its last telegram) up to ``retries`` times.
Frames go out as bytes and come back as bytes: framing and decoding are ``readers.mbus``.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from typing import Any

import serial

from meterflow.errors import ChecksumError, DecodeError, FrameError, TransportError
from readers.header import parse_long_header
from readers.mbus import (
    ACK,
    ADDRESS_SELECTED,
    CI_LONG_HEADER,
    RSP_UD_CONTROLS,
    START_LONG,
    START_SHORT,
    Ack,
    Frame,
    LongFrame,
    SecondarySelection,
    decode_mbus,
    encode_req_ud2,
    encode_select_secondary,
    encode_snd_nke,
    more_records_follow,
    parse_frame,
)
from readers.model import Header

log = logging.getLogger(__name__)

BITS_PER_CHAR = 11  # start, 8 data, even parity, stop
ANSWER_BITS = 330
ANSWER_SLACK_S = 0.05
NETWORK_MARGIN_S = 0.2
MAX_PRIMARY = 250
DIGITS = "0123456789"
WILDCARD_ID = "FFFFFFFF"


@dataclasses.dataclass(slots=True)
class MasterStats:
    """Counters of one master's line: what was asked and what went wrong."""

    requests: int = 0
    no_answer: int = 0
    bad_frames: int = 0
    retries: int = 0
    collisions: int = 0
    telegrams: int = 0


class _Collision:
    """Marks a probe answered by several slaves at once."""


COLLISION = _Collision()
Probe = Header | _Collision | None


def answer_timeout(baudrate: int, network: bool) -> float:
    """Return how long a slave may take to start its answer, in seconds."""
    margin = NETWORK_MARGIN_S if network else 0.0
    return ANSWER_BITS / baudrate + ANSWER_SLACK_S + margin


class MbusMaster:
    """The master of one M-Bus line; one request at a time, safe to share between threads."""

    def __init__(
        self,
        url: str,
        *,
        baudrate: int = 2400,
        answer_timeout_s: float | None = None,
        retries: int = 2,
        max_telegrams: int = 16,
    ) -> None:
        """Open the line at ``url``.

        Raises TransportError if the port cannot be opened.
        """
        self.url = url
        self.baudrate = baudrate
        self.network = "://" in url
        self.answer_timeout_s = answer_timeout_s or answer_timeout(baudrate, self.network)
        self.retries = retries
        self.max_telegrams = max_telegrams
        self.stats = MasterStats()
        self._lock = threading.RLock()
        try:
            self._port: Any = serial.serial_for_url(
                url,
                baudrate=baudrate,
                bytesize=serial.EIGHTBITS,
                parity=serial.PARITY_EVEN,
                stopbits=serial.STOPBITS_ONE,
                timeout=self.answer_timeout_s,
            )
        except (serial.SerialException, OSError, ValueError) as exc:
            raise TransportError(f"cannot open M-Bus line {url}: {exc}") from exc

    def close(self) -> None:
        """Close the line."""
        with self._lock:
            self._port.close()

    def __enter__(self) -> MbusMaster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read_primary(self, address: int) -> list[bytes]:
        """Return the raw RSP_UD telegrams of the slave at primary ``address`` (0-250).

        Raises TransportError if the slave gives no valid answer after the retries.
        """
        if not 0 <= address <= MAX_PRIMARY:
            raise TransportError(f"primary address {address} is outside 0-{MAX_PRIMARY}")
        with self._lock:
            self._expect_ack(encode_snd_nke(address), f"SND_NKE to {address}")
            return self._read_telegrams(address)

    def read_secondary(self, selection: SecondarySelection) -> list[bytes]:
        """Select the slave of ``selection`` (CI 0x52), then read it at address 0xFD.

        The slave is deselected afterwards (SND_NKE to 0xFD), so the next selection starts
        a fresh link and the first REQ_UD2 is never taken for a repetition.
        Raises TransportError if no slave acknowledges the selection or gives valid data.
        """
        with self._lock:
            try:
                self._expect_ack(
                    encode_select_secondary(selection), f"select {selection.id_pattern}"
                )
                return self._read_telegrams(ADDRESS_SELECTED)
            finally:
                self._deselect()

    def scan_secondary(self) -> list[Header]:
        """Find every slave by the recursive wildcard search over the 8 id digits.

        A probe selects a mask (known digits, then F wildcards) and reads the selected slave:
        silence means nobody matches, a valid answer one slave, a garbled answer several, in
        which case the next digit is searched. Raises TransportError if the line fails.
        """
        with self._lock:
            self._deselect()
            found: list[Header] = []
            root = self._probe(WILDCARD_ID)
            if isinstance(root, Header):
                found.append(root)
            elif root is COLLISION:
                self._scan(WILDCARD_ID, 0, found)
            self._deselect()
        log.info("secondary scan of %s found %d meters", self.url, len(found))
        return found

    def _scan(self, mask: str, position: int, found: list[Header]) -> None:
        for digit in DIGITS:
            narrower = mask[:position] + digit + mask[position + 1 :]
            result = self._probe(narrower)
            if isinstance(result, Header):
                found.append(result)
            elif result is COLLISION and position < len(mask) - 1:
                self._scan(narrower, position + 1, found)
            elif result is COLLISION:
                log.warning("meters share id %s; select them by manufacturer too", narrower)

    def _probe(self, mask: str) -> Probe:
        try:
            answer = self._exchange(encode_select_secondary(SecondarySelection(mask)))
            if answer is None:
                return None
            if not isinstance(parse_frame(answer), Ack):
                raise FrameError("selection answered by something other than E5")
            data = self._exchange(encode_req_ud2(ADDRESS_SELECTED, fcb=True))
            if data is None:
                log.warning("a slave acknowledged mask %s but sent no data", mask)
                return None
            frame = parse_frame(data)
            if not isinstance(frame, LongFrame) or frame.ci != CI_LONG_HEADER:
                raise FrameError("a probe answer must be an RSP_UD with CI 0x72")
            header, _ = parse_long_header(frame.data)
            return header
        except (FrameError, ChecksumError):
            self.stats.collisions += 1
            return COLLISION

    def _deselect(self) -> None:
        try:
            self._exchange(encode_snd_nke(ADDRESS_SELECTED))
        except FrameError:
            log.debug("several selected slaves acknowledged the deselection at once")

    def _read_telegrams(self, address: int) -> list[bytes]:
        telegrams: list[bytes] = []
        fcb = True
        for _ in range(self.max_telegrams):
            raw = self._request_rsp_ud(encode_req_ud2(address, fcb), address)
            telegrams.append(raw)
            self.stats.telegrams += 1
            fcb = not fcb
            if not _more_follow(raw):
                break
        return telegrams

    def _request_rsp_ud(self, request: bytes, address: int) -> bytes:
        def is_rsp_ud(frame: Frame) -> bool:
            return isinstance(frame, LongFrame) and frame.c in RSP_UD_CONTROLS

        return self._request(request, is_rsp_ud, f"REQ_UD2 to {address}")

    def _expect_ack(self, request: bytes, what: str) -> None:
        self._request(request, lambda frame: isinstance(frame, Ack), what)

    def _request(self, request: bytes, accept: Callable[[Frame], bool], what: str) -> bytes:
        problem = "no answer"
        for attempt in range(self.retries + 1):
            if attempt:
                self.stats.retries += 1
            try:
                raw = self._exchange(request)
                if raw is None:
                    self.stats.no_answer += 1
                    problem = "no answer"
                    continue
                if accept(parse_frame(raw)):
                    return raw
                problem = f"unexpected answer {raw[:8].hex()}"
            except (FrameError, ChecksumError) as exc:
                problem = str(exc)
            self.stats.bad_frames += 1
        raise TransportError(f"{what} on {self.url}: {problem} after {self.retries + 1} tries")

    def _exchange(self, request: bytes) -> bytes | None:
        """Send ``request`` and return the answer frame's bytes, or None for silence.

        Raises FrameError if the answer is garbled, TransportError if the line fails.
        """
        self.stats.requests += 1
        try:
            self._port.reset_input_buffer()
            self._port.write(request)
            self._port.flush()
            return self._read_answer()
        except (serial.SerialException, OSError) as exc:
            raise TransportError(f"M-Bus line {self.url} failed: {exc}") from exc

    def _read_answer(self) -> bytes | None:
        self._port.timeout = self.answer_timeout_s
        first = self._port.read(1)
        if not first:
            return None
        if first[0] == ACK:
            raw = bytes(first)
        elif first[0] == START_SHORT:
            raw = bytes(first) + self._read_exactly(4)
        elif first[0] == START_LONG:
            head = self._read_exactly(3)
            if head[0] != head[1] or head[2] != START_LONG:
                self._drain()
                raise FrameError(f"garbled long frame start {first.hex()}{head.hex()}")
            raw = bytes(first) + head + self._read_exactly(head[0] + 2)
        else:
            self._drain()
            raise FrameError(f"garbled answer starting 0x{first[0]:02X}")
        if self._drain():
            raise FrameError("bytes after the answer: several slaves answered")
        return raw

    def _read_exactly(self, count: int) -> bytes:
        self._port.timeout = self._char_time(count + 2)
        data = bytes(self._port.read(count))
        if len(data) < count:
            raise FrameError(f"answer cut short: {len(data)} of {count} bytes")
        return data

    def _drain(self) -> bool:
        """Read whatever still arrives within two character times; return True if any."""
        self._port.timeout = self._char_time(2)
        seen = False
        while self._port.read(256):
            seen = True
        return seen

    def _char_time(self, count: int) -> float:
        margin = NETWORK_MARGIN_S / 4 if self.network else ANSWER_SLACK_S
        return count * BITS_PER_CHAR / self.baudrate + margin


def _more_follow(raw: bytes) -> bool:
    try:
        return more_records_follow(decode_mbus(raw))
    except DecodeError as exc:
        log.warning("cannot decode a telegram to look for more records: %s", exc)
        return False
