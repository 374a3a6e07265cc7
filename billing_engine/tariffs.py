"""Tariff groups in dated versions: validation and the split of a date range by version."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from billing_engine.model import TariffSpan, TariffVersion
from meterflow.errors import BillingError

MAX_PRICE_DECIMALS = 4


@dataclass(frozen=True)
class Tariff:
    """A tariff group: its versions in date order and its norm of daily use for estimates.

    Raises BillingError if versions overlap, run backwards, or carry a negative or
    malformed price, fee, VAT rate or norm.
    """

    group: str
    versions: tuple[TariffVersion, ...]
    norm_m3_per_day: Decimal = Decimal("0.1")

    def __post_init__(self) -> None:
        object.__setattr__(self, "versions", tuple(sorted(self.versions, key=_start)))
        if not self.versions:
            raise BillingError(f"tariff group {self.group!r} has no versions")
        for version in self.versions:
            _check_version(self.group, version)
        _check_no_overlap(self.group, self.versions)
        if self.norm_m3_per_day < 0:
            raise BillingError(f"tariff group {self.group!r}: the norm of daily use is negative")

    def version_on(self, day: date) -> TariffVersion:
        """The version in force on ``day``.

        Raises BillingError if no version covers the day.
        """
        for version in self.versions:
            if version.valid_from <= day and (version.valid_to is None or day <= version.valid_to):
                return version
        raise BillingError(f"tariff group {self.group!r} has no version in force on {day}")


def _start(version: TariffVersion) -> date:
    return version.valid_from


def _check_version(group: str, version: TariffVersion) -> None:
    where = f"tariff group {group!r}, version from {version.valid_from}"
    if version.valid_to is not None and version.valid_to < version.valid_from:
        raise BillingError(f"{where}: valid_to {version.valid_to} is before valid_from")
    for name in ("water_price_per_m3", "sewage_price_per_m3"):
        price: Decimal = getattr(version, name)
        if not price.is_finite() or price < 0:
            raise BillingError(f"{where}: {name} must be a price of 0 or more, got {price}")
        if price != price.quantize(Decimal(1).scaleb(-MAX_PRICE_DECIMALS)):
            raise BillingError(f"{where}: {name} {price} has more than 4 decimals")
    if version.subscription_fee_per_month < 0:
        raise BillingError(f"{where}: the subscription fee is negative")
    if not (Decimal(0) <= version.vat_rate < Decimal(1)):
        raise BillingError(f"{where}: VAT rate {version.vat_rate} is not a fraction like 0.08")


def _check_no_overlap(group: str, versions: Sequence[TariffVersion]) -> None:
    for earlier, later in zip(versions, versions[1:], strict=False):
        if earlier.valid_to is None or earlier.valid_to >= later.valid_from:
            raise BillingError(
                f"tariff group {group!r}: version from {earlier.valid_from} overlaps the "
                f"version from {later.valid_from}; end the earlier one before the later starts"
            )


def tariff_spans(tariff: Tariff, start: date, end: date) -> list[TariffSpan]:
    """The days ``start``..``end`` (inclusive) split by tariff version, in date order.

    Raises BillingError if some day in the range has no version in force.
    """
    spans: list[TariffSpan] = []
    day = start
    while day <= end:
        version = tariff.version_on(day)
        last = end if version.valid_to is None else min(end, version.valid_to)
        spans.append(TariffSpan(version, day, last))
        day = last + timedelta(days=1)
    return spans
