"""MT940 customer statements (SWIFT), as Polish banks export them.

Fields read: ``:20:`` statement reference, ``:25:`` account, ``:28C:`` statement number,
``:60F:``/``:60M:`` opening balance (its currency), ``:61:`` a booked line, ``:86:`` the
line's details, ``:62F:``/``:62M:`` closing balance. A file may hold several statements and
may be wrapped in SWIFT blocks (``{1:...}{4:`` ... ``-}``).

Polish banks structure ``:86:`` as a 3-digit transaction code followed by subfields, each a
separator and a 2-digit code: ``^00`` description, ``^20``-``^25`` title, ``^30`` the
counterparty's sort code, ``^31`` its account, ``^32``-``^33`` its name, ``^38`` its IBAN
(at banks with virtual accounts, the virtual account credited), ``^60``-``^63`` address.
The separator differs by bank: ``^``, ``~``, ``<``, ``+`` or ``?``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from functools import lru_cache
from typing import Any

from billing_engine.bank.iban import check_digits, compact
from billing_engine.bank.statement import (
    Statement,
    StatementItem,
    accounts_in,
    parse_amount,
)
from meterflow.errors import DecodeError

FIELD_RE = re.compile(r"^:(\d{2}[A-Z]?):", re.MULTILINE)
LINE_RE = re.compile(
    r"(?P<value>\d{6})(?P<entry>\d{4})?(?P<mark>RC|RD|C|D)(?P<funds>[A-Z])?"
    r"(?P<amount>\d[\d,]*)(?P<type>[NFS][A-Z0-9]{3})(?P<ref>[^/\n]*)(?://(?P<bank>[^\n]*))?"
)
# SWIFT header and trailer blocks around the text block {4: ... -}, possibly nested once.
BLOCK_RE = re.compile(r"\{[1235]:(?:[^{}]|\{[^{}]*\})*\}")
BALANCE_RE = re.compile(r"[CD]\d{6}(?P<currency>[A-Z]{3})")
TRAILER_RE = re.compile(r"\n-\}?\s*$")
SUBFIELD_SEPARATORS = "^~<+?"
TITLE_CODES = ("20", "21", "22", "23", "24", "25", "26", "27")


def parse(text: str) -> list[Statement]:
    """Every statement in an MT940 file.

    Raises DecodeError if the file holds no statement or a field is malformed.
    """
    body = text.replace("\r\n", "\n").replace("\r", "\n")
    body = BLOCK_RE.sub("", body).replace("{4:", "\n")
    statements = [_statement(block) for block in _blocks(body)]
    if not statements:
        raise DecodeError("no MT940 statement found (no :20: field)")
    return statements


def _blocks(body: str) -> Iterator[list[tuple[str, str]]]:
    """Fields of each statement (from one ``:20:`` to the next)."""
    block: list[tuple[str, str]] = []
    for tag, value in _fields(body):
        if tag == "20" and block:
            yield block
            block = []
        block.append((tag, value))
    if block:
        yield block


def _fields(body: str) -> Iterator[tuple[str, str]]:
    parts = FIELD_RE.split(body)
    for i in range(1, len(parts), 2):
        value = parts[i + 1].rstrip("\n")
        if "\n-" in value:
            value = TRAILER_RE.sub("", value)
        yield parts[i], value.rstrip()


def _statement(fields: list[tuple[str, str]]) -> Statement:
    values = dict(fields)
    for tag in ("20", "25"):
        if tag not in values:
            raise DecodeError(f"MT940 statement without :{tag}: field")
    reference = values["20"].strip()
    number = values.get("28C", values.get("28", "")).strip()
    currency = _currency(values)
    items: list[StatementItem] = []
    line: str | None = None
    for tag, value in [*fields, ("", "")]:
        if line is not None and tag in ("61", "86", "62F", "62M", ""):
            details = value if tag == "86" else ""
            items.append(_item(line, details, len(items) + 1, currency, reference))
            line = None
        if tag == "61":
            line = value
    account = compact(values["25"].strip().lstrip("/"))
    full_reference = f"{reference}/{number}" if number else reference
    return Statement("mt940", account, full_reference, currency, tuple(items))


def _currency(values: dict[str, str]) -> str:
    balance = values.get("60F") or values.get("60M") or ""
    match = BALANCE_RE.match(balance)
    return match.group("currency") if match else "PLN"


def _item(value: str, details: str, entry_no: int, currency: str, statement: str) -> StatementItem:
    match = LINE_RE.match(value)
    if match is None:
        raise DecodeError(f"statement {statement}: :61: line {entry_no} is malformed: {value!r}")
    booked_on = _date(match.group("value"), statement)
    amount = parse_amount(match.group("amount"), f"statement {statement} line {entry_no}")
    if match.group("mark") in ("D", "RC"):
        amount = -amount
    return StatementItem(
        entry_no,
        booked_on,
        amount,
        currency,
        bank_reference=(match.group("bank") or match.group("ref") or "").strip(),
        **_details(details),
    )


@lru_cache(maxsize=4096)
def _date(yymmdd: str, statement: str) -> date:
    try:
        return date(2000 + int(yymmdd[:2]), int(yymmdd[2:4]), int(yymmdd[4:6]))
    except ValueError:
        raise DecodeError(f"statement {statement}: {yymmdd!r} is not a date") from None


def subfields(details: str) -> dict[str, str]:
    """The ``:86:`` subfields by code (values of a repeated code joined); {} if unstructured."""
    flat = details.replace("\n", "")
    if len(flat) < 6 or not flat[:3].isdigit() or flat[3] not in SUBFIELD_SEPARATORS:
        return {}
    separator = flat[3]
    found: dict[str, str] = {}
    for piece in flat[4:].split(separator):
        if len(piece) >= 2 and piece[:2].isdigit():
            found[piece[:2]] = found.get(piece[:2], "") + piece[2:]
    return found


def _accounts(text: str) -> list[str]:
    """``accounts_in``, skipping texts too short to hold an account number."""
    return accounts_in(text) if len(text) >= 26 else []


def payer_iban(domestic: str) -> str:
    """The IBAN of a domestic account given as sort code and number (``^30`` + ``^31``).

    Banks give the 24 digits without the check digits; those are computed. Anything else is
    returned as it is.
    """
    if len(domestic) == 24 and domestic.isdigit():
        return f"PL{check_digits('PL', domestic)}{domestic}"
    return domestic


def _details(details: str) -> dict[str, Any]:
    """The item fields a ``:86:`` text gives: title, counterparty, account numbers named."""
    if not details:
        return {}
    parts = subfields(details)
    if not parts:
        text = details.replace("\n", " ").strip()
        return {"title": text, "accounts": tuple(accounts_in(text))}
    title = "".join([parts[code] for code in TITLE_CODES if code in parts]).strip()
    domestic = parts.get("30", "") + parts.get("31", "")
    named = [*_accounts(parts.get("38", "")), *_accounts(domestic), *_accounts(title)]
    return {
        "title": title,
        "counterparty_name": (parts.get("32", "") + parts.get("33", "")).strip(),
        # ^30 + ^31 are always the payer's; ^38 is the virtual account credited at some banks.
        "counterparty_account": payer_iban(compact(domestic)) or compact(parts.get("38", "")),
        "accounts": tuple(dict.fromkeys(named)),
    }
