"""``meterflow ingest``: run one ingest worker until SIGTERM or Ctrl-C."""

from __future__ import annotations

import argparse
from typing import Any

from meterflow.settings import Settings


def register(subparsers: Any) -> None:
    """Add the ``ingest`` sub-command."""
    parser = subparsers.add_parser(
        "ingest",
        help="consume frames from MQTT and store them (one worker)",
        description=(
            "Run one ingest worker: persistent MQTT 5 session, batches committed with COPY,"
            " messages acknowledged after commit, metrics on 127.0.0.1:METERFLOW_METRICS_PORT."
        ),
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace, settings: Settings) -> int:
    """Run the worker; return its exit code.

    Raises ConfigError if the database or broker URL is not set.
    """
    from ingest.worker import run_worker

    return run_worker(settings)
