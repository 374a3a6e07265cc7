"""Bank statements as CSV: the column layout documented in docs/payments.md.

UTF-8 (a BOM is allowed), ``;`` or ``,`` between fields (taken from the header line), a
header naming the columns in any order. Required: ``statement`` (the bank's statement
reference), ``account`` (our account the statement is of), ``booking_date`` (``YYYY-MM-DD``
or ``DD.MM.YYYY``), ``amount`` (decimal comma or dot, negative for a debit). Optional:
``entry_no`` (else the line's number within its statement), ``currency`` (``PLN``),
``virtual_account``, ``counterparty_account``, ``counterparty_name``, ``title``,
``bank_reference``. Lines of several statements may share one file.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime

from billing_engine.bank.iban import compact
from billing_engine.bank.statement import (
    Statement,
    StatementItem,
    accounts_in,
    parse_amount,
)
from meterflow.errors import DecodeError

REQUIRED = ("statement", "account", "booking_date", "amount")
DATE_FORMATS = ("%Y-%m-%d", "%d.%m.%Y")


def parse(text: str) -> list[Statement]:
    """Every statement in a CSV file, in the order first seen.

    Raises DecodeError if a required column is missing or a value is malformed.
    """
    text = text.lstrip("\ufeff")
    header = text.split("\n", 1)[0]
    delimiter = ";" if header.count(";") >= header.count(",") else ","
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    columns = [c.strip() for c in reader.fieldnames or []]
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise DecodeError(f"CSV statement lacks the column(s) {', '.join(missing)}")
    reader.fieldnames = columns
    grouped: dict[tuple[str, str], list[StatementItem]] = {}
    for line_no, row in enumerate(reader, start=2):
        key = (compact(row["account"] or ""), (row["statement"] or "").strip())
        items = grouped.setdefault(key, [])
        items.append(_item(row, len(items) + 1, line_no))
    return [
        Statement("csv", account, reference, items[0].currency if items else "PLN", tuple(items))
        for (account, reference), items in grouped.items()
    ]


def _item(row: dict[str, str], default_no: int, line_no: int) -> StatementItem:
    where = f"CSV line {line_no}"
    entry = (row.get("entry_no") or "").strip()
    if entry and not entry.isdigit():
        raise DecodeError(f"{where}: entry_no {entry!r} is not a number")
    virtual = compact(row.get("virtual_account") or "")
    counterparty = compact(row.get("counterparty_account") or "")
    title = (row.get("title") or "").strip()
    named = [*accounts_in(virtual), *accounts_in(counterparty), *accounts_in(title)]
    return StatementItem(
        entry_no=int(entry) if entry else default_no,
        booked_on=_date(row["booking_date"] or "", where),
        amount_gr=parse_amount(row["amount"] or "", where),
        currency=(row.get("currency") or "PLN").strip().upper(),
        accounts=tuple(dict.fromkeys(named)),
        counterparty_account=counterparty,
        counterparty_name=(row.get("counterparty_name") or "").strip(),
        title=title,
        bank_reference=(row.get("bank_reference") or "").strip(),
    )


def _date(text: str, where: str) -> date:
    for fmt in DATE_FORMATS:
        try:
            return datetime.strptime(text.strip(), fmt).date()
        except ValueError:
            continue
    raise DecodeError(f"{where}: booking_date {text!r} is not YYYY-MM-DD or DD.MM.YYYY")
