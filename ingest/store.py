"""The ingest side of PostgreSQL: meter keys, earlier receptions, and batch writes via COPY.

A batch is written in ONE transaction. Frames and readings are first copied straight into
their tables inside a savepoint (binary COPY, the fast path); if a row was stored before (a
redelivery, another gateway) the savepoint is rolled back and the rows go through a temporary
staging table and ``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` instead, which skips what is
stored without failing the batch. After such a conflict the next ``STAGED_BATCHES`` batches of
that table take the staging path directly, so a stream full of duplicates pays no failed COPY.
Meters are upserted through staging, but only when the worker has not already written the
same facts (``last_seen_at`` is kept to within ``SEEN_STEP``). Every psycopg error leaves
this module as StoreError, and the connection is dropped so the next call reconnects.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import NamedTuple

import psycopg
from psycopg.rows import TupleRow

from ingest.rows import DEDUP_WINDOW, ReadingRow
from meterflow.errors import StoreError

log = logging.getLogger(__name__)

KEY_RETRY_S = 60.0  # how long a "no key for this meter" answer is trusted
STAGED_BATCHES = 20  # batches that skip the fast path after a conflict
SEEN_STEP = timedelta(minutes=5)  # how stale a meter's stored last_seen_at may be

FrameRow = tuple[datetime, str, str, bytes, bytes, int | None, str | None, datetime | None]
DeadLetterRow = tuple[str | None, str | None, bytes, bytes | None, str, bytes]

STAGING = """
CREATE TEMP TABLE IF NOT EXISTS stage_frames (
    received_at timestamptz, gateway_id text, kind text, frame_sha bytea, frame bytea,
    rssi_dbm smallint, meter_id text, read_at timestamptz) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_readings (
    meter_id text, read_at timestamptz, storage int, tariff int, subunit int, quantity text,
    function text, unit text, value numeric, received_at timestamptz, gateway_id text)
    ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_meters (
    meter_id text, manufacturer text, serial text, version smallint, device_type smallint,
    driver text, first_seen_at timestamptz, last_seen_at timestamptz) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_dead_letters (
    topic text, gateway_id text, payload bytea, frame bytea, reason text, fingerprint bytea)
    ON COMMIT DELETE ROWS;
"""

# Column types of the staging tables, in order, for binary COPY.
FRAME_TYPES = (
    "timestamptz", "text", "text", "bytea", "bytea", "int2", "text", "timestamptz",
)  # fmt: skip
READING_TYPES = (
    "text", "timestamptz", "int4", "int4", "int4", "text", "text", "text", "numeric",
    "timestamptz", "text",
)  # fmt: skip
METER_TYPES = (
    "text", "text", "text", "int2", "int2", "text", "timestamptz", "timestamptz",
)  # fmt: skip

MERGE_METERS = """
INSERT INTO meters (meter_id, manufacturer, serial, version, device_type, driver,
                    first_seen_at, last_seen_at)
SELECT * FROM stage_meters ORDER BY meter_id
ON CONFLICT (meter_id) DO UPDATE SET
    last_seen_at = GREATEST(meters.last_seen_at, EXCLUDED.last_seen_at),
    first_seen_at = LEAST(meters.first_seen_at, EXCLUDED.first_seen_at),
    version = COALESCE(meters.version, EXCLUDED.version),
    device_type = COALESCE(meters.device_type, EXCLUDED.device_type),
    driver = COALESCE(EXCLUDED.driver, meters.driver)
"""


@dataclasses.dataclass(slots=True)
class Target:
    """A table written by COPY with a staging fallback for rows stored before."""

    table: str
    stage: str
    columns: str
    types: tuple[str, ...]
    staged_batches: int = 0  # batches left that go straight to staging

    def copy_sql(self, table: str) -> bytes:
        """Return the binary COPY statement into ``table`` (the target or its staging)."""
        return f"COPY {table} ({self.columns}) FROM STDIN (FORMAT BINARY)".encode()

    def merge_sql(self) -> bytes:
        """Return the statement moving staged rows in, skipping those already stored."""
        return (
            f"INSERT INTO {self.table} ({self.columns}) SELECT {self.columns}"
            f" FROM {self.stage} ON CONFLICT DO NOTHING"
        ).encode()


METERS_COPY = b"COPY stage_meters FROM STDIN (FORMAT BINARY)"
FRAME_COLUMNS = "received_at, gateway_id, kind, frame_sha, frame, rssi_dbm, meter_id, read_at"
READING_COLUMNS = (
    "meter_id, read_at, storage, tariff, subunit, quantity, function, unit, value, received_at,"
    " gateway_id"
)


class MeterSeen(NamedTuple):
    """A meter heard in a batch, registered as ``unassigned`` if new (a tuple: one per frame)."""

    meter_id: str
    manufacturer: str
    serial: str
    version: int
    device_type: int
    driver: str | None
    first_seen_at: datetime
    last_seen_at: datetime


@dataclasses.dataclass(slots=True)
class BatchRows:
    """Everything one batch writes."""

    frames: list[FrameRow] = dataclasses.field(default_factory=list)
    readings: dict[tuple[object, ...], ReadingRow] = dataclasses.field(default_factory=dict)
    meters: dict[str, MeterSeen] = dataclasses.field(default_factory=dict)
    dead_letters: list[DeadLetterRow] = dataclasses.field(default_factory=list)

    def add_reading(self, row: ReadingRow) -> None:
        """Keep the first row of each reading identity."""
        self.readings.setdefault((row[0], row[5], row[6], row[2], row[3], row[4], row[1]), row)


class Store:
    """One connection to the meterflow database, used by one thread of the worker."""

    def __init__(self, conninfo: str, *, keys: bool = True) -> None:
        self._conninfo = conninfo
        self._with_keys = keys  # cache every meter key on connecting (for decoding)
        self._conn: psycopg.Connection[TupleRow] | None = None
        self._keys: dict[str, bytes] = {}
        self._missing: dict[str, float] = {}
        self._refreshed: dict[str, float] = {}
        self._written: dict[str, MeterSeen] = {}
        self._frames = Target("raw_frames", "stage_frames", FRAME_COLUMNS, FRAME_TYPES)
        self._readings = Target("readings", "stage_readings", READING_COLUMNS, READING_TYPES)

    def close(self) -> None:
        """Close the connection if open."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @contextmanager
    def _session(self) -> Iterator[psycopg.Connection[TupleRow]]:
        try:
            yield self._connection()
        except psycopg.Error as exc:
            self.close()
            raise StoreError(f"database error: {exc}") from exc

    def _connection(self) -> psycopg.Connection[TupleRow]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            conn = psycopg.connect(self._conninfo, connect_timeout=5)
            conn.execute(STAGING)
            conn.commit()
            self._conn = conn
            if self._with_keys:
                self._load_keys(conn)
        return self._conn

    def _load_keys(self, conn: psycopg.Connection[TupleRow]) -> None:
        rows = conn.execute("SELECT meter_id, aes_key FROM meters WHERE aes_key IS NOT NULL")
        self._keys = {meter_id: bytes(key) for meter_id, key in rows}
        self._missing.clear()
        conn.commit()
        log.info("loaded %d meter keys", len(self._keys))

    def key_for(self, meter_id: str, refresh: bool = False) -> bytes | None:
        """Return the AES key of a meter, asking the database when it is not cached.

        Raises StoreError if the database cannot be reached.
        """
        if not refresh:
            if meter_id in self._keys:
                return self._keys[meter_id]
            if time.monotonic() - self._missing.get(meter_id, -KEY_RETRY_S) < KEY_RETRY_S:
                return None
        with self._session() as conn:
            row = conn.execute(
                "SELECT aes_key FROM meters WHERE meter_id = %s AND aes_key IS NOT NULL",
                (meter_id,),
            ).fetchone()
            conn.commit()
        if row is None:
            self._keys.pop(meter_id, None)
            self._missing[meter_id] = time.monotonic()
            return None
        self._keys[meter_id] = bytes(row[0])
        return self._keys[meter_id]

    def refresh_key(self, meter_id: str) -> bool:
        """Re-read a meter's key after it failed; True if it changed (at most once a minute).

        Raises StoreError if the database cannot be reached.
        """
        now = time.monotonic()
        if now - self._refreshed.get(meter_id, -KEY_RETRY_S) < KEY_RETRY_S:
            return False
        self._refreshed[meter_id] = now
        before = self._keys.get(meter_id)
        return self.key_for(meter_id, refresh=True) not in (None, before)

    def earlier_receptions(
        self, shas: Iterable[bytes], low: datetime, high: datetime
    ) -> dict[bytes, list[tuple[datetime, datetime]]]:
        """Return (received_at, read_at) of stored receptions of these frames near [low, high].

        Raises StoreError if the database cannot be reached.
        """
        wanted = list(set(shas))
        found: dict[bytes, list[tuple[datetime, datetime]]] = {}
        if not wanted:
            return found
        with self._session() as conn:
            rows = conn.execute(
                "SELECT frame_sha, received_at, read_at FROM raw_frames"
                " WHERE frame_sha = ANY(%s) AND received_at BETWEEN %s AND %s"
                " AND read_at IS NOT NULL ORDER BY received_at",
                (wanted, low - DEDUP_WINDOW, high + DEDUP_WINDOW),
            ).fetchall()
            conn.commit()
        for sha, received_at, read_at in rows:
            found.setdefault(bytes(sha), []).append((received_at, read_at))
        return found

    def write(self, batch: BatchRows) -> None:
        """Write a batch in one transaction; rows already stored are skipped.

        Raises StoreError if the database refuses or cannot be reached (nothing is written).
        """
        meters = [m for m in batch.meters.values() if self._meter_news(m)]
        with self._session() as conn:
            with conn.transaction(), conn.cursor() as cur:
                if meters:
                    self._copy(cur, METERS_COPY, meters, METER_TYPES)
                    cur.execute(MERGE_METERS.encode())
                self._insert(conn, cur, self._frames, batch.frames)
                self._insert(conn, cur, self._readings, list(batch.readings.values()))
                self._copy_dead_letters(cur, batch.dead_letters)
        self._written.update((m.meter_id, m) for m in meters)

    def _meter_news(self, seen: MeterSeen) -> bool:
        """Whether ``seen`` tells the database more than this worker already wrote."""
        known = self._written.get(seen.meter_id)
        return (
            known is None
            or seen.first_seen_at < known.first_seen_at
            or seen.last_seen_at - known.last_seen_at >= SEEN_STEP
            or seen[1:6] != known[1:6]
        )

    def _insert(
        self,
        conn: psycopg.Connection[TupleRow],
        cur: psycopg.Cursor[TupleRow],
        target: Target,
        rows: Sequence[tuple[object, ...]],
    ) -> None:
        """COPY rows into ``target``, through staging if any may be stored already."""
        if not rows:
            return
        if target.staged_batches == 0:
            try:
                with conn.transaction():
                    self._copy(cur, target.copy_sql(target.table), rows, target.types)
                return
            except psycopg.errors.UniqueViolation:
                target.staged_batches = STAGED_BATCHES
        target.staged_batches -= 1
        self._copy(cur, target.copy_sql(target.stage), rows, target.types)
        cur.execute(target.merge_sql())

    @staticmethod
    def _copy(
        cur: psycopg.Cursor[TupleRow],
        statement: bytes,
        rows: Iterable[tuple[object, ...]],
        types: Sequence[str],
    ) -> None:
        # Binary COPY: the server parses neither timestamps nor numerics from text.
        with cur.copy(statement) as copy:
            copy.set_types(types)
            for row in rows:
                copy.write_row(row)

    @staticmethod
    def _copy_dead_letters(cur: psycopg.Cursor[TupleRow], rows: list[DeadLetterRow]) -> None:
        if not rows:
            return
        with cur.copy("COPY stage_dead_letters FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cur.execute(
            "INSERT INTO dead_letters (topic, gateway_id, payload, frame, reason, fingerprint)"
            " SELECT * FROM stage_dead_letters ON CONFLICT DO NOTHING"
        )
