"""Dunning decisions: reminders before due, demands after overdue days, interest notes."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from billing_engine.dunning import demands_due, interest_note_items, reminders_due
from billing_engine.interest import load_reference_rates
from billing_engine.model import DunningPolicy, LedgerEntry, OpenCharge

POLICY = DunningPolicy(reminder_days_before_due=3, demand_after_overdue_days=14)
DUE = date(2025, 9, 30)
CHARGES = [OpenCharge(1, DUE, 5_000), OpenCharge(2, date(2025, 10, 31), 7_000)]


def test_reminder_three_days_before_due_once() -> None:
    assert reminders_due(CHARGES, date(2025, 9, 26), POLICY, set()) == []
    assert reminders_due(CHARGES, date(2025, 9, 27), POLICY, set()) == [CHARGES[0]]
    assert reminders_due(CHARGES, date(2025, 9, 30), POLICY, {(1, "reminder")}) == []
    assert reminders_due(CHARGES, date(2025, 10, 1), POLICY, set()) == []


def test_payment_demand_after_fourteen_overdue_days_once() -> None:
    assert demands_due(CHARGES, date(2025, 10, 13), POLICY, set()) == []
    assert demands_due(CHARGES, date(2025, 10, 14), POLICY, set()) == [CHARGES[0]]
    assert demands_due(CHARGES, date(2025, 10, 20), POLICY, {(1, "demand")}) == []


def test_interest_note_for_a_late_payment_across_a_rate_change() -> None:
    entries = [
        LedgerEntry(1, "charge", 100_000, date(2025, 9, 16), DUE, "FV/2025/09/1"),
        LedgerEntry(2, "payment", -60_000, date(2025, 9, 29)),
        LedgerEntry(3, "payment", -40_000, date(2025, 10, 20)),
    ]
    rates = load_reference_rates()
    items = interest_note_items(entries, date(2025, 10, 31), rates, "consumer", POLICY, set())
    assert [(i.charge_id, i.credit_id, i.paid_on) for i in items] == [(1, 3, date(2025, 10, 20))]
    interest = items[0].interest
    # 400.00 PLN late 8 days at 10.25 % and 12 days at 10.00 %: 89.863 + 131.507 = 221.37 gr
    assert [s.annual_rate_percent for s in interest.spans] == [Decimal("10.25"), Decimal("10.00")]
    assert interest.total_grosze == 221
    assert (
        interest_note_items(entries, date(2025, 10, 31), rates, "consumer", POLICY, {(1, 3)}) == []
    )
