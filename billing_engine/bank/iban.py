"""Polish IBANs and each customer's virtual account number.

A Polish IBAN is ``PL`` + 2 check digits (ISO 13616: the number moved to the end, letters
as 10..35, mod 97 == 1) + the 26-digit NRB body: an 8-digit bank sort code (its last digit
a check digit with weights 3, 9, 7, 1, 3, 9, 7) and a 16-digit account part. A virtual
account keeps the utility's sort code and puts the utility's prefix and the customer id in
the account part, so a transfer to it names its customer.
"""

from __future__ import annotations

from collections.abc import Callable

from meterflow.errors import BillingError

BODY_DIGITS = 24
ACCOUNT_DIGITS = 16
SORT_CODE_WEIGHTS = (3, 9, 7, 1, 3, 9, 7)


# Letters as ISO 13616 numbers: A -> "10" ... Z -> "35".
_LETTERS = str.maketrans({chr(ord("A") + i): str(10 + i) for i in range(26)})


def compact(text: str) -> str:
    """The IBAN without spaces or dashes, upper case."""
    return text.replace(" ", "").replace("-", "").upper()


def _as_number(rearranged: str) -> int:
    return int(rearranged.translate(_LETTERS))


def check_digits(country: str, bban: str) -> str:
    """The two ISO 13616 check digits of ``country`` + ``bban``.

    Raises BillingError if the country is not two letters or the BBAN is not alphanumeric.
    """
    if len(country) != 2 or not country.isalpha() or not bban.isalnum() or not bban.isascii():
        raise BillingError(f"cannot compute check digits of {country!r} {bban!r}")
    return f"{98 - _as_number(bban + country.upper() + '00') % 97:02d}"


def iban_is_valid(text: str) -> bool:
    """True if ``text`` is an IBAN whose check digits are right (any country)."""
    iban = compact(text)
    if len(iban) < 15 or len(iban) > 34 or not iban.isascii() or not iban.isalnum():
        return False
    if not iban[:2].isalpha() or not iban[2:4].isdigit():
        return False
    return _as_number(iban[4:] + iban[:4]) % 97 == 1


def sort_code_is_valid(sort_code: str) -> bool:
    """True if ``sort_code`` is 8 digits whose last is the Polish sort code check digit."""
    if len(sort_code) != 8 or not sort_code.isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(sort_code, SORT_CODE_WEIGHTS, strict=False))
    return (10 - total % 10) % 10 == int(sort_code[7])


def polish_iban_is_valid(text: str) -> bool:
    """True if ``text`` is ``PL`` + 26 digits with valid IBAN and sort-code check digits."""
    iban = compact(text)
    return (
        len(iban) == 28
        and iban.startswith("PL")
        and iban[2:].isdigit()
        and iban_is_valid(iban)
        and sort_code_is_valid(iban[4:12])
    )


def virtual_iban(sort_code: str, prefix: str, customer_id: int) -> str:
    """The virtual account of ``customer_id``: sort code, prefix, zero-padded customer id.

    Raises BillingError if the sort code is invalid or the prefix and id do not fit in the
    16-digit account part.
    """
    if not sort_code_is_valid(sort_code):
        raise BillingError(f"bank sort code {sort_code!r} is not 8 digits with a valid check")
    room = ACCOUNT_DIGITS - len(prefix)
    if not prefix.isdigit() or room < 6 or customer_id < 0 or len(str(customer_id)) > room:
        raise BillingError(
            f"customer {customer_id} does not fit an account part with prefix {prefix!r}"
        )
    bban = sort_code + prefix + f"{customer_id:0{room}d}"
    return "PL" + check_digits("PL", bban) + bban


def is_virtual(text: str, sort_code: str, prefix: str) -> bool:
    """True if ``text`` is a valid Polish IBAN of the utility's virtual-account range."""
    iban = compact(text)
    return iban[4:].startswith(sort_code + prefix) and polish_iban_is_valid(iban)


def virtual_matcher(sort_code: str, prefix: str) -> Callable[[str], bool]:
    """A fast :func:`is_virtual` for one range (its sort code checked once, not per account)."""
    if not sort_code_is_valid(sort_code):
        return lambda text: False
    head = sort_code + prefix
    # "PL" as ISO 13616 digits, for the check of a number moved to the end.
    country = "2521"

    def matches(text: str) -> bool:
        iban = compact(text)
        return (
            len(iban) == 28
            and iban.startswith("PL")
            and iban.startswith(head, 4)
            and iban[2:].isdigit()
            and int(iban[4:] + country + iban[2:4]) % 97 == 1
        )

    return matches


def customer_of(text: str, sort_code: str, prefix: str) -> int | None:
    """The customer id a virtual account encodes, or None if it is not one of ours."""
    iban = compact(text)
    if not is_virtual(iban, sort_code, prefix):
        return None
    return int(iban[12 + len(prefix) :])


def format_iban(text: str) -> str:
    """The IBAN in groups of four for print (``PL61 1090 1014 ...``)."""
    iban = compact(text)
    return " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))
