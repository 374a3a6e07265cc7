"""Importing bank statements: match credits to customers by virtual account, book them once.

Set-based: a statement's lines are copied into a staging table, matched to
``virtual_accounts`` by one join, booked through ``billing_engine.payments.book_payments``
(ledger reference ``bank:<dedup key>``) and recorded in ``statement_items`` by one
``INSERT ... SELECT ... ON CONFLICT (dedup_key) DO NOTHING``, so a statement imported twice
books nothing twice. Credits no virtual account claims stay ``unmatched`` until staff
assign them to a customer (:func:`assign`) or keep them out of the ledger with a note
(:func:`ignore`, e.g. to be returned to the sender); debits are recorded as ``ignored``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from pathlib import Path

from billing_engine.bank import csvfile, mt940
from billing_engine.bank.iban import virtual_iban, virtual_matcher
from billing_engine.bank.statement import Statement, StatementItem
from billing_engine.db import Conn, store_errors
from billing_engine.payments import (
    BULK_ROWS,
    BookedPayment,
    book_payment,
    book_staged,
    stage_payments,
)
from meterflow.errors import BillingError, DecodeError

FORMATS = ("mt940", "csv")


@dataclass(frozen=True)
class ImportResult:
    """What one import did: lines booked, left unmatched, debits ignored, seen before."""

    booked: int
    unmatched: int
    ignored: int
    duplicates: int


@dataclass(frozen=True)
class UnmatchedItem:
    """A credit waiting for staff to name its customer."""

    item_id: int
    booked_on: date
    amount_gr: int
    currency: str
    counterparty_account: str
    counterparty_name: str
    title: str


class Refusal(StrEnum):
    """Why a staff decision on a statement item was refused (for a caller to put in words)."""

    MISSING = "missing"
    DECIDED = "decided"
    NOT_PLN = "not_pln"
    BOOKED_BEFORE = "booked_before"
    NO_NOTE = "no_note"


class DecisionRefused(BillingError):
    """A staff decision on a statement item cannot be applied; nothing was written."""

    def __init__(self, item_id: int, reason: Refusal, message: str) -> None:
        super().__init__(f"statement item {item_id} {message}")
        self.item_id = item_id
        self.reason = reason


def read_statements(path: Path, fmt: str | None = None) -> list[Statement]:
    """Parse the statement file at ``path`` (format guessed from its content if not given).

    Raises DecodeError if the file cannot be read or parsed.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DecodeError(f"cannot read statement {path}: {exc}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        # Polish banks' MT940 files are often in code page 852 or 1250.
        text = raw.decode("cp1250", errors="replace")
    fmt = fmt or ("mt940" if ":20:" in text else "csv")
    if fmt not in FORMATS:
        raise DecodeError(f"unknown statement format {fmt!r}: use mt940 or csv")
    return mt940.parse(text) if fmt == "mt940" else csvfile.parse(text)


def ensure_virtual_accounts(conn: Conn, sort_code: str, prefix: str) -> int:
    """Give every customer without one a virtual account; return how many were created.

    Raises BillingError if the sort code or prefix cannot make valid account numbers.
    """
    with store_errors("creating virtual accounts"), conn.transaction():
        ids = conn.execute(
            "SELECT customer_id FROM customers c WHERE NOT EXISTS"
            " (SELECT 1 FROM virtual_accounts v WHERE v.customer_id = c.customer_id)"
            " ORDER BY customer_id FOR NO KEY UPDATE"
        ).fetchall()
        with conn.cursor().copy("COPY virtual_accounts (customer_id, iban) FROM STDIN") as copy:
            for (customer_id,) in ids:
                copy.write_row((customer_id, virtual_iban(sort_code, prefix, int(customer_id))))
    return len(ids)


def import_statements(
    conn: Conn, statements: Sequence[Statement], sort_code: str, prefix: str, source: str = ""
) -> ImportResult:
    """Record and book the statements' lines in one transaction.

    Raises BillingError if a matched customer is gone, StoreError if the database fails.
    """
    totals = [0, 0, 0, 0]
    with conn.transaction():
        for statement in statements:
            for i, count in enumerate(_import_one(conn, statement, sort_code, prefix, source)):
                totals[i] += count
    return ImportResult(*totals)


def _import_one(
    conn: Conn, statement: Statement, sort_code: str, prefix: str, source: str
) -> tuple[int, int, int, int]:
    with store_errors(f"statement {statement.reference}"):
        row = conn.execute(
            "INSERT INTO bank_statements (format, account, reference, source_name)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT (account, reference)"
            " DO UPDATE SET source_name = bank_statements.source_name RETURNING statement_id",
            (statement.format, statement.account, statement.reference, source),
        ).fetchone()
        assert row is not None
        known = {
            str(key)
            for (key,) in conn.execute(
                "SELECT dedup_key FROM statement_items WHERE statement_id = %s", (row[0],)
            )
        }
        new = [i for i in statement.items if statement.dedup_key(i) not in known]
        if not new:
            return 0, 0, 0, len(statement.items)
        conn.execute("SET LOCAL work_mem = '64MB'")
        _stage(conn, statement, new, sort_code, prefix)
        stage_payments(conn)
        conn.execute(_MATCH)
    book_staged(conn)
    with store_errors(f"statement {statement.reference}"):
        counts = {str(state): int(n) for state, n in conn.execute(_RECORD, (row[0],))}
        if sum(counts.values()) >= BULK_ROWS:
            # Fresh statistics keep the next import's duplicate check a hash join.
            conn.execute("ANALYZE statement_items")
    booked, left = counts.get("booked", 0), counts.get("unmatched", 0)
    ignored = counts.get("ignored", 0)
    return booked, left, ignored, len(statement.items) - booked - left - ignored


_MATCH = """
INSERT INTO payments_stage (customer_id, amount_gr, reference, booked_on)
SELECT v.customer_id, s.amount_gr, 'bank:' || s.dedup_key, s.booked_on
FROM items_stage s JOIN virtual_accounts v ON v.iban = s.virtual_account
WHERE s.amount_gr > 0 AND s.currency = 'PLN'
  AND NOT EXISTS (SELECT 1 FROM statement_items i WHERE i.dedup_key = s.dedup_key)
"""

# Lines booked now are in payments_booked; a line seen before conflicts on dedup_key.
_RECORD = """
WITH recorded AS (
INSERT INTO statement_items (statement_id, dedup_key, booked_on, amount_gr, currency,
    virtual_account, counterparty_account, counterparty_name, title, state, customer_id,
    entry_id)
SELECT DISTINCT ON (s.dedup_key) %s, s.dedup_key, s.booked_on, s.amount_gr, s.currency,
    s.virtual_account, s.counterparty_account, s.counterparty_name, s.title,
    CASE WHEN b.entry_id IS NOT NULL THEN 'booked'
         WHEN s.amount_gr > 0 THEN 'unmatched' ELSE 'ignored' END,
    b.customer_id, b.entry_id
FROM items_stage s
LEFT JOIN payments_booked b ON b.reference = 'bank:' || s.dedup_key
ORDER BY s.dedup_key
ON CONFLICT (dedup_key) DO NOTHING
RETURNING state)
SELECT state, count(*) FROM recorded GROUP BY state
"""


def _stage(
    conn: Conn, statement: Statement, items: Sequence[StatementItem], sort_code: str, prefix: str
) -> None:
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS items_stage (dedup_key text, booked_on date,"
        " amount_gr bigint, currency text, virtual_account text, counterparty_account text,"
        " counterparty_name text, title text) ON COMMIT DROP"
    )
    conn.execute("TRUNCATE items_stage")
    with conn.cursor().copy(
        "COPY items_stage (dedup_key, booked_on, amount_gr, currency, virtual_account,"
        " counterparty_account, counterparty_name, title) FROM STDIN"
    ) as copy:
        is_ours = virtual_matcher(sort_code, prefix)
        for item in items:
            copy.write_row(
                (
                    statement.dedup_key(item),
                    item.booked_on,
                    item.amount_gr,
                    item.currency,
                    next((a for a in item.accounts if is_ours(a)), None),
                    item.counterparty_account,
                    item.counterparty_name,
                    item.title,
                )
            )
    conn.execute("ANALYZE items_stage")


def unmatched(
    conn: Conn, limit: int = 500, offset: int = 0, newest_first: bool = False
) -> list[UnmatchedItem]:
    """Credits no customer has been found for, oldest first (or newest first)."""
    order = "DESC" if newest_first else "ASC"
    rows = conn.execute(
        "SELECT item_id, booked_on, amount_gr, currency, counterparty_account,"
        " counterparty_name, title FROM statement_items WHERE state = 'unmatched'"
        f" ORDER BY booked_on {order}, item_id {order} LIMIT %s OFFSET %s",
        (limit, offset),
    ).fetchall()
    return [UnmatchedItem(*row) for row in rows]


def count_unmatched(conn: Conn) -> int:
    """How many credits wait for staff."""
    row = conn.execute("SELECT count(*) FROM statement_items WHERE state = 'unmatched'").fetchone()
    assert row is not None
    return int(row[0])


def assign(conn: Conn, item_id: int, customer_id: int, by: str) -> BookedPayment:
    """Book an unmatched credit to ``customer_id`` (staff ``by`` chose it).

    Raises DecisionRefused if the item is not an unmatched PLN credit or its ledger reference
    was booked before, BillingError if the customer is unknown.
    """
    with conn.transaction():
        amount_gr, dedup_key, booked_on, currency = _lock_unmatched(conn, item_id)
        if currency != "PLN":
            raise DecisionRefused(
                item_id, Refusal.NOT_PLN, f"is in {currency}, not PLN: the ledger books PLN only"
            )
        booked = book_payment(conn, customer_id, amount_gr, f"bank:{dedup_key}", booked_on)
        if booked is None:
            raise DecisionRefused(
                item_id, Refusal.BOOKED_BEFORE, f"was booked already (ledger bank:{dedup_key})"
            )
        with store_errors(f"statement item {item_id}"):
            conn.execute(
                "UPDATE statement_items SET state = 'assigned', customer_id = %s,"
                " entry_id = %s, assigned_by = %s, assigned_at = now() WHERE item_id = %s",
                (customer_id, booked.entry_id, by, item_id),
            )
    return booked


def ignore(conn: Conn, item_id: int, note: str, by: str) -> None:
    """Keep an unmatched credit out of the ledger (e.g. to be returned to the sender), with
    staff ``by``'s ``note`` saying why.

    Raises DecisionRefused if the item is not an unmatched credit or the note is empty.
    """
    if not note.strip():
        raise DecisionRefused(item_id, Refusal.NO_NOTE, "needs a note: say why it is ignored")
    with conn.transaction():
        _lock_unmatched(conn, item_id)
        with store_errors(f"statement item {item_id}"):
            conn.execute(
                "UPDATE statement_items SET state = 'ignored', note = %s, assigned_by = %s,"
                " assigned_at = now() WHERE item_id = %s",
                (note.strip(), by, item_id),
            )


def _lock_unmatched(conn: Conn, item_id: int) -> tuple[int, str, date, str]:
    """Lock an unmatched credit; return its amount, dedup key, booking day and currency.

    A second staff decision on the same item waits here and then finds it decided.
    Raises DecisionRefused if the item is missing or no longer unmatched.
    """
    row = conn.execute(
        "SELECT state, amount_gr, dedup_key, booked_on, currency, assigned_by, assigned_at"
        " FROM statement_items WHERE item_id = %s FOR UPDATE",
        (item_id,),
    ).fetchone()
    if row is None:
        raise DecisionRefused(item_id, Refusal.MISSING, "is missing: no statement line has that id")
    if row[0] != "unmatched":
        decided = f" by {row[5]} at {row[6]:%Y-%m-%d %H:%M %Z}" if row[6] is not None else ""
        raise DecisionRefused(
            item_id, Refusal.DECIDED, f"is {row[0]}{decided}, not an unmatched credit"
        )
    return int(row[1]), str(row[2]), row[3], str(row[4])
