"""A virtual wired M-Bus served on TCP: several slaves answering a real master.

Each slave has a primary address, a secondary address (the id, manufacturer, version and
medium of its header) and a ``records_for`` callable giving its current data records. Slaves
answer SND_NKE with E5 and REQ_UD2 with RSP_UD (CI 0x72), split into several telegrams
(DIF 0x1F) when ``records_per_telegram`` is set. The frame count bit works as on a real line:
a REQ_UD2 with the same FCB as the last one repeats the last answer, a toggled FCB gets the
next telegram. Secondary selection (CI 0x52 to address 0xFD) honours F wildcards; when
several slaves answer at once their bytes are combined as on the wire (a space wins, so the
bus carries the bitwise AND), which garbles every answer that differs. Faults can be
injected per slave: requests ignored, answers with a broken checksum.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import socket
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from meterflow.errors import ConfigError, DecodeError, TransportError
from meterflow.settings import Settings
from readers.mbus import (
    ACK,
    ADDRESS_BROADCAST,
    ADDRESS_SELECTED,
    CI_APPLICATION_RESET,
    CI_SELECT_SECONDARY,
    FCB,
    REQ_UD2,
    SND_NKE,
    SND_UD,
    START_LONG,
    START_SHORT,
    ControlFrame,
    LongFrame,
    ShortFrame,
    encode_rsp_ud,
    parse_frame,
    parse_select_secondary,
)
from readers.model import Header, Record
from simulators.consumption import VirtualMeter

log = logging.getLogger(__name__)

IDLE_RESET_S = 0.5


@dataclasses.dataclass(slots=True)
class Faults:
    """Faults a slave injects: ignore the next requests, or corrupt the next answers."""

    ignore_next: int = 0
    corrupt_next: int = 0


@dataclasses.dataclass(eq=False)
class VirtualSlave:
    """One meter on the bus and its link-layer state."""

    primary: int
    header: Header
    records_for: Callable[[], Sequence[Record]]
    records_per_telegram: int | None = None
    faults: Faults = dataclasses.field(default_factory=Faults)
    selected: bool = dataclasses.field(default=False, init=False)
    _last_fcb: bool | None = dataclasses.field(default=None, init=False)
    _last_answer: bytes | None = dataclasses.field(default=None, init=False)
    _queue: list[bytes] = dataclasses.field(default_factory=list, init=False)
    _access_no: int = dataclasses.field(default=0, init=False)

    def reset_link(self) -> None:
        """Forget the frame count bit and any telegrams not yet fetched (SND_NKE)."""
        self._last_fcb = None
        self._last_answer = None
        self._queue.clear()

    def answer_ud2(self, fcb: bool) -> bytes:
        """Return the RSP_UD for a REQ_UD2 with frame count bit ``fcb``."""
        if self._last_answer is not None and self._last_fcb == fcb:
            return self._last_answer
        if not self._queue:
            self._queue.extend(self._telegrams())
        answer = self._queue.pop(0)
        self._last_fcb, self._last_answer = fcb, answer
        return answer

    def _telegrams(self) -> list[bytes]:
        records = list(self.records_for())
        size = self.records_per_telegram or max(1, len(records))
        chunks = [records[i : i + size] for i in range(0, len(records), size)] or [[]]
        telegrams = []
        for index, chunk in enumerate(chunks):
            self._access_no = (self._access_no + 1) & 0xFF
            header = dataclasses.replace(self.header, access_no=self._access_no)
            more = index < len(chunks) - 1
            telegrams.append(encode_rsp_ud(header, chunk, self.primary, more_records_follow=more))
        return telegrams


def collide(answers: Sequence[bytes]) -> bytes:
    """Return what the line carries when slaves send ``answers`` at once (bitwise AND)."""
    if len(set(answers)) <= 1:
        return answers[0] if answers else b""
    length = max(len(answer) for answer in answers)
    line = bytearray(b"\xff" * length)
    for answer in answers:
        for i, byte in enumerate(answer):
            line[i] &= byte
    return bytes(line)


class MbusBus:
    """Virtual slaves behind a TCP port, one master connection served at a time."""

    def __init__(
        self, slaves: Iterable[VirtualSlave], host: str = "127.0.0.1", port: int = 0
    ) -> None:
        """Prepare the bus; ``start`` listens on ``host:port`` (0 picks a free port)."""
        self.slaves = list(slaves)
        self.host = host
        self.port = port
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._connections: list[socket.socket] = []
        self._server: socket.socket | None = None

    @property
    def url(self) -> str:
        """The pyserial URL a master opens to reach this bus."""
        return f"socket://{self.host}:{self.port}"

    def start(self) -> MbusBus:
        """Listen and accept masters in a background thread.

        Raises TransportError if the port cannot be bound.
        """
        try:
            self._server = socket.create_server((self.host, self.port))
        except OSError as exc:
            raise TransportError(f"cannot listen on {self.host}:{self.port}: {exc}") from exc
        self.port = int(self._server.getsockname()[1])
        thread = threading.Thread(target=self._accept_loop, name="mbus-bus", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Close the port and every master connection."""
        self._stopping.set()
        if self._server is not None:
            _close_quietly(self._server)
        for conn in list(self._connections):
            _close_quietly(conn)
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> MbusBus:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def handle(self, raw: bytes) -> bytes:
        """Return what the line carries after the master sent ``raw`` (b"" for silence)."""
        try:
            frame = parse_frame(raw)
        except DecodeError:
            return b""  # slaves ignore a frame they cannot read
        with self._lock:
            if isinstance(frame, ShortFrame):
                answers = self._short(frame)
            elif isinstance(frame, LongFrame | ControlFrame):
                answers = self._long(frame)
            else:
                answers = []
        return collide(answers)

    def _addressed(self, address: int) -> list[VirtualSlave]:
        if address == ADDRESS_SELECTED:
            return [slave for slave in self.slaves if slave.selected]
        if address == ADDRESS_BROADCAST:
            return list(self.slaves)
        return [slave for slave in self.slaves if slave.primary == address]

    def _short(self, frame: ShortFrame) -> list[bytes]:
        answers = []
        for slave in self._addressed(frame.a):
            if _ignores(slave):
                continue
            if frame.c == SND_NKE:
                slave.reset_link()
                answers.append(_answer(slave, bytes([ACK])))
                if frame.a == ADDRESS_SELECTED:
                    slave.selected = False
            elif frame.c & ~FCB == REQ_UD2:
                answers.append(_answer(slave, slave.answer_ud2(bool(frame.c & FCB))))
        return [] if frame.a == ADDRESS_BROADCAST else answers

    def _long(self, frame: LongFrame | ControlFrame) -> list[bytes]:
        if frame.c & ~FCB != SND_UD:
            return []
        if frame.ci == CI_SELECT_SECONDARY and isinstance(frame, LongFrame):
            return self._select(frame)
        if frame.ci == CI_APPLICATION_RESET:
            slaves = [s for s in self._addressed(frame.a) if not _ignores(s)]
            for slave in slaves:
                slave.reset_link()
            return (
                [] if frame.a == ADDRESS_BROADCAST else [_answer(s, bytes([ACK])) for s in slaves]
            )
        return []

    def _select(self, frame: LongFrame) -> list[bytes]:
        if frame.a != ADDRESS_SELECTED:
            return []
        try:
            selection = parse_select_secondary(frame)
        except DecodeError:
            return []
        answers = []
        for slave in self.slaves:
            was_selected = slave.selected
            slave.selected = selection.matches(slave.header)
            if not slave.selected:
                continue
            if not was_selected:
                slave.reset_link()
            if not _ignores(slave):
                answers.append(_answer(slave, bytes([ACK])))
        return answers

    def _accept_loop(self) -> None:
        assert self._server is not None
        self._server.settimeout(IDLE_RESET_S)
        while not self._stopping.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._connections.append(conn)
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, conn: socket.socket) -> None:
        buffer = bytearray()
        conn.settimeout(IDLE_RESET_S)
        try:
            while not self._stopping.is_set():
                try:
                    chunk = conn.recv(4096)
                except TimeoutError:
                    buffer.clear()  # a partial frame followed by silence is discarded
                    continue
                if not chunk:
                    return
                buffer.extend(chunk)
                for raw in _split_frames(buffer):
                    reply = self.handle(raw)
                    if reply:
                        conn.sendall(reply)
        except OSError:
            return
        finally:
            _close_quietly(conn)
            if conn in self._connections:
                self._connections.remove(conn)


def _split_frames(buffer: bytearray) -> list[bytes]:
    """Remove and return every complete frame at the start of ``buffer``; skip noise."""
    frames = []
    while buffer:
        start = buffer[0]
        if start == START_SHORT:
            size = 5
        elif start == START_LONG:
            if len(buffer) < 2:
                break
            size = buffer[1] + 6
        elif start == ACK:
            size = 1
        else:
            del buffer[0]
            continue
        if len(buffer) < size:
            break
        frames.append(bytes(buffer[:size]))
        del buffer[:size]
    return frames


def _ignores(slave: VirtualSlave) -> bool:
    if slave.faults.ignore_next > 0:
        slave.faults.ignore_next -= 1
        return True
    return False


def _answer(slave: VirtualSlave, reply: bytes) -> bytes:
    if slave.faults.corrupt_next > 0 and len(reply) > 1:
        slave.faults.corrupt_next -= 1
        return reply[:-2] + bytes([(reply[-2] + 1) & 0xFF]) + reply[-1:]
    return reply


def _close_quietly(conn: socket.socket) -> None:
    try:
        conn.shutdown(socket.SHUT_RDWR)
    except OSError:
        log.debug("the bus connection was already shut")
    try:
        conn.close()
    except OSError:
        log.debug("closing a bus connection failed")


def demo_slaves(count: int, seed: int = 1, speed: float = 1.0) -> list[VirtualSlave]:
    """Return ``count`` (1-250) slaves with primary addresses 1..count and virtual meters.

    Raises ConfigError if ``count`` does not fit the primary address range.
    """
    if not 1 <= count <= 250:
        raise ConfigError(f"a bus holds 1 to 250 primary addresses, not {count}")
    makers = ("APA", "DME", "KAM", "ZRI", "BMT")
    start = datetime.now(UTC)
    slaves = []
    for index in range(1, count + 1):
        # Ids differ in their first digit (up to 9 meters), which keeps a wildcard scan short.
        ident = f"{(index * 10_000_019 + seed * 7_919) % 100_000_000:08d}"
        header = Header(makers[index % len(makers)], ident, 1, 0x07)
        meter = VirtualMeter(header, bytes(16), seed * 1000 + index, start=start)
        slaves.append(VirtualSlave(index, header, _records_at(meter, start, speed)))
    return slaves


def _records_at(
    meter: VirtualMeter, start: datetime, speed: float
) -> Callable[[], Sequence[Record]]:
    def records() -> Sequence[Record]:
        now = datetime.now(UTC)
        return meter.records(start + (now - start) * speed)

    return records


def register(subparsers: Any) -> None:
    """Add the ``simulate-mbus`` sub-command."""
    parser = subparsers.add_parser(
        "simulate-mbus",
        help="serve a virtual wired M-Bus with water meters on TCP",
        description="Serve virtual M-Bus water meters on a TCP port; a collector reaches "
        "them with --port socket://HOST:PORT.",
    )
    parser.add_argument("--port", type=int, required=True, help="TCP port to listen on")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--meters", type=int, default=5, metavar="N", help="meters (1-250)")
    parser.add_argument("--seed", type=int, default=1, help="seed of meter ids and consumption")
    parser.add_argument(
        "--speed", type=float, default=1.0, metavar="X", help="simulated seconds per real second"
    )
    parser.set_defaults(handler=serve)


def serve(args: argparse.Namespace, settings: Settings) -> int:
    """Serve the virtual bus until interrupted."""
    slaves = demo_slaves(args.meters, args.seed, args.speed)
    with MbusBus(slaves, args.host, args.port) as bus:
        log.info("virtual M-Bus with %d meters on %s", len(slaves), bus.url)
        threading.Event().wait()
    return 0
