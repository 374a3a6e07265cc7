"""``meterflow simulate``: a fleet of virtual radio meters and gateways publishing to the broker."""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meterflow.errors import ConfigError
from meterflow.settings import Settings

if TYPE_CHECKING:
    from readers.collectors.publisher import Command, FramePublisher
    from schemas.envelope import RawFrame
    from simulators.fleet import Figures
    from simulators.radio_gateway import FrameSink, SimClock, VirtualRadio


def register(subparsers: Any) -> None:
    """Add the ``simulate`` sub-command."""
    parser = subparsers.add_parser(
        "simulate",
        help="run virtual water meters and radio gateways that publish encrypted telegrams",
        description="Simulate a fleet of wireless M-Bus water meters (OMS mode 5, per-meter "
        "keys) heard by virtual gateways that publish to METERFLOW_MQTT_URL.",
    )
    parser.add_argument("--meters", type=int, required=True, metavar="N", help="meters (≤ 1e6)")
    parser.add_argument("--gateways", type=int, default=1, metavar="G", help="gateways")
    parser.add_argument(
        "--interval", type=float, default=120.0, metavar="S", help="simulated s between telegrams"
    )
    parser.add_argument(
        "--speed", type=float, default=1.0, metavar="X", help="simulated seconds per real second"
    )
    parser.add_argument(
        "--duration", type=float, metavar="S", help="stop after S real seconds (0: keys only)"
    )
    parser.add_argument("--keys-out", type=Path, metavar="FILE", help="write the meters' key file")
    parser.add_argument("--seed", type=int, default=1, help="fleet seed (same seed, same fleet)")
    parser.add_argument("--start", help="simulated start time, ISO 8601 (default: now)")
    parser.add_argument(
        "--corrupt-rate", type=float, default=0.0, metavar="P", help="share of bad-CRC frames"
    )
    parser.add_argument(
        "--overlap", type=float, default=0.1, metavar="P", help="share heard by two gateways"
    )
    parser.add_argument(
        "--gateway-prefix", default="gw-sim", metavar="NAME", help="gateway ids: NAME-0001..."
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="generate telegrams but publish nothing"
    )
    parser.set_defaults(handler=simulate)


def _start(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"--start {text!r} is not an ISO 8601 time") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class _Discard:
    """A frame sink of the dry run: counts nothing, sends nothing."""

    def publish(self, frames: Sequence[RawFrame]) -> None:
        """Drop ``frames``."""


def simulate(args: argparse.Namespace, settings: Settings) -> int:
    """Run the fleet until Ctrl-C or ``--duration``; print a line of figures every 5 s."""
    from simulators.fleet import FleetConfig, build_radio, run_fleet, write_key_file
    from simulators.radio_gateway import SimClock

    config = FleetConfig(
        meters=args.meters,
        gateways=args.gateways,
        interval_s=args.interval,
        speed=args.speed,
        duration_s=args.duration,
        seed=args.seed,
        overlap=args.overlap,
        corrupt_rate=args.corrupt_rate,
        gateway_prefix=args.gateway_prefix,
    )
    if not args.dry_run and not settings.mqtt_url:
        raise ConfigError("set METERFLOW_MQTT_URL (e.g. mqtt://127.0.0.1:1883) or use --dry-run")
    start = _start(args.start)
    radio = build_radio(config, start)
    if args.keys_out is not None:
        rows = write_key_file(args.keys_out, radio.meters)
        print(f"simulate: wrote {rows} meter keys to {args.keys_out}", file=sys.stderr)
    if config.duration_s == 0:
        return 0  # only the key file was asked for
    clock = SimClock(start, config.speed)
    publishers = {} if args.dry_run else _publishers(radio, clock, settings)
    sinks: Mapping[str, FrameSink] = publishers or {g: _Discard() for g in radio.gateways}
    stop = threading.Event()
    try:
        figures = run_fleet(
            radio,
            sinks,
            clock,
            stop,
            duration_s=config.duration_s,
            report=_print,
            pending=lambda: sum(p.pending() for p in publishers.values()),
        )
    except KeyboardInterrupt:
        stop.set()
        figures = None
    finally:
        for publisher in publishers.values():
            publisher.flush(10)
            publisher.close()
    if figures is not None:
        print(f"simulate: done: {figures.line()}")
    return 0


def _print(figures: Figures) -> None:
    print(figures.line(), flush=True)


def _publishers(
    radio: VirtualRadio, clock: SimClock, settings: Settings
) -> dict[str, FramePublisher]:
    from readers.collectors.publisher import FramePublisher

    assert settings.mqtt_url is not None
    spool_dir = settings.data_dir / "simulator-spool"
    spool_dir.mkdir(parents=True, exist_ok=True)
    publishers: dict[str, FramePublisher] = {}

    def answer(gateway: str) -> Any:
        def on_command(command: Command) -> None:
            frame = radio.read_now(gateway, command.meter, clock.now())
            publishers[gateway].publish([frame])

        return on_command

    for gateway in radio.gateways:
        publishers[gateway] = FramePublisher(
            settings.mqtt_url,
            gateway,
            "wmbus",
            spool_dir / f"{gateway}.db",
            on_command=answer(gateway),
            client_id=f"sim-{gateway}",
        )
    return publishers
