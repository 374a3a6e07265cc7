"""The demo's bank statement: one day of transfers to the utility, for ``meterflow up``.

Made once the first invoices are out, from them: most credits pay a customer's invoice into
the customer's virtual account (booked at import); three match no one and wait for staff in
the console's unmatched page, each with something to go on or not: a transfer to the
utility's main account whose title names an invoice, one whose title names a customer
number, one with no clue at all; and a bank fee (a debit). The MT940 file is written once
and imported on every start: the importer records a statement's lines once, so the second
import books nothing.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from billing_engine.bank.iban import check_digits, virtual_iban
from billing_engine.bank.importer import (
    ImportResult,
    ensure_virtual_accounts,
    import_statements,
    read_statements,
)
from billing_engine.db import connect, store_errors

PAID_INTO_VIRTUAL = 8
# The payers' bank (any sort code outside the utility's range will do).
PAYERS_SORT_CODE = "11402004"
WARSAW = ZoneInfo("Europe/Warsaw")
# Polish banks' :86: subfields hold at most 27 characters; MT940 lines at most 65.
SUBFIELD_CHARS = 27
LINE_CHARS = 65

_INVOICED = """
SELECT DISTINCT ON (i.customer_id) i.customer_id, c.customer_no, c.name, i.invoice_no,
       i.gross_gr
FROM invoices i JOIN customers c USING (customer_id)
WHERE i.status = 'issued' AND i.gross_gr > 0
ORDER BY i.customer_id, i.invoice_id
LIMIT %s
"""


@dataclass(frozen=True)
class _Line:
    """One line of the demo statement; ``to_account`` for a credit to a virtual account."""

    amount_gr: int
    title: str
    payer_name: str = ""
    payer_account: str = ""
    to_account: str = ""


def seed_demo_statement(
    conninfo: str, sort_code: str, prefix: str, path: Path, today: date | None = None
) -> ImportResult | None:
    """Import the demo statement at ``path``, writing it from the issued invoices first if
    it is not there; None (nothing done) while no invoice has been issued.

    Gives every customer without one a virtual account first.
    Raises StoreError if the database fails, BillingError if the sort code or prefix cannot
    make valid account numbers, DecodeError if the file at ``path`` is not a statement.
    """
    with connect(conninfo) as conn:
        with store_errors("demo statement"):
            invoiced = conn.execute(_INVOICED, (PAID_INTO_VIRTUAL + 1,)).fetchall()
        if not invoiced:
            return None
        ensure_virtual_accounts(conn, sort_code, prefix)
        if not path.exists():
            day = today or datetime.now(WARSAW).date()
            _write(path, demo_statement(invoiced, sort_code, prefix, day))
        result = import_statements(
            conn, read_statements(path, "mt940"), sort_code, prefix, source=path.name
        )
        conn.commit()
    return result


def demo_statement(
    invoiced: Sequence[tuple[int, str, str, str, int]], sort_code: str, prefix: str, day: date
) -> str:
    """The MT940 text of the utility's main account on ``day``, from issued invoices
    (customer id, customer number, name, invoice number, gross grosze; at least one)."""
    paid = invoiced[:-1] or invoiced
    lines = [
        _Line(
            gross_gr,
            f"Zapłata za fakturę {invoice_no}",
            name.upper(),
            _payer_account(customer_id),
            virtual_iban(sort_code, prefix, customer_id),
        )
        for customer_id, _number, name, invoice_no, gross_gr in paid
    ]
    relative, named = invoiced[-1], invoiced[len(invoiced) // 2]
    lines += [
        _Line(relative[4], f"Faktura {relative[3]} za mamę", "MARIA ŁĄCKA", _payer_account(-1)),
        _Line(10000, f"Woda {named[1]} zaliczka", "WSPÓLNOTA MIESZKANIOWA", _payer_account(-2)),
        _Line(5730, "przelew środków", "JAN NOWAK", _payer_account(-3)),
        _Line(-990, "Opłata za prowadzenie rachunku"),
    ]
    return _mt940(lines, _main_account(sort_code, prefix), day)


def _mt940(lines: Sequence[_Line], account: str, day: date) -> str:
    opening_gr = 12_500_000
    closing_gr = opening_gr + sum(line.amount_gr for line in lines)
    text = [
        "{1:F01BPKOPLPWAXXX0000000000}{2:O9401200BPKOPLPWAXXX00000000000000000000N}{4:",
        f":20:DEMO{day:%y%m%d}",
        f":25:/{account}",
        ":28C:00001/001",
        f":60F:{_balance(opening_gr, day)}",
    ]
    for n, line in enumerate(lines, 1):
        mark = "C" if line.amount_gr > 0 else "D"
        kind = "N240" if line.amount_gr > 0 else "NTRF"
        text.append(
            f":61:{day:%y%m%d%m%d}{mark}{_amount(abs(line.amount_gr))}{kind}NONREF//DEMO{n:04d}"
        )
        details = ":86:" + _details(line)
        text += [details[i : i + LINE_CHARS] for i in range(0, len(details), LINE_CHARS)]
    text += [f":62F:{_balance(closing_gr, day)}", "-}"]
    return "\r\n".join(text) + "\r\n"


def _details(line: _Line) -> str:
    """The ``:86:`` text: transaction code, then ``^``-separated subfields."""
    if line.amount_gr < 0:
        return f"073^00OPŁATA^20{line.title}"
    fields = [("00", "PRZELEW PRZYCHODZĄCY")]
    fields += _split("2", line.title, 6)
    if line.payer_account:
        fields += [("30", line.payer_account[4:12]), ("31", line.payer_account[12:])]
    fields += _split("3", line.payer_name, 2, first=2)
    # ^38: the virtual account credited, else (a transfer to the main account) the payer's.
    fields.append(("38", line.to_account or line.payer_account))
    return "240" + "".join(f"^{code}{value}" for code, value in fields)


def _split(tens: str, text: str, codes: int, first: int = 0) -> list[tuple[str, str]]:
    """``text`` in 27-character subfields numbered ``<tens><first>``, ``<tens><first+1>``..."""
    chunks = [text[i : i + SUBFIELD_CHARS] for i in range(0, len(text), SUBFIELD_CHARS)]
    return [(f"{tens}{first + n}", chunk) for n, chunk in enumerate(chunks[:codes])]


def _amount(grosze: int) -> str:
    return f"{grosze // 100},{grosze % 100:02d}"


def _balance(grosze: int, day: date) -> str:
    return f"{'C' if grosze >= 0 else 'D'}{day:%y%m%d}PLN{_amount(abs(grosze))}"


def _iban(bban: str) -> str:
    return "PL" + check_digits("PL", bban) + bban


def _payer_account(n: int) -> str:
    """A made-up account at the payers' bank: customer ``n``'s, or a stranger's if negative."""
    return _iban(f"{PAYERS_SORT_CODE}{'9' if n < 0 else '1'}{abs(n):015d}")


def _main_account(sort_code: str, prefix: str) -> str:
    """The utility's own account: its sort code, an account part outside the virtual range."""
    part = next(p for p in ("1000000000000001", "2000000000000002") if not p.startswith(prefix))
    return _iban(sort_code + part)


def _write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
