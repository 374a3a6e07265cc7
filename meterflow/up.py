"""``meterflow up``: the whole platform on one machine, on embedded defaults.

Starts PostgreSQL (``pgserver``) unless METERFLOW_DATABASE_URL is set and a local broker
unless METERFLOW_MQTT_URL is set, migrates, loads the demo fleet's meter keys, then runs a
simulated radio fleet, a virtual M-Bus bus with its collector, and ingest, printing a line of
figures until Ctrl-C.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

import psycopg

from meterflow.errors import MeterflowError
from meterflow.local import embedded_postgres, free_port, start_broker
from meterflow.settings import Settings
from meterflow.supervisor import Supervisor

log = logging.getLogger(__name__)

FIGURES_SQL = """
SELECT (SELECT count(*) FROM raw_frames),
       (SELECT count(*) FROM readings),
       (SELECT count(*) FROM dead_letters),
       (SELECT count(*) FROM meters)
"""


def register(subparsers: Any) -> None:
    """Add the ``up`` sub-command."""
    parser = subparsers.add_parser(
        "up",
        help="run the whole platform on embedded defaults (Ctrl-C stops it)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--meters", type=int, default=300, help="simulated radio meters")
    parser.add_argument("--gateways", type=int, default=3, help="simulated radio gateways")
    parser.add_argument("--mbus-meters", type=int, default=5, help="simulated wired meters")
    parser.add_argument("--speed", type=float, default=60.0, help="simulated s per real s")
    parser.add_argument("--duration", type=float, help="stop after S seconds (default: Ctrl-C)")
    parser.set_defaults(handler=up)


def up(args: argparse.Namespace, settings: Settings) -> int:
    """Run everything until Ctrl-C, SIGTERM or ``--duration``; stop it all cleanly."""
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    data_dir = settings.data_dir.resolve()
    supervisor = Supervisor(data_dir / "logs", {})
    server = None
    stopping = _StopFlag()
    try:
        database_url = settings.database_url
        if database_url is None:
            database_url, server = embedded_postgres(data_dir / "postgres")
            print(f"PostgreSQL: embedded (pgserver) in {data_dir / 'postgres'}")
        mqtt_url, protocol = settings.mqtt_url, settings.mqtt_protocol
        if mqtt_url is None:
            mqtt_url, protocol = start_broker(supervisor, data_dir / "broker")
            print(f"MQTT broker: local at {mqtt_url} (MQTT {protocol})")
        supervisor.env.update(
            METERFLOW_DATABASE_URL=database_url,
            METERFLOW_MQTT_URL=mqtt_url,
            METERFLOW_MQTT_PROTOCOL=protocol,
            METERFLOW_DATA_DIR=str(data_dir),
            METERFLOW_INGEST_SHARED="true" if protocol == "5" else "false",
        )
        _migrate(database_url)
        _load_demo_keys(args, supervisor, data_dir)
        _start_parts(args, supervisor, data_dir)
        _watch(database_url, supervisor, stopping, args.duration)
    except MeterflowError:
        raise
    finally:
        print("\nstopping...", file=sys.stderr)
        supervisor.stop()
        if server is not None:
            server.cleanup()
    return 0


class _StopFlag:
    """Set by SIGINT or SIGTERM; the figures loop ends when it is set."""

    def __init__(self) -> None:
        self.set = False
        signal.signal(signal.SIGINT, self._handle)
        signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.set = True


def _migrate(database_url: str) -> None:
    from schemas.migrate import migrate

    report = migrate(database_url)
    print(f"storage mode: {report.mode}; migrations applied now: {len(report.applied)}")


def _run(supervisor: Supervisor, *args: str) -> None:
    """Run ``meterflow ARGS`` to completion with the platform's environment."""
    import subprocess

    env = {**__import__("os").environ, **supervisor.env}
    subprocess.run([sys.executable, "-m", "meterflow", *args], env=env, check=True)


def _load_demo_keys(args: argparse.Namespace, supervisor: Supervisor, data_dir: Path) -> None:
    keys = data_dir / "demo" / "meter-keys.csv"
    keys.parent.mkdir(parents=True, exist_ok=True)
    _run(
        supervisor,
        "simulate",
        "--meters",
        str(args.meters),
        "--gateways",
        str(args.gateways),
        "--keys-out",
        str(keys),
        "--dry-run",
        "--duration",
        "0",
    )
    _run(supervisor, "meters", "import", str(keys))


def _start_parts(args: argparse.Namespace, supervisor: Supervisor, data_dir: Path) -> None:
    supervisor.meterflow("ingest", "ingest")
    supervisor.meterflow(
        "simulate",
        "simulate",
        "--meters",
        str(args.meters),
        "--gateways",
        str(args.gateways),
        "--speed",
        str(args.speed),
        "--corrupt-rate",
        "0.002",
    )
    bus_port = free_port(0)
    supervisor.meterflow(
        "mbus-bus", "simulate-mbus", "--port", str(bus_port), "--meters", str(args.mbus_meters)
    )
    time.sleep(1.0)
    supervisor.meterflow(
        "collect-mbus",
        "collect",
        "mbus",
        "--port",
        f"socket://127.0.0.1:{bus_port}",
        "--scan",
        "--gateway",
        "wired-01",
        "--interval",
        "1",
    )


def _watch(
    database_url: str, supervisor: Supervisor, stop: _StopFlag, duration: float | None
) -> None:
    """Print frames/s, readings stored and dead letters every 2 s until stopped."""
    print("running; Ctrl-C stops everything. Logs in", supervisor.log_dir)
    started = time.monotonic()
    last_frames, last_time = 0, started
    with psycopg.connect(database_url, autocommit=True) as conn:
        while not stop.set and (duration is None or time.monotonic() - started < duration):
            time.sleep(2.0)
            row = conn.execute(FIGURES_SQL).fetchone()
            assert row is not None
            frames, readings, dead, meters = row
            now = time.monotonic()
            rate = (frames - last_frames) / (now - last_time)
            last_frames, last_time = frames, now
            print(
                f"\rframes/s {rate:8.1f} | frames {frames:>9} | readings {readings:>10} | "
                f"dead letters {dead:>6} | meters {meters:>6}",
                end="",
                flush=True,
            )
            for name, code in supervisor.failed():
                log.error(
                    "%s exited with code %s; see %s/%s.log", name, code, supervisor.log_dir, name
                )
                stop.set = True
