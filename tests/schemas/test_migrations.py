"""The migration runner against a real PostgreSQL: idempotent, locked, checksum-guarded."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pglast
import psycopg
import pytest

from meterflow.errors import MigrationError
from schemas.migrate import detect_mode, load_migrations, migrate, status


@pytest.fixture
def fresh_db(database_url: str) -> Iterator[str]:
    """An empty database of one test, on the server of the run's database."""
    base = database_url.rsplit("/", 1)[0]
    admin_url = f"{base}/postgres"
    name = f"mf_test_mig_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield f"{base}/{name}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_migrations_apply_once_and_then_are_idempotent(fresh_db: str) -> None:
    versions = tuple(m.version for m in load_migrations())
    first = migrate(fresh_db)
    second = migrate(fresh_db)
    assert first.applied == versions
    assert second.applied == ()
    assert second.already_applied == versions


def test_status_shows_mode_applied_and_pending(fresh_db: str) -> None:
    before = status(fresh_db)
    migrate(fresh_db)
    after = status(fresh_db)
    assert before.mode == after.mode == "plain"
    assert len(before.pending) == len(load_migrations()) and before.applied == ()
    assert after.pending == () and [a.version for a in after.applied] == [
        m.version for m in load_migrations()
    ]


def test_detect_mode_is_plain_without_timescaledb(fresh_db: str) -> None:
    with psycopg.connect(fresh_db) as conn:
        assert detect_mode(conn) == "plain"


def test_concurrent_migrators_serialise(fresh_db: str) -> None:
    reports = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            reports.append(migrate(fresh_db))
        except BaseException as exc:  # noqa: B902 - surfaced by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    applied = sorted(len(r.applied) for r in reports)
    assert applied == [0, len(load_migrations())]


def test_changed_applied_migration_is_refused(fresh_db: str) -> None:
    migrate(fresh_db)
    with psycopg.connect(fresh_db) as conn:
        conn.execute("UPDATE schema_migrations SET checksum = 'edited' WHERE version = 2")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        migrate(fresh_db)
    with pytest.raises(MigrationError, match="0002_time_series"):
        status(fresh_db)


@pytest.mark.parametrize("mode", ["timescale", "plain"])
def test_every_migration_parses_in_both_modes(mode: str) -> None:
    for migration in load_migrations():
        sql = migration.sql_for(mode)  # type: ignore[arg-type]
        assert pglast.parse_sql(sql), migration.name


def test_runner_selects_each_modes_statements() -> None:
    by_name = {m.name: m for m in load_migrations()}
    series = by_name["time_series"]
    timescale, plain = series.sql_for("timescale"), series.sql_for("plain")
    assert "create_hypertable('readings', by_range('read_at'" in timescale
    assert "add_compression_policy('readings'" in timescale
    assert "add_retention_policy('raw_frames'" in timescale
    assert "add_retention_policy('readings'" not in timescale
    assert "PARTITION BY" not in timescale and "create_hypertable" not in plain
    assert plain.count("PARTITION BY RANGE") == 2 and plain.count("DEFAULT;") == 2
    daily = by_name["daily_consumption"]
    assert "timescaledb.continuous" in daily.sql_for("timescale")
    assert "add_continuous_aggregate_policy" in daily.sql_for("timescale")
    assert "REFRESH MATERIALIZED VIEW CONCURRENTLY" in daily.sql_for("plain")
    assert "CREATE EXTENSION IF NOT EXISTS timescaledb" in by_name["core"].sql_for("timescale")
    assert "timescaledb" not in by_name["core"].sql_for("plain")


def _reading(conn: psycopg.Connection[object], meter: str, read_at: datetime, value: str) -> None:
    conn.execute(
        "INSERT INTO readings (meter_id, read_at, storage, tariff, subunit, quantity, function,"
        " unit, value, received_at) VALUES (%s, %s, 0, 0, 0, 'volume', 'instantaneous', 'm3',"
        " %s, now())",
        (meter, read_at, value),
    )


def test_plain_mode_has_monthly_partitions_and_default_catches_the_rest(fresh_db: str) -> None:
    migrate(fresh_db)
    month = datetime.now(UTC).strftime("%Y_%m")
    with psycopg.connect(fresh_db) as conn:
        parts = {
            r[0]
            for r in conn.execute(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                " WHERE i.inhparent = 'readings'::regclass"
            )
        }
        assert {f"readings_{month}", "readings_default"} <= parts
        _reading(conn, "KAM-00000001", datetime(2099, 5, 1, tzinfo=UTC), "1.000")
        _reading(conn, "KAM-00000001", datetime(1999, 5, 1, tzinfo=UTC), "0.500")
        in_default = conn.execute("SELECT count(*) FROM readings_default").fetchone()
        assert in_default == (2,)


def test_new_partition_takes_over_rows_from_the_default(fresh_db: str) -> None:
    migrate(fresh_db)
    with psycopg.connect(fresh_db) as conn:
        _reading(conn, "KAM-00000001", datetime(2030, 3, 15, tzinfo=UTC), "7.5")
        conn.execute("SELECT ensure_month_partition('readings', DATE '2030-03-01')")
        moved = conn.execute("SELECT value FROM readings_2030_03").fetchall()
        left = conn.execute("SELECT count(*) FROM readings_default").fetchone()
        assert [str(v[0]) for v in moved] == ["7.5"] and left == (0,)
        assert conn.execute("SELECT ensure_time_partitions(3)").fetchone() == (0,)


def test_refresh_daily_consumption_reports_first_and_last_volume(fresh_db: str) -> None:
    migrate(fresh_db)
    with psycopg.connect(fresh_db) as conn:
        # 23:30 UTC on 1 March is already 2 March in Warsaw.
        _reading(conn, "APA-00000002", datetime(2026, 3, 1, 23, 30, tzinfo=UTC), "10.250")
        _reading(conn, "APA-00000002", datetime(2026, 3, 2, 12, 0, tzinfo=UTC), "10.750")
        _reading(conn, "APA-00000002", datetime(2026, 3, 2, 23, 30, tzinfo=UTC), "11.000")
        conn.commit()
        conn.execute("SELECT refresh_daily_consumption()")
        rows = conn.execute(
            "SELECT day::text, first_volume::text, last_volume::text, readings"
            " FROM daily_consumption WHERE meter_id = 'APA-00000002' ORDER BY day"
        ).fetchall()
    assert rows == [("2026-03-02", "10.250", "10.750", 2), ("2026-03-03", "11.000", "11.000", 1)]
