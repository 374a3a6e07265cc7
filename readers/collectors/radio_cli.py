"""``meterflow collect radio``: publish wireless M-Bus telegrams from a receiver's output."""

from __future__ import annotations

import argparse
import sys
import threading
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from meterflow.errors import ConfigError
from meterflow.settings import Settings
from readers.collectors.cli import collect_subparsers

if TYPE_CHECKING:
    from readers.collectors.radio import InputStats, Sink

FORMATS = ("hex", "rtlwmbus", "serial")


def register(subparsers: Any) -> None:
    """Add ``collect radio``."""
    parser = collect_subparsers(subparsers).add_parser(
        "radio",
        help="publish wireless M-Bus telegrams from a dongle, rtl_wmbus or hex lines",
        description="Read wireless M-Bus telegrams and publish them as raw frames: hex lines "
        "([TIME] HEX [RSSI]) or rtl_wmbus output from a file or standard input (-), or a "
        "raw L-field framed byte stream from a pyserial URL (/dev/ttyUSB0, socket://h:p).",
    )
    parser.add_argument("--input", required=True, metavar="FILE|-|URL", help="where to read")
    parser.add_argument("--format", required=True, choices=FORMATS, help="input format")
    parser.add_argument("--gateway", required=True, metavar="ID", help="this receiver's id")
    parser.add_argument("--baud", type=int, default=57600, help="serial baud rate")
    parser.add_argument(
        "--crc", action="store_true", help="the serial stream keeps format A CRC blocks"
    )
    parser.add_argument("--spool", metavar="FILE", help="spool file (default in the data dir)")
    parser.set_defaults(handler=collect_radio)


def collect_radio(args: argparse.Namespace, settings: Settings) -> int:
    """Publish every telegram of the input until it ends (or Ctrl-C for a serial port)."""
    from readers.collectors.publisher import FramePublisher
    from readers.collectors.radio import InputStats

    if settings.mqtt_url is None:
        raise ConfigError("set METERFLOW_MQTT_URL to the broker the collector publishes to")
    spool = args.spool or settings.data_dir / f"spool-{args.gateway}-wmbus.db"
    Path(spool).parent.mkdir(parents=True, exist_ok=True)
    with FramePublisher(settings.mqtt_url, args.gateway, "wmbus", spool) as publisher:
        stats = InputStats()
        try:
            if args.format == "serial":
                _from_serial(args, publisher.publish, stats)
            else:
                _from_lines(args, publisher.publish, stats)
        except KeyboardInterrupt:
            pass
        delivered = publisher.flush(30)
    print(
        f"collect radio: {stats.frames} telegrams queued, {stats.skipped} skipped"
        + ("" if delivered else "; some wait in the spool for the broker"),
        file=sys.stderr,
    )
    return 0


def _from_lines(args: argparse.Namespace, sink: Sink, stats: InputStats) -> None:
    from readers.collectors.radio import LINE_PARSERS, collect_lines

    with ExitStack() as stack:
        if args.input == "-":
            stream: TextIO = sys.stdin
        else:
            try:
                stream = stack.enter_context(open(args.input, encoding="utf-8", errors="replace"))
            except OSError as exc:
                raise ConfigError(f"cannot read {args.input}: {exc.strerror}") from None
        # A live pipe sends each telegram at once; a file is read in larger batches.
        batch = 1 if args.input == "-" else 200
        collect_lines(stream, LINE_PARSERS[args.format], sink, batch_size=batch, stats=stats)


def _from_serial(args: argparse.Namespace, sink: Sink, stats: InputStats) -> None:
    from readers.collectors.radio import LFieldFramer, collect_serial, open_serial

    port = open_serial(args.input, args.baud)
    try:
        collect_serial(port, LFieldFramer(crc=args.crc), sink, threading.Event(), stats=stats)
    finally:
        port.close()
