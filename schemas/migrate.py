"""The migration runner: numbered SQL files applied once each, under an advisory lock.

One ordered list of files serves both storage modes. Inside a file, a line
``-- mode: timescale`` or ``-- mode: plain`` starts a section that runs only in that mode and
``-- mode: all`` one that runs in both; text before the first marker runs in both.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from importlib import resources
from typing import Literal, cast

import psycopg
from psycopg.rows import TupleRow

from meterflow.errors import MigrationError, StoreError

Mode = Literal["timescale", "plain"]
MODES: tuple[Mode, ...] = ("timescale", "plain")
# pg_advisory_lock key shared by every migrator ("mfmigrat" as a 64-bit integer).
LOCK_KEY = 0x6D666D6967726174
FILE_RE = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")
MARKER_RE = re.compile(r"--\s*mode:\s*(\w+)\s*$")

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, slots=True)
class Migration:
    """One numbered SQL file."""

    version: int
    name: str
    text: str

    @property
    def checksum(self) -> str:
        """SHA-256 of the file's text, recorded when applied."""
        return hashlib.sha256(self.text.encode()).hexdigest()

    def sql_for(self, mode: Mode) -> str:
        """Return the statements of this file that run in ``mode``.

        Raises MigrationError if a section marker names an unknown mode.
        """
        selected: list[str] = []
        current = "all"
        for line in self.text.splitlines():
            marker = MARKER_RE.fullmatch(line.strip())
            if marker:
                current = marker.group(1)
                if current not in ("all", *MODES):
                    raise MigrationError(f"{self.version:04d}_{self.name}: unknown mode {current}")
                continue
            if current in ("all", mode):
                selected.append(line)
        return "\n".join(selected).strip()


@dataclasses.dataclass(frozen=True, slots=True)
class AppliedMigration:
    """A row of ``schema_migrations``."""

    version: int
    name: str
    checksum: str
    applied_at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class MigrationStatus:
    """The storage mode and which migrations are applied or pending."""

    mode: Mode
    applied: tuple[AppliedMigration, ...]
    pending: tuple[Migration, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class MigrationReport:
    """What one ``migrate`` call did."""

    mode: Mode
    applied: tuple[int, ...]
    already_applied: tuple[int, ...]


def load_migrations() -> tuple[Migration, ...]:
    """Return the packaged migrations in version order.

    Raises MigrationError if two files share a version or a name is malformed.
    """
    found: dict[int, Migration] = {}
    folder = resources.files("schemas") / "migrations"
    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = FILE_RE.fullmatch(entry.name)
        if match is None:
            raise MigrationError(f"migration file {entry.name!r} is not NNNN_name.sql")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(f"two migration files have version {version}")
        found[version] = Migration(version, match.group(2), entry.read_text(encoding="utf-8"))
    return tuple(found[v] for v in sorted(found))


def detect_mode(conn: psycopg.Connection[TupleRow]) -> Mode:
    """Return ``timescale`` if TimescaleDB is installed or can be created here, else ``plain``."""
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'),"
        " EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'),"
        " current_setting('shared_preload_libraries') LIKE '%timescaledb%'"
    ).fetchone()
    installed, available, preloaded = cast(tuple[bool, bool, bool], row)
    return "timescale" if installed or (available and preloaded) else "plain"


def migrate(conninfo: str) -> MigrationReport:
    """Apply every pending migration, each in its own transaction, under the advisory lock.

    Raises MigrationError if an applied file changed or a migration fails, StoreError if the
    database cannot be reached.
    """
    with _connect(conninfo) as conn, _locked(conn):
        _ensure_table(conn)
        mode = _mode_of(conn)
        log.info("storage mode: %s", mode)
        applied = _applied(conn)
        done: list[int] = []
        for migration in load_migrations():
            if migration.version in applied:
                _check_unchanged(migration, applied[migration.version])
                continue
            _apply(conn, migration, mode)
            done.append(migration.version)
        return MigrationReport(mode, tuple(done), tuple(sorted(applied)))


def status(conninfo: str) -> MigrationStatus:
    """Return the storage mode and the applied and pending migrations.

    Raises MigrationError if an applied file changed, StoreError if the database is unreachable.
    """
    with _connect(conninfo) as conn:
        _ensure_table(conn)
        applied = _applied(conn)
        pending = []
        for migration in load_migrations():
            if migration.version in applied:
                _check_unchanged(migration, applied[migration.version])
            else:
                pending.append(migration)
        return MigrationStatus(
            _mode_of(conn), tuple(applied[v] for v in sorted(applied)), tuple(pending)
        )


def _connect(conninfo: str) -> psycopg.Connection[TupleRow]:
    try:
        return psycopg.connect(conninfo, autocommit=True)
    except psycopg.Error as exc:
        raise StoreError(f"cannot connect to the database: {exc}") from exc


@contextmanager
def _locked(conn: psycopg.Connection[TupleRow]) -> Iterator[None]:
    conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
    try:
        yield
    finally:
        if not conn.closed:
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))


def _ensure_table(conn: psycopg.Connection[TupleRow]) -> None:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version int PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now(), mode text NOT NULL)"
    )


def _mode_of(conn: psycopg.Connection[TupleRow]) -> Mode:
    """The mode recorded by the first migration, else the mode this database supports."""
    row = conn.execute("SELECT mode FROM schema_migrations ORDER BY version LIMIT 1").fetchone()
    detected = detect_mode(conn)
    if row is None:
        return detected
    recorded = cast(Mode, row[0])
    if recorded != detected:
        log.warning(
            "schema was built in %s mode; keeping it (database now supports %s)", recorded, detected
        )
    return recorded


def _applied(conn: psycopg.Connection[TupleRow]) -> dict[int, AppliedMigration]:
    rows = conn.execute("SELECT version, name, checksum, applied_at FROM schema_migrations")
    return {r[0]: AppliedMigration(r[0], r[1], r[2], r[3]) for r in rows.fetchall()}


def _check_unchanged(migration: Migration, applied: AppliedMigration) -> None:
    if migration.checksum != applied.checksum:
        raise MigrationError(
            f"migration {migration.version:04d}_{migration.name} changed after it was applied"
            f" (checksum {applied.checksum[:12]} in the database, {migration.checksum[:12]}"
            " on disk); add a new migration instead of editing an applied one"
        )


def _apply(conn: psycopg.Connection[TupleRow], migration: Migration, mode: Mode) -> None:
    label = f"{migration.version:04d}_{migration.name}"
    sql = migration.sql_for(mode)
    try:
        with conn.transaction():
            if sql:
                conn.execute(sql.encode())
            conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum, mode)"
                " VALUES (%s, %s, %s, %s)",
                (migration.version, migration.name, migration.checksum, mode),
            )
    except psycopg.Error as exc:
        raise MigrationError(f"migration {label} failed: {exc}") from exc
    log.info("applied migration %s (%s mode)", label, mode)
