"""The ingest worker: MQTT messages in, batches decoded and committed, then acknowledged.

The paho thread only enqueues. This thread takes a batch (``ingest_batch_frames`` frames or
``ingest_batch_ms``), parses envelopes, decodes frames, writes everything in one transaction
and only then acknowledges the batch's messages in arrival order. Anything undecodable becomes
a dead letter. While the database is unreachable the batch is kept, nothing is acknowledged,
and the write is retried with back-off.
"""

from __future__ import annotations

import collections
import dataclasses
import gc
import hashlib
import logging
import queue
import signal
import threading
import time
from datetime import datetime
from typing import NamedTuple

from ingest.metrics import IngestMetrics
from ingest.mqtt import PLAIN_FILTER, SHARED_FILTER, Consumer, Message
from ingest.rows import ReadTimes, reading_rows, storage_times
from ingest.store import BatchRows, MeterSeen, Store
from meterflow.errors import ConfigError, DecodeError, DecryptError, EnvelopeError, StoreError
from meterflow.settings import Settings
from readers import oms_crypto
from readers.codec import decode_frame
from readers.model import Header, Kind, Telegram
from schemas.envelope import Envelope, RawFrame, parse_envelope, parse_topic

log = logging.getLogger(__name__)

MAX_RETRY_DELAY_S = 10.0
UNCOMMITTED_BATCHES = 2  # one being written, one waiting for the writer
# The worker's heap keeps growing with its caches (AES contexts, meters written), and with
# the default thresholds every full collection rescans all of it: ~20 us per frame measured.
# A young generation of 100,000 objects and a full collection at most every 10 older ones
# still collect cycles, at well under 1 us per frame.
GC_THRESHOLDS = (100_000, 50, 10)


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


class Decoded(NamedTuple):
    """One received frame and what decoding made of it (a tuple: one per frame)."""

    gateway: str
    kind: Kind
    frame: RawFrame
    sha: bytes
    telegram: Telegram | None
    error: str | None
    times: dict[int, datetime]


@dataclasses.dataclass(frozen=True, slots=True)
class Prepared:
    """A decoded batch waiting for the writer thread: its messages, frame count and rows."""

    messages: list[Message]
    frames: int
    rows: BatchRows


def _hand_over(
    pending: queue.Queue[Prepared | None], item: Prepared | None, writer: threading.Thread
) -> bool:
    """Queue ``item`` for the writer; False if the writer has stopped."""
    while writer.is_alive():
        try:
            pending.put(item, timeout=0.2)
            return True
        except queue.Full:
            continue
    return False


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
        oms_crypto.set_decryption_cache_keys(settings.ingest_decrypt_cache_keys)
        self.lookups = Store(settings.database_url)  # keys and receptions, this thread
        self.store = Store(settings.database_url, keys=False)  # writes, the writer thread
        self.metrics = IngestMetrics()
        self._abandoned = False
        self._writer_error: Exception | None = None
        # Reading times assigned in batches that may not be committed yet (being written, or
        # waiting): the store cannot tell them, so the worker remembers them.
        self._recent: collections.deque[dict[bytes, list[tuple[datetime, datetime]]]] = (
            collections.deque(maxlen=UNCOMMITTED_BATCHES)
        )
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
        """Consume until the stop event; return 0, or 1 if a batch could not be committed.

        Raises TransportError if paho refuses an acknowledgement (in the writer thread).
        """
        self.metrics_port = self.metrics.serve(self.settings.metrics_port)
        thresholds = gc.get_threshold()
        gc.collect()
        gc.freeze()  # what start-up built is never garbage: no collection rescans it
        gc.set_threshold(*GC_THRESHOLDS)
        self.consumer.start()
        # One batch waits while another is written: decoding overlaps the database's work.
        pending: queue.Queue[Prepared | None] = queue.Queue(maxsize=1)
        writer = threading.Thread(
            target=self._write_all, args=(pending,), name="ingest-writer", daemon=True
        )
        writer.start()
        try:
            while not self.stop_event.is_set() and writer.is_alive():
                batch = self._collect()
                prepared = self._prepare(batch) if batch else None
                if prepared is not None and not _hand_over(pending, prepared, writer):
                    break
            _hand_over(pending, None, writer)
            writer.join()
            if self._writer_error is not None:
                raise self._writer_error
        finally:
            self.consumer.stop()
            self.lookups.close()
            self.store.close()
            gc.set_threshold(*thresholds)
            gc.unfreeze()
        log.info("ingest worker stopped")
        return 1 if self._abandoned else 0

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

    def _prepare(self, batch: list[Incoming]) -> Prepared | None:
        """Decode a batch into rows, retrying lookups while the database is away.

        Returns None if stopped first (nothing of the batch was acknowledged).
        """
        delay = 0.5
        while True:
            try:
                rows = self._rows(batch)
            except StoreError as exc:
                if not self._back_off(exc, len(batch), delay):
                    return None
                delay = min(delay * 2, MAX_RETRY_DELAY_S)
                continue
            frames = sum(incoming.frame_count for incoming in batch)
            return Prepared([incoming.message for incoming in batch], frames, rows)

    def _write_all(self, pending: queue.Queue[Prepared | None]) -> None:
        """The writer thread: commit and acknowledge batches in order until None."""
        try:
            while (prepared := pending.get()) is not None:
                if not self._commit(prepared):
                    return
        except Exception as exc:  # re-raised by run() in the main thread
            self._writer_error = exc

    def _commit(self, prepared: Prepared) -> bool:
        """Write a batch until it commits, then acknowledge it; False if stopped first."""
        delay = 0.5
        while True:
            try:
                started = time.monotonic()
                self.store.write(prepared.rows)
                break
            except StoreError as exc:
                if not self._back_off(exc, len(prepared.messages), delay):
                    return False
                delay = min(delay * 2, MAX_RETRY_DELAY_S)
        rows = prepared.rows
        self.metrics.committed(prepared.frames, len(rows.readings), time.monotonic() - started)
        for dead in rows.dead_letters:
            self.metrics.dead_letters.labels(dead[4].split(":", 1)[0]).inc()
        for message in prepared.messages:
            self.consumer.ack(message)
        return True

    def _back_off(self, exc: StoreError, messages: int, delay: float) -> bool:
        """Log a failed database call and wait ``delay``; False if stopped meanwhile."""
        self.metrics.store_errors.inc()
        log.error(
            "cannot store a batch of %d messages, nothing acknowledged; retrying in %.1f s: %s",
            messages,
            delay,
            exc,
        )
        if self.stop_event.wait(delay):
            log.warning("stopping with an uncommitted batch; the broker redelivers it")
            self._abandoned = True
            return False
        return True

    def _rows(self, batch: list[Incoming]) -> BatchRows:
        """Decode a batch into the rows to write.

        Raises StoreError if a key or earlier reception cannot be looked up.
        """
        rows = BatchRows()
        decoded: list[Decoded] = []
        known: dict[tuple[Kind, bytes], Decoded] = {}
        for incoming in batch:
            if incoming.envelope is None:
                self._dead_message(rows, incoming)
                continue
            envelope = incoming.envelope
            for frame in envelope.frames:
                decoded.append(self._decode_once(known, envelope.gateway, envelope.kind, frame))
        times = self._read_times(decoded)
        for item in decoded:
            self._add(rows, item, times)
        self._recent.append(times.known)
        return rows

    def _decode_once(
        self, known: dict[tuple[Kind, bytes], Decoded], gateway: str, kind: Kind, frame: RawFrame
    ) -> Decoded:
        """Decode a frame, or reuse this batch's decoding of the same bytes (another gateway
        heard them, or a redelivery): decoding is most of the worker's work."""
        sha = hashlib.sha256(frame.data).digest()
        same = known.get((kind, sha))
        if same is not None:
            return same._replace(gateway=gateway, frame=frame)
        known[(kind, sha)] = decoded = self._decode(gateway, kind, frame, sha)
        return decoded

    def _decode(self, gateway: str, kind: Kind, frame: RawFrame, sha: bytes) -> Decoded:
        asked: list[str] = []

        def key_for(header: Header) -> bytes | None:
            asked.append(header.meter_id)
            return self.lookups.key_for(header.meter_id)

        try:
            telegram = decode_frame(kind, frame.data, key_for)
        except DecryptError as exc:
            if not asked or not self.lookups.refresh_key(asked[-1]):
                return Decoded(gateway, kind, frame, sha, None, reason_of(exc), {})
            return self._decode(gateway, kind, frame, sha)
        except DecodeError as exc:
            return Decoded(gateway, kind, frame, sha, None, reason_of(exc), {})
        return Decoded(gateway, kind, frame, sha, telegram, None, storage_times(telegram.records))

    def _read_times(self, decoded: list[Decoded]) -> ReadTimes:
        """Seed reading times of clockless frames from receptions already stored."""
        clockless = [d for d in decoded if d.telegram and 0 not in d.times]
        if not clockless:
            return ReadTimes()
        stamps = [d.frame.received_at for d in clockless]
        shas = {d.sha for d in clockless}
        known = self.lookups.earlier_receptions(shas, min(stamps), max(stamps))
        for recent in self._recent:
            for sha in shas & recent.keys():
                known.setdefault(sha, []).extend(recent[sha])
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
            self._seen(rows, meter_id, telegram, frame.received_at)
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
    def _seen(rows: BatchRows, meter_id: str, telegram: Telegram, at: datetime) -> None:
        header = telegram.header
        known = rows.meters.get(meter_id)
        first = min(known.first_seen_at, at) if known else at
        last = max(known.last_seen_at, at) if known else at
        rows.meters[meter_id] = MeterSeen(
            meter_id,
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
