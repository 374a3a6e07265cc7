"""Sub-commands ``gateways``, ``broker`` and ``meters``: fleet administration.

A new password goes alone to standard output (``PW=$(meterflow gateways add gw-1)`` works);
everything else goes to standard error. Keys are never printed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from meterflow.settings import Settings

if TYPE_CHECKING:
    from ingest.fleet import BrokerFiles

RELOAD_HINT = (
    "reload the broker to apply: `systemctl reload mosquitto` or"
    " `kill -HUP $(cat /run/mosquitto/mosquitto.pid)`"
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``gateways``, ``broker`` and ``meters`` sub-commands."""
    _register_gateways(subparsers)
    _register_broker(subparsers)
    _register_meters(subparsers)


def _file_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--password-file", type=Path, help="broker password file to update")
    parser.add_argument("--acl-file", type=Path, help="broker ACL file to update")
    parser.add_argument("--reload-pid", type=Path, metavar="FILE", help="broker pid file: SIGHUP")


def _register_gateways(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("gateways", help="register, list and revoke gateways")
    commands = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = commands.add_parser("add", help="register a gateway and print its new password")
    add.add_argument("gateway_id", metavar="ID")
    add.add_argument("--description", help="free text: site, address, hardware")
    add.add_argument("--rotate", action="store_true", help="new password for an active gateway")
    _file_options(add)
    add.set_defaults(handler=gateways_add)
    listing = commands.add_parser("list", help="show every gateway")
    listing.set_defaults(handler=gateways_list)
    revoke = commands.add_parser("revoke", help="revoke a gateway's broker access")
    revoke.add_argument("gateway_id", metavar="ID")
    _file_options(revoke)
    revoke.set_defaults(handler=gateways_revoke)


def _register_broker(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("broker", help="broker users of the ingest and the portal")
    commands = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = commands.add_parser("add-user", help="add a service user, print its new password")
    add.add_argument("name", metavar="NAME")
    add.add_argument(
        "--role",
        required=True,
        choices=("ingest", "commands"),
        help="ingest: read every gateway's frames; commands: send commands, read their acks",
    )
    _file_options(add)
    add.set_defaults(handler=broker_add_user)
    remove = commands.add_parser("remove-user", help="remove a service user")
    remove.add_argument("name", metavar="NAME")
    _file_options(remove)
    remove.set_defaults(handler=broker_remove_user)


def _register_meters(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("meters", help="import meter keys, list meters")
    commands = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    load = commands.add_parser("import", help="import the vendor's key file (CSV)")
    load.add_argument("file", type=Path, metavar="FILE")
    load.set_defaults(handler=meters_import)
    listing = commands.add_parser("list", help="show meters (never their keys)")
    listing.add_argument("--status", choices=("unassigned", "active", "retired"))
    listing.set_defaults(handler=meters_list)


def _files(args: argparse.Namespace, settings: Settings) -> BrokerFiles:
    from ingest.fleet import BrokerFiles

    files = BrokerFiles.from_settings(settings)
    return BrokerFiles(
        password_file=args.password_file or files.password_file,
        acl_file=args.acl_file or files.acl_file,
    )


def _apply(args: argparse.Namespace, files: BrokerFiles) -> None:
    from ingest.broker_auth import reload_broker

    _note(f"updated {files.password_file} and {files.acl_file}")
    if args.reload_pid is None:
        _note(RELOAD_HINT)
    else:
        _note(f"sent SIGHUP to the broker (pid {reload_broker(args.reload_pid)})")


def gateways_add(args: argparse.Namespace, settings: Settings) -> int:
    """Register a gateway; print its password once."""
    from ingest.fleet import add_gateway, connect

    files = _files(args, settings)
    with connect(settings) as conn:
        password = add_gateway(conn, files, args.gateway_id, args.description, args.rotate)
    _note(f"gateway {args.gateway_id} may connect; its password is shown only now")
    print(password)
    _apply(args, files)
    return 0


def gateways_list(args: argparse.Namespace, settings: Settings) -> int:
    """Print every gateway as a table."""
    from ingest.fleet import connect, list_gateways

    with connect(settings) as conn:
        gateways = list_gateways(conn)
    rows = [
        (g.gateway_id, g.description, _time(g.created_at), _time(g.revoked_at)) for g in gateways
    ]
    print(table(("id", "description", "created", "revoked"), rows))
    return 0


def gateways_revoke(args: argparse.Namespace, settings: Settings) -> int:
    """Revoke a gateway and take it out of the broker's files."""
    from ingest.fleet import connect, revoke_gateway

    files = _files(args, settings)
    with connect(settings) as conn:
        gateway = revoke_gateway(conn, files, args.gateway_id)
    _note(f"gateway {gateway.gateway_id} revoked at {_time(gateway.revoked_at)}")
    _apply(args, files)
    return 0


def broker_add_user(args: argparse.Namespace, settings: Settings) -> int:
    """Add or re-key a service user; print its password once."""
    from ingest.fleet import grant_broker_user

    files = _files(args, settings)
    password = grant_broker_user(files, args.name, args.role)
    _note(f"broker user {args.name} ({args.role}); its password is shown only now")
    print(password)
    _apply(args, files)
    return 0


def broker_remove_user(args: argparse.Namespace, settings: Settings) -> int:
    """Remove a service user from the broker's files."""
    from ingest.fleet import remove_broker_user

    files = _files(args, settings)
    if not remove_broker_user(files, args.name):
        _note(f"no broker user {args.name} in {files.password_file} or {files.acl_file}")
        return 1
    _apply(args, files)
    return 0


def meters_import(args: argparse.Namespace, settings: Settings) -> int:
    """Import a key file: all rows or none."""
    from ingest.fleet import connect, import_meter_keys
    from ingest.meter_keys import load_key_file

    keys = load_key_file(args.file)
    with connect(settings) as conn:
        counts = import_meter_keys(conn, keys)
    print(f"{counts.new} new, {counts.updated} updated, {counts.unchanged} unchanged")
    return 0


def meters_list(args: argparse.Namespace, settings: Settings) -> int:
    """Print meters as a table, with whether each has a key."""
    from ingest.fleet import connect, list_meters

    with connect(settings) as conn:
        meters = list_meters(conn, args.status)
    rows = [
        (m.meter_id, m.manufacturer, m.status, "yes" if m.has_key else "no", _time(m.last_seen_at))
        for m in meters
    ]
    print(table(("id", "manufacturer", "status", "key", "last seen"), rows))
    return 0


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Return ``rows`` as left-aligned text columns under ``headers``."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    lines = [headers, *rows]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def _time(moment: datetime | None) -> str:
    return "-" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _note(message: str) -> None:
    print(message, file=sys.stderr)
