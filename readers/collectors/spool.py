"""A durable on-disk FIFO of raw frames: one SQLite file per collector.

Frames are written in WAL mode with ``synchronous=FULL``, so a frame that ``put`` returned
for survives a killed process or a power cut. The spool is bounded: when it holds
``max_frames`` frames, the oldest are dropped to make room, each drop is logged at ERROR and
counted in ``dropped`` (persisted in the file). Dropping the oldest keeps the newest
cumulative readings, which carry the meter's current state; a collector keeps reading while
the broker is away rather than stopping.
"""

from __future__ import annotations

import dataclasses
import logging
import sqlite3
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from meterflow.errors import StoreError
from schemas.envelope import RawFrame

log = logging.getLogger(__name__)

DEFAULT_MAX_FRAMES = 1_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS frames (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received_us INTEGER NOT NULL,
    data BLOB NOT NULL,
    rssi_dbm INTEGER
);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT OR IGNORE INTO counters (name, value) VALUES ('dropped', 0);
"""


@dataclasses.dataclass(frozen=True, slots=True)
class SpooledFrame:
    """A frame waiting in the spool, with its position (ids only grow)."""

    id: int
    frame: RawFrame


class Spool:
    """The FIFO of frames not yet acknowledged by the broker; safe to share between threads."""

    def __init__(self, path: Path | str, max_frames: int = DEFAULT_MAX_FRAMES) -> None:
        """Open or create the spool file at ``path``.

        Raises StoreError if the file cannot be opened or is not a spool.
        """
        if max_frames < 1:
            raise StoreError(f"spool max_frames must be at least 1, got {max_frames}")
        self.path = Path(path)
        self.max_frames = max_frames
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open spool {self.path}: {exc}") from exc
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            self._count = int(self._db.execute("SELECT count(*) FROM frames").fetchone()[0])
        except sqlite3.Error as exc:
            self._db.close()
            raise StoreError(f"{self.path} is not a usable spool: {exc}") from exc

    def put(self, frames: Sequence[RawFrame]) -> None:
        """Append ``frames`` durably, dropping the oldest if the spool would overflow.

        Raises StoreError if the file cannot be written (disk full, read-only).
        """
        if not frames:
            return
        rows = [(_to_us(f.received_at), f.data, f.rssi_dbm) for f in frames]
        with self._lock:
            overflow = max(0, self._count + len(rows) - self.max_frames)
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany(
                    "INSERT INTO frames (received_us, data, rssi_dbm) VALUES (?, ?, ?)", rows
                )
                if overflow:
                    self._drop_oldest(overflow)
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise StoreError(f"cannot write spool {self.path}: {exc}") from exc
            self._count += len(rows) - overflow
        if overflow:
            log.error(
                "spool %s full (%d frames): dropped the %d oldest frames, %d dropped in all",
                self.path,
                self.max_frames,
                overflow,
                self.dropped,
            )

    def peek(self, n: int, after: int = 0) -> list[SpooledFrame]:
        """Return up to ``n`` of the oldest frames whose id is greater than ``after``."""
        with self._lock:
            try:
                rows = self._db.execute(
                    "SELECT id, received_us, data, rssi_dbm FROM frames"
                    " WHERE id > ? ORDER BY id LIMIT ?",
                    (after, n),
                ).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"cannot read spool {self.path}: {exc}") from exc
        return [SpooledFrame(row[0], RawFrame(_from_us(row[1]), row[2], row[3])) for row in rows]

    def remove(self, upto_id: int) -> None:
        """Delete every frame whose id is at most ``upto_id`` (they were delivered).

        Raises StoreError if the file cannot be written.
        """
        with self._lock:
            try:
                cursor = self._db.execute("DELETE FROM frames WHERE id <= ?", (upto_id,))
            except sqlite3.Error as exc:
                raise StoreError(f"cannot write spool {self.path}: {exc}") from exc
            self._count -= cursor.rowcount

    def __len__(self) -> int:
        """Return how many frames wait in the spool."""
        return self._count

    @property
    def dropped(self) -> int:
        """How many frames were dropped because the spool was full, over its whole life."""
        with self._lock:
            row = self._db.execute("SELECT value FROM counters WHERE name = 'dropped'").fetchone()
        return int(row[0])

    def close(self) -> None:
        """Close the file; frames stay in it for the next run."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _drop_oldest(self, n: int) -> None:
        self._db.execute(
            "DELETE FROM frames WHERE id IN (SELECT id FROM frames ORDER BY id LIMIT ?)", (n,)
        )
        self._db.execute("UPDATE counters SET value = value + ? WHERE name = 'dropped'", (n,))

    def _rollback(self) -> None:
        try:
            self._db.execute("ROLLBACK")
        except sqlite3.Error:
            log.debug("rollback of spool %s failed after an error", self.path)


def _to_us(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


def _from_us(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)
