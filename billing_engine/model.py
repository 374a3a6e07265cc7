"""The values the billing rules take and return: frozen dataclasses, no I/O.

Conventions (docs/billing-rules.md says why):

- Money is ``int`` grosze; prices are ``Decimal`` PLN net per unit (up to 4 decimals).
- Meter values and volumes are ``Decimal`` m3 (the register's own resolution, litres = 0.001).
- Calendar dates (periods, tariff versions, due dates) are Europe/Warsaw days, both ends
  inclusive; instants (readings, boundaries) are timezone-aware UTC datetimes.

Public functions built on these values (signatures are stable):

- money: ``round_grosze(pln: Decimal) -> int``, ``to_pln(grosze: int) -> Decimal``,
  ``parse_pln(text: str) -> int``, ``format_pln(grosze: int) -> str``.
- tariffs: ``Tariff(group, versions, norm_m3_per_day)`` (validated on creation),
  ``Tariff.version_on(day)``, ``tariff_spans(tariff, start, end) -> list[TariffSpan]``.
- periods: ``period_containing(day, kind, anchor_month=1) -> BillingPeriod``,
  ``period_for_label("2026-10", kind) -> BillingPeriod``, ``next_period(period)``,
  ``periods_between(first_day, last_day, kind) -> list[BillingPeriod]``,
  ``previous_period(period)``, ``boundary_instant(day) -> datetime`` (00:00 Europe/Warsaw
  of ``day`` in UTC), ``warsaw_day(at) -> date``.
- consumption: ``consumption_for_period(period, installations, readings, *, role="main",
  opening=None, norm_m3_per_day, now, rules=ConsumptionRules()) -> PeriodConsumption``,
  ``daily_use_series(readings) -> pandas.DataFrame``.
- estimates: ``estimate_boundary(at, readings, base, norm_m3_per_day, rules) -> BoundaryReading``,
  ``correction_for(previous_estimate: PeriodConsumption, actual: MeterReading)
  -> EstimateCorrection``.
- invoicing: ``invoice_lines(contract, tariff, period, consumption, garden=None)
  -> list[InvoiceLine]``, ``invoice_totals(lines) -> InvoiceTotals``,
  ``correction_lines(billed, corrected) -> list[InvoiceLine]``.
- ledger: ``allocate_fifo(open_charges, payment_grosze, *, credit_id, on) -> FifoResult``,
  ``replay(entries) -> LedgerState``, ``balance(entries) -> int``,
  ``overdue(entries, today) -> list[OpenCharge]``, ``overdue_debt(entries, today) -> int``.
- interest: ``load_reference_rates(path=None) -> tuple[ReferenceRate, ...]``,
  ``interest_for(amount_grosze, due_on, paid_on, rates, party) -> InterestResult``.
- customer_readings: ``check_customer_reading(reading, history, kind, now,
  anchor_month=1) -> None`` (raises ``ReadingRefused``).
- dunning: ``reminders_due(charges, today, policy, sent)``, ``demands_due(charges, today,
  policy, sent)``, ``interest_note_items(entries, today, rates, party, policy, noted)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from meterflow.errors import BillingError

PeriodKind = Literal["monthly", "bimonthly", "quarterly"]
ReadingSource = Literal["remote", "inspector", "customer", "estimate"]
MeterRole = Literal["main", "garden"]
Party = Literal["consumer", "business"]
LineKind = Literal["water", "sewage", "subscription"]
EntryKind = Literal["charge", "interest", "payment", "credit_note"]
NoticeKind = Literal["reminder", "demand", "interest_note"]

ACTUAL_SOURCES: frozenset[str] = frozenset({"remote", "inspector", "customer"})
UTILITY_SOURCES: frozenset[str] = frozenset({"remote", "inspector"})


class ReadingRefused(BillingError):
    """A customer's meter reading breaks a rule; ``code`` says which one."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class TariffVersion:
    """Prices of one tariff group valid from ``valid_from`` to ``valid_to`` (inclusive)."""

    valid_from: date
    valid_to: date | None
    water_price_per_m3: Decimal
    sewage_price_per_m3: Decimal
    subscription_fee_per_month: int
    vat_rate: Decimal = Decimal("0.08")


@dataclass(frozen=True)
class TariffSpan:
    """The part of a date range one tariff version covers."""

    version: TariffVersion
    start: date
    end: date

    @property
    def days(self) -> int:
        """Number of days in the span, both ends included."""
        return (self.end - self.start).days + 1


@dataclass(frozen=True)
class BillingPeriod:
    """A billing period in Europe/Warsaw days, ``start`` and ``end`` both included."""

    start: date
    end: date
    kind: PeriodKind = "monthly"

    @property
    def days(self) -> int:
        """Number of days in the period."""
        return (self.end - self.start).days + 1

    @property
    def months(self) -> int:
        """Number of calendar months the period's kind stands for."""
        return {"monthly": 1, "bimonthly": 2, "quarterly": 3}[self.kind]

    @property
    def label(self) -> str:
        """The period's label, e.g. ``2026-10`` (its first month)."""
        return f"{self.start.year:04d}-{self.start.month:02d}"


@dataclass(frozen=True)
class MeterReading:
    """One cumulative register reading of a meter."""

    meter_id: str
    read_at: datetime
    value_m3: Decimal
    source: ReadingSource
    backward_m3: Decimal | None = None


@dataclass(frozen=True)
class MeterInstallation:
    """A meter fitted at a service point from ``installed_on`` to ``removed_on`` (inclusive)."""

    meter_id: str
    installed_on: date
    removed_on: date | None
    initial_m3: Decimal
    final_m3: Decimal | None = None
    role: MeterRole = "main"
    register_modulus_m3: Decimal = Decimal("100000")


@dataclass(frozen=True)
class BoundaryReading:
    """The register value taken for a period boundary, and where it came from."""

    meter_id: str
    at: datetime
    value_m3: Decimal
    source: ReadingSource
    basis: str

    @property
    def estimated(self) -> bool:
        """True if the value is an estimate, not a reading."""
        return self.source == "estimate"


@dataclass(frozen=True)
class ConsumptionRules:
    """Tunable rules of consumption: boundary window, estimate history, jump detection."""

    boundary_window_days: int = 3
    history_days: int = 90
    min_history_days: int = 14
    jump_factor: Decimal = Decimal("10")
    jump_floor_m3_per_day: Decimal = Decimal("1")


@dataclass(frozen=True)
class PeriodConsumption:
    """Volume of one meter role over one billing period; ``held`` ones must not be billed."""

    period: BillingPeriod
    role: MeterRole
    start_reading: BoundaryReading
    end_reading: BoundaryReading
    volume_m3: Decimal
    basis: str
    held: bool = False
    hold_reason: str | None = None

    @property
    def estimated(self) -> bool:
        """True if either boundary is an estimate."""
        return self.start_reading.estimated or self.end_reading.estimated


@dataclass(frozen=True)
class EstimateCorrection:
    """How an actual reading corrects an estimated period end."""

    corrected_end: BoundaryReading
    billed_volume_m3: Decimal
    corrected_volume_m3: Decimal

    @property
    def volume_delta_m3(self) -> Decimal:
        """Volume to add (positive) or refund (negative) for the estimated period."""
        return self.corrected_volume_m3 - self.billed_volume_m3


@dataclass(frozen=True)
class Contract:
    """A supply contract of one customer at one service point."""

    contract_id: int
    customer_id: int
    party: Party
    tariff_group: str
    billing_kind: PeriodKind
    starts_on: date
    ends_on: date | None = None
    water: bool = True
    sewage: bool = True
    billing_group: str = "default"


@dataclass(frozen=True)
class InvoiceLine:
    """One invoice line: quantity times net unit price, net amount in grosze."""

    kind: LineKind
    description: str
    start: date
    end: date
    quantity: Decimal
    unit: str
    unit_price: Decimal
    net_grosze: int
    vat_rate: Decimal


@dataclass(frozen=True)
class VatSummary:
    """Net, VAT and gross of all lines with one VAT rate."""

    vat_rate: Decimal
    net_grosze: int
    vat_grosze: int

    @property
    def gross_grosze(self) -> int:
        """Net plus VAT."""
        return self.net_grosze + self.vat_grosze


@dataclass(frozen=True)
class InvoiceTotals:
    """The invoice's VAT table and its totals."""

    by_rate: tuple[VatSummary, ...]

    @property
    def net_grosze(self) -> int:
        """Sum of nets."""
        return sum(s.net_grosze for s in self.by_rate)

    @property
    def vat_grosze(self) -> int:
        """Sum of VAT per rate."""
        return sum(s.vat_grosze for s in self.by_rate)

    @property
    def gross_grosze(self) -> int:
        """Amount to pay."""
        return self.net_grosze + self.vat_grosze


@dataclass(frozen=True)
class LedgerEntry:
    """A booking on a customer account; charges and interest positive, credits negative."""

    entry_id: int
    kind: EntryKind
    amount_grosze: int
    booked_on: date
    due_on: date | None = None
    document: str | None = None


@dataclass(frozen=True)
class OpenCharge:
    """A charge (or interest) with what is still owed on it."""

    charge_id: int
    due_on: date
    outstanding_grosze: int
    document: str | None = None


@dataclass(frozen=True)
class Allocation:
    """Part of a payment or credit note settling part of a charge on a day."""

    charge_id: int
    credit_id: int
    amount_grosze: int
    on: date


@dataclass(frozen=True)
class FifoResult:
    """Where a payment went, and what is left over as credit."""

    allocations: tuple[Allocation, ...]
    remaining_credit_grosze: int


@dataclass(frozen=True)
class LedgerState:
    """An account replayed: open charges oldest due first, unused credit, allocations."""

    open_charges: tuple[OpenCharge, ...]
    credit_grosze: int
    allocations: tuple[Allocation, ...] = field(default=())


@dataclass(frozen=True)
class ReferenceRate:
    """The NBP reference rate (percent a year) in force from ``effective_from``."""

    effective_from: date
    rate_percent: Decimal


@dataclass(frozen=True)
class InterestSpan:
    """Interest over days with one statutory rate; ``amount_grosze`` is unrounded."""

    start: date
    end: date
    days: int
    annual_rate_percent: Decimal
    amount_grosze: Decimal


@dataclass(frozen=True)
class InterestResult:
    """Statutory interest for delay: the total rounded once, and its per-rate spans."""

    principal_grosze: int
    total_grosze: int
    spans: tuple[InterestSpan, ...]


@dataclass(frozen=True)
class DunningPolicy:
    """When reminders, payment demands and interest notes are due."""

    reminder_days_before_due: int = 3
    demand_after_overdue_days: int = 14
    min_interest_grosze: int = 1


@dataclass(frozen=True)
class InterestNoteItem:
    """One late-paid part of a charge and the interest it earned."""

    charge_id: int
    credit_id: int
    document: str | None
    due_on: date
    paid_on: date
    interest: InterestResult
