"""The ingest side of PostgreSQL: meter keys, earlier receptions, and batch writes via COPY.

A batch is written in ONE transaction: COPY into temporary staging tables, then
``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` into the real tables, so a frame or reading
stored before (a redelivery, another gateway) is skipped without failing the batch. Every
psycopg error leaves this module as StoreError, and the connection is dropped so the next
call reconnects.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime

import psycopg
from psycopg.rows import TupleRow

from ingest.rows import DEDUP_WINDOW, ReadingRow
from meterflow.errors import StoreError

log = logging.getLogger(__name__)

KEY_RETRY_S = 60.0  # how long a "no key for this meter" answer is trusted

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

MERGE = """
INSERT INTO meters (meter_id, manufacturer, serial, version, device_type, driver,
                    first_seen_at, last_seen_at)
SELECT * FROM stage_meters ORDER BY meter_id
ON CONFLICT (meter_id) DO UPDATE SET
    last_seen_at = GREATEST(meters.last_seen_at, EXCLUDED.last_seen_at),
    first_seen_at = LEAST(meters.first_seen_at, EXCLUDED.first_seen_at),
    version = COALESCE(meters.version, EXCLUDED.version),
    device_type = COALESCE(meters.device_type, EXCLUDED.device_type),
    driver = COALESCE(EXCLUDED.driver, meters.driver);
INSERT INTO raw_frames (received_at, gateway_id, kind, frame_sha, frame, rssi_dbm, meter_id,
                        read_at)
SELECT * FROM stage_frames ON CONFLICT DO NOTHING;
INSERT INTO readings (meter_id, read_at, storage, tariff, subunit, quantity, function, unit,
                      value, received_at, gateway_id)
SELECT * FROM stage_readings ON CONFLICT DO NOTHING;
"""


@dataclasses.dataclass(frozen=True, slots=True)
class MeterSeen:
    """A meter heard in a batch, registered as ``unassigned`` if new."""

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
    """One connection to the meterflow database, owned by the ingest worker thread."""

    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo
        self._conn: psycopg.Connection[TupleRow] | None = None
        self._keys: dict[str, bytes] = {}
        self._missing: dict[str, float] = {}
        self._refreshed: dict[str, float] = {}

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
        with self._session() as conn, conn.transaction():
            with conn.cursor() as cur:
                self._copy(cur, "stage_frames", batch.frames)
                self._copy(cur, "stage_readings", batch.readings.values())
                self._copy(cur, "stage_meters", map(dataclasses.astuple, batch.meters.values()))
                cur.execute(MERGE.encode())
                self._copy_dead_letters(cur, batch.dead_letters)

    @staticmethod
    def _copy(
        cur: psycopg.Cursor[TupleRow], table: str, rows: Iterable[tuple[object, ...]]
    ) -> None:
        with cur.copy(f"COPY {table} FROM STDIN".encode()) as copy:
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
