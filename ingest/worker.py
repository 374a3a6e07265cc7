"""The ingest worker: MQTT messages in, batches decoded and committed, then acknowledged.

The paho thread only enqueues. This thread takes a batch (``ingest_batch_frames`` frames or
``ingest_batch_ms``), parses envelopes, decodes frames, writes everything in one transaction
and only then acknowledges the batch's messages in arrival order. Anything undecodable becomes
a dead letter. While the database is unreachable the batch is kept, nothing is acknowledged,
and the write is retried with back-off.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import queue
import signal
import threading
import time
from datetime import datetime

from ingest.metrics import IngestMetrics
from ingest.mqtt import PLAIN_FILTER, SHARED_FILTER, Consumer, Message
from ingest.rows import ReadTimes, reading_rows, storage_times
from ingest.store import BatchRows, MeterSeen, Store
from meterflow.errors import ConfigError, DecodeError, DecryptError, EnvelopeError, StoreError
from meterflow.settings import Settings
from readers.codec import decode_frame
from readers.model import Header, Kind, Telegram
from schemas.envelope import Envelope, RawFrame, parse_envelope, parse_topic

log = logging.getLogger(__name__)

MAX_RETRY_DELAY_S = 10.0


@dataclasses.dataclass(frozen=True, slots=True)
class Incoming:
    """A message with its parsed envelope, or the reason it has none."""

    message: Message
    envelope: Envelope | None
    error: str | None = None

    @property
    def frame_count(self) -> int:
        """Frames this message carries (1 for a broken message: its dead letter)."""
        return len(self.envelope.frames) if self.envelope else 1


@dataclasses.dataclass(frozen=True, slots=True)
class Decoded:
    """One received frame and what decoding made of it."""

    gateway: str
    kind: Kind
    frame: RawFrame
    sha: bytes
    telegram: Telegram | None
    error: str | None
    times: dict[int, datetime] = dataclasses.field(default_factory=dict)


def open_message(message: Message) -> Incoming:
    """Parse a message's topic and envelope; a broken one carries its reason instead."""
    try:
        gateway, kind = parse_topic(message.topic)
        envelope = parse_envelope(message.payload)
        if envelope.gateway != gateway or envelope.kind != kind:
            raise EnvelopeError(
                f"envelope of {envelope.gateway}/{envelope.kind} published on {message.topic}"
            )
    except EnvelopeError as exc:
        return Incoming(message, None, reason_of(exc))
    return Incoming(message, envelope)


def reason_of(exc: Exception) -> str:
    """Return a dead letter's reason: the error class, a colon, the message."""
    return f"{type(exc).__name__}: {exc}"


def fingerprint(*parts: bytes) -> bytes:
    """Return the SHA-256 of ``parts`` (length-prefixed, so boundaries count)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(len(part).to_bytes(4, "big"))
        digest.update(part)
    return digest.digest()


class Worker:
    """One ingest worker: a consumer, a store connection, metrics."""

    def __init__(self, settings: Settings, stop_event: threading.Event) -> None:
        if not settings.database_url or not settings.mqtt_url:
            raise ConfigError("set METERFLOW_DATABASE_URL and METERFLOW_MQTT_URL to run ingest")
        self.settings = settings
        self.stop_event = stop_event
        self.store = Store(settings.database_url)
        self.metrics = IngestMetrics()
        self.metrics_port = 0
        self.consumer = Consumer(
            settings.mqtt_url,
            settings.ingest_client_id,
            SHARED_FILTER if settings.ingest_shared else PLAIN_FILTER,
            session_expiry_s=settings.ingest_session_expiry_s,
            receive_maximum=settings.ingest_receive_maximum,
            protocol=settings.mqtt_protocol,
        )

    def run(self) -> int:
        """Consume until the stop event; return 0, or 1 if a batch could not be committed."""
        self.metrics_port = self.metrics.serve(self.settings.metrics_port)
        self.consumer.start()
        code = 0
        try:
            while not self.stop_event.is_set():
                batch = self._collect()
                if batch and not self._commit(batch):
                    code = 1
                    break
        finally:
            self.consumer.stop()
            self.store.close()
        log.info("ingest worker stopped")
        return code

    def _collect(self) -> list[Incoming]:
        """Take up to ``ingest_batch_frames`` frames, waiting at most ``ingest_batch_ms``.

        The batch also ends at ``ingest_receive_maximum`` messages: the broker sends no more
        before some are acknowledged, so waiting longer would only idle.
        """
        inbox = self.consumer.inbox
        most = self.settings.ingest_receive_maximum
        try:
            first = inbox.get(timeout=0.2)
        except queue.Empty:
            return []
        batch = [open_message(first)]
        frames = batch[0].frame_count
        deadline = time.monotonic() + self.settings.ingest_batch_ms / 1000
        while (
            frames < self.settings.ingest_batch_frames
            and len(batch) < most
            and not self.stop_event.is_set()
        ):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                incoming = open_message(inbox.get(timeout=remaining))
            except queue.Empty:
                break
            batch.append(incoming)
            frames += incoming.frame_count
        self.metrics.frames_received.inc(frames)
        return batch

    def _commit(self, batch: list[Incoming]) -> bool:
        """Write the batch until it commits, then acknowledge; False if stopped first."""
        delay = 0.5
        while True:
            try:
                started = time.monotonic()
                rows = self._rows(batch)
                self.store.write(rows)
                break
            except StoreError as exc:
                self.metrics.store_errors.inc()
                log.error(
                    "cannot store a batch of %d messages, nothing acknowledged; retrying in"
                    " %.1f s: %s",
                    len(batch),
                    delay,
                    exc,
                )
                if self.stop_event.wait(delay):
                    log.warning("stopping with an uncommitted batch; the broker redelivers it")
                    return False
                delay = min(delay * 2, MAX_RETRY_DELAY_S)
        frames = sum(incoming.frame_count for incoming in batch)
        self.metrics.committed(frames, len(rows.readings), time.monotonic() - started)
        for dead in rows.dead_letters:
            self.metrics.dead_letters.labels(dead[4].split(":", 1)[0]).inc()
        for incoming in batch:
            self.consumer.ack(incoming.message)
        return True

    def _rows(self, batch: list[Incoming]) -> BatchRows:
        """Decode a batch into the rows to write.

        Raises StoreError if a key or earlier reception cannot be looked up.
        """
        rows = BatchRows()
        decoded: list[Decoded] = []
        for incoming in batch:
            if incoming.envelope is None:
                self._dead_message(rows, incoming)
                continue
            envelope = incoming.envelope
            for frame in envelope.frames:
                decoded.append(self._decode(envelope.gateway, envelope.kind, frame))
        times = self._read_times(decoded)
        for item in decoded:
            self._add(rows, item, times)
        return rows

    def _decode(self, gateway: str, kind: Kind, frame: RawFrame) -> Decoded:
        sha = hashlib.sha256(frame.data).digest()
        asked: list[str] = []

        def key_for(header: Header) -> bytes | None:
            asked.append(header.meter_id)
            return self.store.key_for(header.meter_id)

        try:
            telegram = decode_frame(kind, frame.data, key_for)
        except DecryptError as exc:
            if not asked or not self.store.refresh_key(asked[-1]):
                return Decoded(gateway, kind, frame, sha, None, reason_of(exc))
            return self._decode(gateway, kind, frame)
        except DecodeError as exc:
            return Decoded(gateway, kind, frame, sha, None, reason_of(exc))
        return Decoded(gateway, kind, frame, sha, telegram, None, storage_times(telegram.records))

    def _read_times(self, decoded: list[Decoded]) -> ReadTimes:
        """Seed reading times of clockless frames from receptions already stored."""
        clockless = [d for d in decoded if d.telegram and 0 not in d.times]
        if not clockless:
            return ReadTimes()
        stamps = [d.frame.received_at for d in clockless]
        known = self.store.earlier_receptions((d.sha for d in clockless), min(stamps), max(stamps))
        return ReadTimes(known)

    def _add(self, rows: BatchRows, item: Decoded, times: ReadTimes) -> None:
        frame, telegram = item.frame, item.telegram
        read_at: datetime | None = None
        meter_id: str | None = None
        if telegram is None:
            rows.dead_letters.append(
                (
                    None,
                    item.gateway,
                    frame.data,
                    frame.data,
                    item.error or "DecodeError",
                    fingerprint(
                        item.gateway.encode(), frame.received_at.isoformat().encode(), frame.data
                    ),
                )
            )
        else:
            read_at = item.times.get(0) or times.assign(item.sha, frame.received_at)
            meter_id = telegram.header.meter_id
            readings = reading_rows(telegram, read_at, frame.received_at, item.gateway, item.times)
            for reading in readings:
                rows.add_reading(reading)
            self._seen(rows, telegram, frame.received_at)
        rows.frames.append(
            (
                frame.received_at,
                item.gateway,
                item.kind,
                item.sha,
                frame.data,
                frame.rssi_dbm,
                meter_id,
                read_at,
            )
        )

    @staticmethod
    def _seen(rows: BatchRows, telegram: Telegram, at: datetime) -> None:
        header = telegram.header
        known = rows.meters.get(header.meter_id)
        first = min(known.first_seen_at, at) if known else at
        last = max(known.last_seen_at, at) if known else at
        rows.meters[header.meter_id] = MeterSeen(
            header.meter_id,
            header.manufacturer,
            header.id,
            header.version,
            header.device_type,
            telegram.driver,
            first,
            last,
        )

    @staticmethod
    def _dead_message(rows: BatchRows, incoming: Incoming) -> None:
        message = incoming.message
        gateway = message.topic.split("/")[2] if message.topic.count("/") == 3 else None
        rows.dead_letters.append(
            (
                message.topic,
                gateway,
                message.payload,
                None,
                incoming.error or "EnvelopeError",
                fingerprint(message.topic.encode(), message.payload),
            )
        )


def run_worker(settings: Settings, stop_event: threading.Event | None = None) -> int:
    """Run one ingest worker until ``stop_event`` is set (or SIGTERM/SIGINT); return exit code.

    Raises ConfigError if the database or broker URL is missing.
    """
    if stop_event is None:
        event = stop_event = threading.Event()
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, lambda *_: event.set())
    return Worker(settings, stop_event).run()
