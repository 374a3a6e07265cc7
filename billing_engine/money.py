"""Money helpers: PLN as ``Decimal``, amounts as integer grosze, rounding half up."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from meterflow.errors import BillingError

GROSZ = Decimal("0.01")


def round_half_up(value: Decimal, exponent: Decimal = Decimal(1)) -> Decimal:
    """Round ``value`` half away from zero to the quantum ``exponent``."""
    return value.quantize(exponent, rounding=ROUND_HALF_UP)


def round_grosze(pln: Decimal) -> int:
    """An exact PLN amount rounded half up to whole grosze."""
    return int(round_half_up(pln * 100))


def grosze_of(grosze: Decimal) -> int:
    """A fractional grosze amount rounded half up to whole grosze."""
    return int(round_half_up(grosze))


def to_pln(grosze: int) -> Decimal:
    """Grosze as a PLN ``Decimal`` with two places."""
    return (Decimal(grosze) / 100).quantize(GROSZ)


def parse_pln(text: str) -> int:
    """Grosze of a PLN amount written ``1234.56`` or ``1 234,56``.

    Raises BillingError if the text is not an amount with at most two decimals.
    """
    cleaned = text.strip().replace("\u00a0", "").replace(" ", "").replace(",", ".")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise BillingError(f"not a PLN amount: {text!r}") from None
    if not value.is_finite() or value != value.quantize(GROSZ):
        raise BillingError(f"not a PLN amount with at most two decimals: {text!r}")
    return int(value * 100)


def format_pln(grosze: int) -> str:
    """Grosze as Polish text, e.g. ``1 234,56 zł`` (non-breaking space between thousands)."""
    sign = "-" if grosze < 0 else ""
    whole, cents = divmod(abs(grosze), 100)
    thousands = f"{whole:,}".replace(",", "\u00a0")
    return f"{sign}{thousands},{cents:02d}\u00a0zł"
