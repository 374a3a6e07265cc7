"""Sub-commands ``portal`` (run the e-office under gunicorn or the Flask dev server) and
``staff add`` (a staff user; the new password goes alone to standard output, once)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from meterflow.errors import ConfigError
from meterflow.settings import Settings

# deploy/gunicorn.conf.py of a source checkout (the systemd unit names its own copy).
GUNICORN_CONF = Path(__file__).resolve().parent.parent / "deploy" / "gunicorn.conf.py"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``portal`` and ``staff`` sub-commands."""
    portal = subparsers.add_parser("portal", help="run the customer e-office and staff console")
    portal.add_argument("--dev", action="store_true", help="Flask's development server instead")
    portal.add_argument("--bind", help="HOST:PORT (default METERFLOW_PORTAL_BIND)")
    portal.add_argument("--workers", type=int, help="gunicorn workers (METERFLOW_PORTAL_WORKERS)")
    portal.set_defaults(handler=run_portal)
    staff = subparsers.add_parser("staff", help="staff users of the console")
    commands = staff.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = commands.add_parser("add", help="add a staff user and print a random password once")
    add.add_argument("email", metavar="EMAIL")
    add.add_argument(
        "--role",
        action="append",
        required=True,
        choices=("billing", "customer_service", "admin"),
        help="a role; repeat for several",
    )
    add.add_argument("--name", default="", help="the person's name")
    add.set_defaults(handler=staff_add)


def run_portal(args: argparse.Namespace, settings: Settings) -> int:
    """Serve the portal: gunicorn (replacing this process) or, with --dev, Flask's server.

    Raises ConfigError if the database URL is missing or the bind address is malformed.
    """
    if not settings.database_url:
        raise ConfigError("the portal needs a database: set METERFLOW_DATABASE_URL")
    bind = args.bind or settings.portal_bind
    if args.dev:
        from portal import create_app

        host, _, port = bind.rpartition(":")
        if not port.isdigit():
            raise ConfigError(f"--bind {bind!r} is not HOST:PORT")
        create_app(settings).run(host=host or "127.0.0.1", port=int(port), debug=False)
        return 0
    argv = [sys.executable, "-m", "gunicorn"]
    if GUNICORN_CONF.is_file():
        argv += ["--config", str(GUNICORN_CONF)]
    argv += ["--bind", bind, "--workers", str(args.workers or settings.portal_workers)]
    argv.append("portal:create_app()")
    sys.stdout.flush()
    os.execv(sys.executable, argv)


def staff_add(args: argparse.Namespace, settings: Settings) -> int:
    """Create a staff user with a random password, printed once; it must be changed at login.

    Raises ConfigError without a database, AuthError if the e-mail is taken.
    """
    import psycopg
    from psycopg.rows import dict_row

    from portal.passwords import Hasher
    from portal.staff import users

    if not settings.database_url:
        raise ConfigError("set METERFLOW_DATABASE_URL")
    password = users.random_password()
    with psycopg.connect(settings.database_url, row_factory=dict_row) as conn:
        staff_id = users.create(conn, args.email, args.role, Hasher().hash(password), args.name)
    print(
        f"staff user {staff_id} {args.email.lower()} roles {','.join(args.role)};"
        " password (shown once, to be changed at first login):",
        file=sys.stderr,
    )
    print(password)
    return 0
