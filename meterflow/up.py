"""``meterflow up``: the whole platform on one machine, on embedded defaults.

Starts PostgreSQL (``pgserver``) unless METERFLOW_DATABASE_URL is set and a local broker
unless METERFLOW_MQTT_URL is set, migrates, loads the demo fleet's meter keys, then runs a
simulated radio fleet, a virtual M-Bus bus with its collector, ingest, the billing scheduler,
the notification sender with a local SMTP sink and SMS gateway simulator, the payment-gateway
sandbox and the portal, printing a line of figures until Ctrl-C. Once the first invoices are
out it imports a demo bank statement (``billing_engine.bank.demo``).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

import psycopg

from meterflow.local import embedded_postgres, free_port, start_broker
from meterflow.settings import Settings
from meterflow.supervisor import Supervisor

log = logging.getLogger(__name__)

FIGURES_SQL = """
SELECT (SELECT count(*) FROM raw_frames),
       (SELECT count(*) FROM readings),
       (SELECT count(*) FROM dead_letters),
       (SELECT count(*) FROM invoices WHERE status = 'issued')
"""
DEMO_EVERY_S = 15.0


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
    stop = _StopFlag()
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
        portal_url = _start_parts(args, supervisor, settings)
        _watch(database_url, supervisor, stop, args.duration, portal_url, settings)
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
    command = [sys.executable, "-m", "meterflow", *args]
    subprocess.run(command, env={**os.environ, **supervisor.env}, check=True)


def _load_demo_keys(args: argparse.Namespace, supervisor: Supervisor, data_dir: Path) -> None:
    keys = data_dir / "demo" / "meter-keys.csv"
    keys.parent.mkdir(parents=True, exist_ok=True)
    fleet = ["--meters", str(args.meters), "--gateways", str(args.gateways)]
    _run(supervisor, "simulate", *fleet, "--keys-out", str(keys), "--dry-run", "--duration", "0")
    _run(supervisor, "meters", "import", str(keys))


def _start_parts(args: argparse.Namespace, supervisor: Supervisor, settings: Settings) -> str:
    """Start every long-running part but the billing scheduler; return the portal's URL."""
    smtp_port, sms_port, p24_port = free_port(8025), free_port(8026), free_port(8024)
    portal_port = free_port(8000)
    portal_url = f"http://127.0.0.1:{portal_port}"
    supervisor.env.update(
        METERFLOW_NOTIFY_SMTP_URL=f"smtp://127.0.0.1:{smtp_port}",
        METERFLOW_NOTIFY_SMS_URL=f"http://127.0.0.1:{sms_port}",
        METERFLOW_P24_BASE_URL=f"http://127.0.0.1:{p24_port}",
        METERFLOW_PORTAL_BIND=f"127.0.0.1:{portal_port}",
        METERFLOW_PORTAL_BASE_URL=portal_url,
        METERFLOW_PORTAL_COOKIE_SECURE="false",
    )
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
    supervisor.meterflow("mail-sink", "notify", "sink", "--port", str(smtp_port))
    supervisor.meterflow(
        "sms-gateway",
        "notify",
        "sms-gateway",
        "--port",
        str(sms_port),
        "--journal",
        str(settings.data_dir.resolve() / "sms.jsonl"),
    )
    supervisor.meterflow("notify", "notify", "send")
    supervisor.meterflow("p24-sandbox", "p24-sandbox", "--port", str(p24_port))
    supervisor.meterflow("portal", "portal")
    return portal_url


def _watch(
    database_url: str,
    supervisor: Supervisor,
    stop: _StopFlag,
    duration: float | None,
    portal_url: str,
    settings: Settings,
) -> None:
    """Print frames/s, readings, dead letters and invoices every 2 s until stopped.

    Until the demo customers exist, every 15 s it seeds contracts for the meters that have
    read; once there are some, it makes the demo logins and starts the billing scheduler;
    once the first invoices are out, it imports the demo bank statement.
    """
    print("running; Ctrl-C stops everything. Logs in", supervisor.log_dir)
    data_dir = settings.data_dir.resolve()
    started = time.monotonic()
    last_frames, last_time, next_seed = 0, started, started + 10.0
    demo_ready = statement_done = False
    with psycopg.connect(database_url, autocommit=True) as conn:
        while not stop.set and (duration is None or time.monotonic() - started < duration):
            time.sleep(2.0)
            now = time.monotonic()
            if not demo_ready and now >= next_seed:
                demo_ready = _seed_demo(database_url, supervisor, portal_url, data_dir)
                next_seed = now + DEMO_EVERY_S
            elif demo_ready and not statement_done:
                statement_done = _seed_statement(database_url, settings, portal_url)
            row = conn.execute(FIGURES_SQL).fetchone()
            assert row is not None
            frames, readings, dead, invoices = row
            rate = (frames - last_frames) / (now - last_time)
            last_frames, last_time = frames, now
            print(
                f"\rframes/s {rate:7.1f} | frames {frames:>8} | readings {readings:>9} | "
                f"dead letters {dead:>5} | invoices {invoices:>5}",
                end="",
                flush=True,
            )
            for name, code in supervisor.failed():
                log.error(
                    "%s exited with code %s; see %s/%s.log", name, code, supervisor.log_dir, name
                )
                stop.set = True


def _seed_demo(database_url: str, supervisor: Supervisor, portal_url: str, data_dir: Path) -> bool:
    """Seed demo contracts and logins; start the scheduler once customers exist."""
    from billing_engine.demo import seed_demo
    from portal.demo import seed_demo_logins

    seed_demo(database_url)
    logins = seed_demo_logins(database_url, data_dir)
    if not any(login.role == "customer" for login in logins):
        return False
    supervisor.meterflow("billing", "billing", "scheduler", "--settle-on-start")
    print(f"\n\nportal: {portal_url}  (staff console: {portal_url}/staff/)")
    for login in logins:
        print(f"  {login.role:<14} {login.email:<24} password {login.password}")
    print(f"mail sent by the platform: {data_dir / 'mail'}; SMS: {data_dir / 'sms.jsonl'}\n")
    return True


def _seed_statement(database_url: str, settings: Settings, portal_url: str) -> bool:
    """Import the demo bank statement once invoices are out; True when it is imported."""
    from billing_engine.bank.demo import seed_demo_statement

    path = settings.data_dir.resolve() / "demo" / "bank-statement.mt940"
    result = seed_demo_statement(
        database_url, settings.bank_sort_code, settings.bank_account_prefix, path
    )
    if result is None:
        return False
    print(
        f"\nbank statement {path}: {result.booked} booked, {result.unmatched} unmatched,"
        f" {result.duplicates} imported before; unmatched credits for staff:"
        f" {portal_url}/staff/payments/unmatched\n"
    )
    return True
