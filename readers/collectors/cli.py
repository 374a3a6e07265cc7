"""``meterflow collect mbus``: poll wired M-Bus meters and publish their frames to the broker."""

from __future__ import annotations

import argparse
import logging
import threading
from typing import Any

from meterflow.errors import ConfigError
from meterflow.settings import Settings

log = logging.getLogger(__name__)


def collect_subparsers(subparsers: Any) -> Any:
    """Return the sub-commands of ``collect``, creating ``collect`` if no module has yet."""
    parser = subparsers.choices.get("collect")
    if parser is None:
        parser = subparsers.add_parser(
            "collect",
            help="run a field collector that publishes raw frames",
            description="Read meters in the field and publish their raw frames to "
            "METERFLOW_MQTT_URL, queuing them on disk while the broker is away.",
        )
        return parser.add_subparsers(dest="source", metavar="SOURCE", required=True)
    # argparse keeps a parser's sub-command action among its actions.
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))


def register(subparsers: Any) -> None:
    """Add ``collect mbus``."""
    parser = collect_subparsers(subparsers).add_parser(
        "mbus",
        help="poll wired M-Bus meters over a serial or TCP line",
        description="Poll M-Bus meters through a pyserial URL (/dev/ttyUSB0, "
        "socket://host:port, rfc2217://host:port) and publish every RSP_UD telegram.",
    )
    parser.add_argument("--port", required=True, metavar="URL", help="pyserial URL of the line")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--address", metavar="A,B", help="primary addresses, e.g. 1,2,5")
    which.add_argument("--secondary", metavar="ID,ID", help="8-digit ids or MAN-12345678")
    which.add_argument("--scan", action="store_true", help="find meters by a secondary scan")
    parser.add_argument("--gateway", required=True, metavar="ID", help="gateway id of this line")
    parser.add_argument("--interval", type=float, default=15.0, metavar="MIN", help="minutes")
    parser.add_argument("--once", action="store_true", help="read each meter once, then exit")
    parser.add_argument("--baud", type=int, default=2400, help="baud rate (default 2400)")
    parser.add_argument("--retries", type=int, default=2, help="retries per request")
    parser.add_argument("--timeout", type=float, metavar="S", help="answer timeout in seconds")
    parser.add_argument("--spool", metavar="FILE", help="spool file (default in the data dir)")
    parser.set_defaults(handler=collect_mbus)


def targets_of(args: argparse.Namespace) -> list[Any]:
    """Return the meters named by ``--address`` or ``--secondary``.

    Raises ConfigError if a name is invalid.
    """
    from readers.collectors.mbus_poll import parse_target

    names = (args.address or args.secondary or "").split(",")
    targets = [parse_target(name) for name in names if name.strip()]
    if args.address and not all(isinstance(t, int) for t in targets):
        raise ConfigError(f"--address {args.address!r} must list primary addresses 0-250")
    if not targets:
        raise ConfigError("name at least one meter, or use --scan")
    return targets


def collect_mbus(args: argparse.Namespace, settings: Settings) -> int:
    """Poll the line until interrupted (or once with ``--once``); return the exit code."""
    from readers.collectors.mbus_master import MbusMaster
    from readers.collectors.mbus_poll import MbusPoller, target_from_header
    from readers.collectors.publisher import FramePublisher

    if settings.mqtt_url is None:
        raise ConfigError("set METERFLOW_MQTT_URL to the broker the collector publishes to")
    spool = args.spool or settings.data_dir / f"spool-{args.gateway}-mbus.db"
    master = MbusMaster(
        args.port, baudrate=args.baud, answer_timeout_s=args.timeout, retries=args.retries
    )
    with master, FramePublisher(settings.mqtt_url, args.gateway, "mbus", spool) as publisher:
        if args.scan:
            targets: list[Any] = [target_from_header(h) for h in master.scan_secondary()]
        else:
            targets = targets_of(args)
        poller = MbusPoller(master, publisher, targets, args.interval * 60)
        publisher.set_command_handler(poller.on_command)
        if args.once:
            poller.poll_once()
            delivered = publisher.flush(30)
            print(f"read {len(targets)} meters; {publisher.pending()} frames still queued")
            return 0 if delivered and poller.failures == 0 else 1
        stop = threading.Event()
        try:
            poller.run(stop)
        finally:
            stop.set()
    return 0
