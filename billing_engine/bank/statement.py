"""A bank statement as the parsers return it: values only, no I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation

from meterflow.errors import DecodeError

# A Polish account number as banks print it: IBAN (PL + 26 digits) or bare NRB (26 digits).
SPACED_DIGITS_RE = re.compile(r"(?<=[0-9]) (?=[0-9])")
ACCOUNT_RE = re.compile(r"(?<![0-9A-Z])(?:PL)?[0-9]{26}(?![0-9])")


@dataclass(frozen=True)
class StatementItem:
    """One booked line: ``amount_gr`` positive for a credit, negative for a debit.

    ``accounts`` lists every Polish account number the line names (counterparty, virtual
    account, title), in the order found; the importer picks the one that is a virtual account.
    """

    entry_no: int
    booked_on: date
    amount_gr: int
    currency: str
    accounts: tuple[str, ...] = ()
    counterparty_account: str = ""
    counterparty_name: str = ""
    title: str = ""
    bank_reference: str = ""


@dataclass(frozen=True)
class Statement:
    """One statement of one account; ``reference`` identifies it at the bank."""

    format: str
    account: str
    reference: str
    currency: str
    items: tuple[StatementItem, ...] = field(default_factory=tuple)

    def dedup_key(self, item: StatementItem) -> str:
        """The key that makes a line importable once: account, statement, entry number."""
        return f"{self.account}/{self.reference}/{item.entry_no}"


def accounts_in(text: str) -> list[str]:
    """Every Polish account number in ``text`` (spaces inside ignored), as ``PL`` IBANs."""
    squeezed = text.upper()
    if " " in squeezed:
        squeezed = SPACED_DIGITS_RE.sub("", squeezed)
    found = []
    for match in ACCOUNT_RE.finditer(squeezed):
        number = match.group(0)
        found.append(number if number.startswith("PL") else "PL" + number)
    return found


def parse_amount(text: str, where: str) -> int:
    """Grosze of a decimal amount written with a comma or a dot (``1234,5`` -> 123450).

    Raises DecodeError if ``text`` is not such an amount or has more than two decimals.
    """
    cleaned = text.strip().replace(" ", "").replace("\u00a0", "").replace(",", ".")
    whole, dot, fraction = cleaned.partition(".")
    if whole.isdecimal() and whole.isascii() and len(fraction) <= 2:
        if not fraction or (fraction.isdecimal() and fraction.isascii()):
            return int(whole) * 100 + int(fraction.ljust(2, "0"))
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise DecodeError(f"{where}: {text!r} is not an amount") from None
    grosze = value * 100
    if not value.is_finite() or grosze != grosze.to_integral_value():
        raise DecodeError(f"{where}: {text!r} has more than two decimals")
    return int(grosze)
