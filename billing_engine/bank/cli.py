"""``meterflow payments``: import bank statements, list, assign and ignore unmatched credits."""

from __future__ import annotations

import argparse
import getpass
from pathlib import Path
from typing import Any

from meterflow.errors import BillingError, ConfigError
from meterflow.settings import Settings


def register(subparsers: Any) -> None:
    """Add ``meterflow payments`` and its sub-commands."""
    payments = subparsers.add_parser("payments", help="bank statements and virtual accounts")
    commands = payments.add_subparsers(dest="payments_command", metavar="ACTION", required=True)

    imp = commands.add_parser("import", help="import a statement, book the matched credits")
    imp.add_argument("statement", type=Path, metavar="STATEMENT", help="MT940 or CSV file")
    imp.add_argument("--format", choices=("mt940", "csv"), help="default: guessed from content")
    imp.set_defaults(handler=_import)

    unmatched = commands.add_parser("unmatched", help="list credits no customer was found for")
    unmatched.add_argument("--limit", type=int, default=500)
    unmatched.set_defaults(handler=_unmatched)

    assign = commands.add_parser("assign", help="book an unmatched credit to a customer")
    assign.add_argument("item", type=int, metavar="ITEM", help="item id from `unmatched`")
    assign.add_argument("customer", metavar="CUSTOMER", help="customer number or id")
    assign.set_defaults(handler=_assign)

    ignore = commands.add_parser("ignore", help="keep an unmatched credit out of the ledger")
    ignore.add_argument("item", type=int, metavar="ITEM", help="item id from `unmatched`")
    ignore.add_argument("--note", required=True, help="why, e.g. to be returned to the sender")
    ignore.add_argument("--by", help="who decided (default: the system user name)")
    ignore.set_defaults(handler=_ignore)

    accounts = commands.add_parser("accounts", help="give customers their virtual accounts")
    accounts.set_defaults(handler=_accounts)


def _connect(settings: Settings) -> Any:
    from billing_engine.db import connect

    if not settings.database_url:
        raise ConfigError("METERFLOW_DATABASE_URL is not set; point it at the database")
    return connect(settings.database_url)


def _import(args: argparse.Namespace, settings: Settings) -> int:
    from billing_engine.bank.importer import import_statements, read_statements

    statements = read_statements(args.statement, args.format)
    with _connect(settings) as conn:
        result = import_statements(
            conn,
            statements,
            settings.bank_sort_code,
            settings.bank_account_prefix,
            source=args.statement.name,
        )
    print(
        f"{args.statement}: {result.booked} booked, {result.unmatched} unmatched,"
        f" {result.ignored} debits ignored, {result.duplicates} imported before"
    )
    return 0


def _unmatched(args: argparse.Namespace, settings: Settings) -> int:
    from billing_engine.bank.importer import unmatched
    from billing_engine.money import format_pln

    with _connect(settings) as conn:
        items = unmatched(conn, args.limit)
    for item in items:
        print(
            f"{item.item_id}\t{item.booked_on}\t{format_pln(item.amount_gr)} {item.currency}"
            f"\t{item.counterparty_account}\t{item.counterparty_name}\t{item.title}"
        )
    print(f"{len(items)} unmatched credit(s)")
    return 0


def _assign(args: argparse.Namespace, settings: Settings) -> int:
    from billing_engine.bank.importer import assign

    with _connect(settings) as conn:
        row = conn.execute(
            "SELECT customer_id FROM customers WHERE customer_no = %s", (args.customer,)
        ).fetchone()
        if row is None and args.customer.isdigit():
            row = conn.execute(
                "SELECT customer_id FROM customers WHERE customer_id = %s", (int(args.customer),)
            ).fetchone()
        if row is None:
            raise BillingError(f"no customer with number or id {args.customer!r}")
        booked = assign(conn, args.item, int(row[0]), f"cli:{getpass.getuser()}")
    print(f"item {args.item} booked to customer {row[0]} as ledger entry {booked.entry_id}")
    return 0


def _ignore(args: argparse.Namespace, settings: Settings) -> int:
    from billing_engine.bank.importer import ignore

    by = (args.by or "").strip() or getpass.getuser()
    with _connect(settings) as conn:
        ignore(conn, args.item, args.note, f"cli:{by}")
    print(f"item {args.item} ignored: it stays out of the ledger")
    return 0


def _accounts(args: argparse.Namespace, settings: Settings) -> int:
    from billing_engine.bank.importer import ensure_virtual_accounts

    with _connect(settings) as conn:
        created = ensure_virtual_accounts(
            conn, settings.bank_sort_code, settings.bank_account_prefix
        )
    print(f"{created} virtual account(s) created")
    return 0
