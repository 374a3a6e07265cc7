"""Fleet mode: the same seed gives the same fleet, the key file imports, `simulate` publishes."""

from __future__ import annotations

import argparse
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from radio_helpers import Subscriber

from ingest.fleet import import_meter_keys
from ingest.meter_keys import load_key_file
from meterflow.errors import ConfigError
from meterflow.settings import Settings
from readers.model import Header
from readers.wmbus import decode_wmbus
from schemas.envelope import parse_envelope
from simulators import cli
from simulators.fleet import FleetConfig, build_radio, write_key_file

START = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    return parser.parse_args(argv)


def test_same_seed_builds_the_same_fleet() -> None:
    a = build_radio(FleetConfig(meters=50, gateways=3, seed=4), START)
    b = build_radio(FleetConfig(meters=50, gateways=3, seed=4), START)
    assert [(m.header, m.key) for m in a.meters] == [(m.header, m.key) for m in b.meters]
    assert [a.coverage(i) for i in range(50)] == [b.coverage(i) for i in range(50)]
    assert len({m.key for m in a.meters}) == 50
    assert len({m.header.manufacturer for m in a.meters}) > 1


@pytest.mark.parametrize(
    "config",
    [FleetConfig(meters=0), FleetConfig(meters=5, gateways=0), FleetConfig(meters=5, speed=0)],
)
def test_out_of_range_fleets_are_refused(config: FleetConfig) -> None:
    with pytest.raises(ConfigError):
        build_radio(config, START)


def test_key_file_imports_and_decrypts_the_fleet(migrated_db: str, tmp_path: Path) -> None:
    radio = build_radio(FleetConfig(meters=40, gateways=2, seed=77), START)
    path = tmp_path / "keys.csv"
    assert write_key_file(path, radio.meters) == 40
    keys = load_key_file(path)
    assert {(k.meter_id, k.aes_key) for k in keys} == {
        (m.header.meter_id, m.key) for m in radio.meters
    }
    with psycopg.connect(migrated_db) as conn:
        import_meter_keys(conn, keys)
        stored: dict[str, bytes] = dict(
            conn.execute(
                "SELECT meter_id, aes_key FROM meters WHERE meter_id = ANY(%s)",
                [[k.meter_id for k in keys]],
            ).fetchall()
        )
    assert {meter_id: bytes(key) for meter_id, key in stored.items()} == {
        k.meter_id: k.aes_key for k in keys
    }
    by_id = {k.meter_id: k.aes_key for k in keys}

    def key_for(header: Header) -> bytes | None:
        return by_id.get(header.meter_id)

    for frames in radio.step(START + timedelta(minutes=2)).values():
        for frame in frames:
            assert decode_wmbus(frame.data, key_for).header.device_type == 0x07


def test_simulate_publishes_and_prints_its_figures(
    mqtt_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prefix = f"gw-sim-{uuid.uuid4().hex[:6]}"
    subscriber = Subscriber(mqtt_url, f"mf/v1/{prefix}-0001/wmbus")
    settings = Settings(mqtt_url=mqtt_url, data_dir=tmp_path)
    args = parse(
        ["simulate", "--meters", "30", "--interval", "60", "--speed", "120", "--duration", "1.5"]
        + ["--keys-out", str(tmp_path / "k.csv"), "--start", "2026-05-04T12:00:00Z"]
        + ["--gateway-prefix", prefix]
    )
    try:
        assert cli.simulate(args, settings) == 0
        out = capsys.readouterr().out
        assert subscriber.wait_for(lambda msgs: len(msgs) > 0)
    finally:
        subscriber.close()
    assert "simulate: done:" in out and "/s sent" in out
    frames = [f for _, p in subscriber.received() for f in parse_envelope(p).frames]
    assert frames and all(f.received_at >= START for f in frames)
    assert len(load_key_file(tmp_path / "k.csv")) == 30


def test_zero_duration_dry_run_only_writes_the_key_file(tmp_path: Path) -> None:
    keys = tmp_path / "demo" / "keys.csv"
    argv = ["simulate", "--meters", "12", "--dry-run", "--duration", "0", "--keys-out", str(keys)]
    assert cli.simulate(parse(argv), Settings(data_dir=tmp_path)) == 0
    assert len(load_key_file(keys)) == 12


def test_simulate_needs_a_broker_unless_dry_run(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="METERFLOW_MQTT_URL"):
        cli.simulate(parse(["simulate", "--meters", "5"]), Settings(data_dir=tmp_path))
