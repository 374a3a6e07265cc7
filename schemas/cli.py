"""``meterflow migrate [--status]``: apply the schema migrations or show where they stand."""

from __future__ import annotations

import argparse
from typing import Any

from meterflow.errors import ConfigError
from meterflow.settings import Settings


def register(subparsers: Any) -> None:
    """Add the ``migrate`` sub-command."""
    parser = subparsers.add_parser(
        "migrate",
        help="apply pending schema migrations (TimescaleDB or plain PostgreSQL)",
        description="Apply pending schema migrations under an advisory lock.",
    )
    parser.add_argument(
        "--status", action="store_true", help="show the storage mode and applied/pending files"
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``migrate``; return the exit code.

    Raises ConfigError if METERFLOW_DATABASE_URL is not set.
    """
    from schemas.migrate import migrate, status

    if not settings.database_url:
        raise ConfigError("set METERFLOW_DATABASE_URL to the database to migrate")
    if args.status:
        state = status(settings.database_url)
        print(f"storage mode: {state.mode}")
        for done in state.applied:
            print(f"applied  {done.version:04d}_{done.name}  {done.applied_at.isoformat()}")
        for todo in state.pending:
            print(f"pending  {todo.version:04d}_{todo.name}")
        return 0
    report = migrate(settings.database_url)
    print(
        f"storage mode: {report.mode}; applied {len(report.applied)} migration(s),"
        f" {len(report.already_applied)} already applied"
    )
    return 0
