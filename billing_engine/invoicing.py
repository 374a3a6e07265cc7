"""Invoice lines (water, sewage, subscription), their VAT table and correction lines.

Net amounts are rounded half up to the grosz per line; VAT is computed per rate on the sum
of the nets of that rate and rounded once (art. 106e ust. 11 of the Polish VAT act allows
rounding per rate on the invoice), so line VATs are never summed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal

from billing_engine.model import (
    BillingPeriod,
    Contract,
    InvoiceLine,
    InvoiceTotals,
    LineKind,
    PeriodConsumption,
    TariffSpan,
    VatSummary,
)
from billing_engine.money import grosze_of, round_grosze, round_half_up
from billing_engine.tariffs import Tariff, tariff_spans
from meterflow.errors import BillingError

LITRE = Decimal("0.001")
MONTH_QUANTUM = Decimal("0.0001")
DESCRIPTIONS: dict[LineKind, str] = {
    "water": "Dostawa wody",
    "sewage": "Odprowadzanie ścieków",
    "subscription": "Opłata abonamentowa",
}


def billed_days(contract: Contract, period: BillingPeriod) -> tuple[date, date]:
    """The part of ``period`` the contract covers.

    Raises BillingError if the contract does not cover any day of the period.
    """
    start = max(period.start, contract.starts_on)
    end = period.end if contract.ends_on is None else min(period.end, contract.ends_on)
    if end < start:
        raise BillingError(
            f"contract {contract.contract_id} does not cover {period.start}..{period.end}"
        )
    return start, end


def split_by_days(volume_m3: Decimal, spans: Sequence[TariffSpan]) -> list[Decimal]:
    """``volume_m3`` shared pro rata by days, to the litre; the last span takes the remainder."""
    total_days = sum(span.days for span in spans)
    shares = [round_half_up(volume_m3 * span.days / total_days, LITRE) for span in spans[:-1]]
    return [*shares, volume_m3 - sum(shares, Decimal(0))]


def _volume_lines(
    kind: LineKind, volume: Decimal, spans: Sequence[TariffSpan]
) -> list[InvoiceLine]:
    lines = []
    for span, part in zip(spans, split_by_days(volume, spans), strict=True):
        price = (
            span.version.water_price_per_m3 if kind == "water" else span.version.sewage_price_per_m3
        )
        lines.append(
            InvoiceLine(
                kind,
                f"{DESCRIPTIONS[kind]} {span.start:%d.%m.%Y}–{span.end:%d.%m.%Y}",
                span.start,
                span.end,
                part,
                "m3",
                price,
                round_grosze(part * price),
                span.version.vat_rate,
            )
        )
    return lines


def _subscription_lines(period: BillingPeriod, spans: Sequence[TariffSpan]) -> list[InvoiceLine]:
    lines = []
    for span in spans:
        months = Decimal(period.months * span.days) / period.days
        fee = span.version.subscription_fee_per_month
        lines.append(
            InvoiceLine(
                "subscription",
                f"{DESCRIPTIONS['subscription']} {span.start:%d.%m.%Y}–{span.end:%d.%m.%Y}",
                span.start,
                span.end,
                round_half_up(months, MONTH_QUANTUM),
                "mies.",
                Decimal(fee) / 100,
                grosze_of(fee * months),
                span.version.vat_rate,
            )
        )
    return lines


def invoice_lines(
    contract: Contract,
    tariff: Tariff,
    period: BillingPeriod,
    consumption: PeriodConsumption,
    garden: PeriodConsumption | None = None,
) -> list[InvoiceLine]:
    """Lines of one period's invoice: water, sewage (water less garden), subscription fee.

    A period across a tariff change gets one line per version, volumes and the monthly fee
    shared by days. A contract starting or ending inside the period is billed for its days.
    Raises BillingError if a consumption is held for review, belongs to another period, or
    the tariff has no version for some billed day.
    """
    for used in (consumption, garden):
        if used is not None and used.held:
            raise BillingError(f"consumption held for review: {used.hold_reason}")
        if used is not None and used.period != period:
            raise BillingError("the consumption given is for another billing period")
    spans = tariff_spans(tariff, *billed_days(contract, period))
    lines: list[InvoiceLine] = []
    if contract.water:
        lines += _volume_lines("water", consumption.volume_m3, spans)
    if contract.sewage:
        garden_m3 = Decimal(0) if garden is None else garden.volume_m3
        sewage_m3 = consumption.volume_m3 - garden_m3
        lines += _volume_lines("sewage", max(sewage_m3, Decimal(0)), spans)
    return lines + _subscription_lines(period, spans)


def invoice_totals(lines: Sequence[InvoiceLine]) -> InvoiceTotals:
    """The VAT table: per rate, the sum of nets and the VAT on that sum rounded half up."""
    nets: dict[Decimal, int] = {}
    for line in lines:
        nets[line.vat_rate] = nets.get(line.vat_rate, 0) + line.net_grosze
    summaries = tuple(
        VatSummary(rate, net, grosze_of(net * rate)) for rate, net in sorted(nets.items())
    )
    return InvoiceTotals(summaries)


def _key(line: InvoiceLine) -> tuple[str, date, date, Decimal, Decimal, str]:
    return (line.kind, line.start, line.end, line.unit_price, line.vat_rate, line.unit)


def correction_lines(
    billed: Sequence[InvoiceLine], corrected: Sequence[InvoiceLine]
) -> list[InvoiceLine]:
    """Lines of a correction invoice: what should have been billed less what was billed.

    Lines are matched by kind, dates, unit price and VAT rate; unchanged ones are left out.
    """
    before = {_key(line): line for line in billed}
    after = {_key(line): line for line in corrected}
    lines = []
    for key in dict.fromkeys([*before, *after]):
        old, new = before.get(key), after.get(key)
        template = after.get(key) or before[key]
        quantity = (new.quantity if new else Decimal(0)) - (old.quantity if old else Decimal(0))
        net = (new.net_grosze if new else 0) - (old.net_grosze if old else 0)
        if quantity == 0 and net == 0:
            continue
        lines.append(
            InvoiceLine(
                template.kind,
                f"Korekta: {template.description}",
                template.start,
                template.end,
                quantity,
                template.unit,
                template.unit_price,
                net,
                template.vat_rate,
            )
        )
    return lines
