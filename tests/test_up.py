"""``meterflow up`` brings the whole platform up, stores frames, bills, imports the demo bank
statement, serves and stops."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.conftest import ADMIN_URL


@pytest.fixture
def own_database() -> Iterator[str]:
    """A database of this test alone: ``up`` seeds demo data that other tests must not see."""
    name = f"mf_up_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield f"{ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.slow
def test_up_runs_the_platform_and_stops_cleanly(own_database: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "METERFLOW_DATABASE_URL": own_database,
        "METERFLOW_DATA_DIR": str(tmp_path / "var"),
    }
    env.pop("METERFLOW_MQTT_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "meterflow", "up", "--meters", "40", "--duration", "45"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "storage mode: plain" in result.stdout
    assert "MQTT broker: local" in result.stdout
    assert "portal: http://127.0.0.1:" in result.stdout
    with psycopg.connect(own_database) as conn:
        frames, readings, invoices = conn.execute(
            "SELECT (SELECT count(*) FROM raw_frames), (SELECT count(*) FROM readings),"
            " (SELECT count(*) FROM invoices WHERE status = 'issued')"
        ).fetchone() or (0, 0, 0)
        credits = dict(
            conn.execute("SELECT state, count(*) FROM statement_items GROUP BY state").fetchall()
        )
    assert frames > 0 and readings > frames
    assert invoices > 0
    # The demo bank statement: some credits booked by virtual account, three left for staff.
    assert "bank statement " in result.stdout
    assert (tmp_path / "var" / "demo" / "bank-statement.mt940").exists()
    assert credits == {"booked": credits["booked"], "unmatched": 3, "ignored": 1}
    assert credits["booked"] > 0
    logs = tmp_path / "var" / "logs"
    for log in logs.glob("*.log"):
        assert "Traceback" not in log.read_text(errors="replace"), log.name
