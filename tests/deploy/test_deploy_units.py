"""The systemd units of deploy/systemd pass `systemd-analyze verify`."""

from __future__ import annotations

import configparser
import shutil
import subprocess
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[2] / "deploy" / "systemd"
INSTANCES = {"meterflow-ingest@.service": "9101", "meterflow-collect-mbus@.service": "boiler"}


def _read(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(path)
    return parser


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_units_verify(tmp_path: Path) -> None:
    names = []
    for unit in UNITS.iterdir():
        name = (
            unit.name.replace("@.", f"@{INSTANCES[unit.name]}.") if "@." in unit.name else unit.name
        )
        shutil.copy(unit, tmp_path / name)
        if "@." in unit.name:
            shutil.copy(unit, tmp_path / unit.name)
        names.append(name)
    result = subprocess.run(
        ["systemd-analyze", "verify", *names], cwd=tmp_path, capture_output=True, text=True
    )
    # The binaries live in /opt/meterflow on a production host, not on a test machine.
    problems = [
        line
        for line in result.stderr.splitlines()
        if line and "/opt/meterflow/venv/bin/" not in line
    ]
    assert problems == []


def test_every_service_reads_the_shared_environment_file() -> None:
    services = sorted(UNITS.glob("*.service"))
    assert {p.name for p in services} == {
        "meterflow-ingest@.service",
        "meterflow-billing.service",
        "meterflow-portal.service",
        "meterflow-collect-mbus@.service",
    }
    for path in services:
        text = path.read_text()
        assert "EnvironmentFile=/etc/meterflow/meterflow.env\n" in text, path.name
        unit = _read(path)
        assert unit["Service"]["User"] == "meterflow", path.name
        assert unit["Install"]["WantedBy"] == "meterflow.target", path.name


def test_ingest_workers_get_distinct_client_ids_and_metrics_ports() -> None:
    text = (UNITS / "meterflow-ingest@.service").read_text()
    assert "Environment=METERFLOW_INGEST_CLIENT_ID=ingest-%i\n" in text
    assert "Environment=METERFLOW_METRICS_PORT=%i\n" in text
    assert "ExecStart=/opt/meterflow/venv/bin/meterflow ingest\n" in text
