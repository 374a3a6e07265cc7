"""The ``meterflow`` command line: one sub-command per job, each defined next to its part."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from meterflow import __version__
from meterflow.errors import MeterflowError
from meterflow.settings import Settings

# Each module defines ``register(subparsers)``, adding its sub-commands with
# ``set_defaults(handler=...)``; a handler takes ``(args, settings)`` and returns an exit code.
COMMAND_MODULES: tuple[str, ...] = (
    "meterflow.up",
    "meterflow.bench_cli",
    "schemas.cli",
    "ingest.cli",
    "ingest.fleet_cli",
    "readers.cli",
    "simulators.cli",
    "readers.collectors.cli",
    "readers.collectors.radio_cli",
    "simulators.mbus_bus",
    "billing_engine.cli",
    "billing_engine.notify.cli",
    "billing_engine.bank.cli",
    "simulators.p24_sandbox",
    "portal.cli",
)


def build_parser() -> argparse.ArgumentParser:
    """Return the parser with every sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="meterflow",
        description="Remote meter reading, ingest, billing and the customer e-office.",
    )
    parser.add_argument("--version", action="version", version=f"meterflow {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        logging.basicConfig(
            level=settings.log_level.upper(),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        return int(args.handler(args, settings))
    except MeterflowError as exc:
        print(f"meterflow {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
