"""Ledger: FIFO settlement, overpayment carried as credit, balance and overdue debt."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing_engine.ledger import allocate_fifo, balance, overdue, overdue_debt, replay
from billing_engine.model import Allocation, LedgerEntry, OpenCharge
from meterflow.errors import BillingError

JAN, FEB, MAR = date(2026, 1, 31), date(2026, 2, 28), date(2026, 3, 31)


def charge(entry_id: int, grosze: int, due: date, booked: date | None = None) -> LedgerEntry:
    return LedgerEntry(entry_id, "charge", grosze, booked or date(2026, 1, 1), due, f"F/{entry_id}")


def payment(entry_id: int, grosze: int, booked: date) -> LedgerEntry:
    return LedgerEntry(entry_id, "payment", -grosze, booked)


def test_payment_settles_oldest_due_first_and_overpayment_is_carried() -> None:
    entries = [
        charge(1, 10_050, FEB),
        charge(2, 8_000, JAN),
        payment(3, 20_000, date(2026, 2, 10)),
    ]
    state = replay(entries)
    assert state.allocations == (
        Allocation(2, 3, 8_000, date(2026, 2, 10)),
        Allocation(1, 3, 10_050, date(2026, 2, 10)),
    )
    assert state.open_charges == () and state.credit_grosze == 1_950
    assert balance(entries) == -1_950
    later = [*entries, charge(4, 5_000, MAR, booked=date(2026, 3, 1))]
    state = replay(later)
    assert state.open_charges == (OpenCharge(4, MAR, 3_050, "F/4"),)
    assert state.allocations[-1] == Allocation(4, 3, 1_950, date(2026, 3, 1))


def test_partial_payment_leaves_the_newer_charge_overdue() -> None:
    entries = [charge(1, 10_000, JAN), charge(2, 7_000, FEB), payment(3, 12_000, date(2026, 1, 20))]
    assert overdue(entries, date(2026, 3, 1)) == [OpenCharge(2, FEB, 5_000, "F/2")]
    assert overdue_debt(entries, date(2026, 2, 28)) == 0
    assert overdue_debt(entries, date(2026, 3, 1)) == 5_000


def test_allocate_fifo_on_open_charges() -> None:
    charges = [OpenCharge(7, FEB, 300), OpenCharge(5, JAN, 200)]
    result = allocate_fifo(charges, 250, credit_id=9, on=FEB)
    assert result.allocations == (Allocation(5, 9, 200, FEB), Allocation(7, 9, 50, FEB))
    assert result.remaining_credit_grosze == 0


def test_malformed_entries_are_refused() -> None:
    with pytest.raises(BillingError, match="positive amount and a due date"):
        replay([LedgerEntry(1, "charge", 100, JAN)])
    with pytest.raises(BillingError, match="must be a negative amount"):
        replay([LedgerEntry(1, "payment", 100, JAN)])
    with pytest.raises(BillingError, match="negative"):
        allocate_fifo([], -1, credit_id=1, on=JAN)


amounts = st.integers(min_value=1, max_value=5_000_000)
days = st.dates(min_value=date(2026, 1, 1), max_value=date(2026, 12, 31))
entry_specs = st.lists(st.tuples(st.booleans(), amounts, days, days), max_size=30)


def _entries(specs: list[tuple[bool, int, date, date]]) -> list[LedgerEntry]:
    return [
        charge(i, amount, due, booked) if is_charge else payment(i, amount, booked)
        for i, (is_charge, amount, booked, due) in enumerate(specs)
    ]


@given(entry_specs)
def test_balance_equals_sum_of_entries_and_open_items(specs: list) -> None:  # type: ignore[type-arg]
    entries = _entries(specs)
    state = replay(entries)
    assert balance(entries) == sum(e.amount_grosze for e in entries)
    open_total = sum(c.outstanding_grosze for c in state.open_charges)
    assert balance(entries) == open_total - state.credit_grosze
    assert open_total == 0 or state.credit_grosze == 0


@given(entry_specs)
def test_fifo_never_allocates_more_than_paid_or_owed(specs: list) -> None:  # type: ignore[type-arg]
    entries = _entries(specs)
    state = replay(entries)
    for entry in entries:
        given_out = sum(a.amount_grosze for a in state.allocations if a.credit_id == entry.entry_id)
        taken = sum(a.amount_grosze for a in state.allocations if a.charge_id == entry.entry_id)
        assert all(a.amount_grosze > 0 for a in state.allocations)
        if entry.kind == "payment":
            assert given_out <= -entry.amount_grosze and taken == 0
        else:
            assert taken <= entry.amount_grosze and given_out == 0


@given(st.lists(st.tuples(st.integers(1, 10**6), days), max_size=10), st.integers(0, 10**7))
def test_allocate_fifo_conserves_the_payment(charges: list, paid: int) -> None:  # type: ignore[type-arg]
    open_charges = [OpenCharge(i, due, amount) for i, (amount, due) in enumerate(charges)]
    result = allocate_fifo(open_charges, paid, credit_id=-1, on=JAN)
    allocated = sum(a.amount_grosze for a in result.allocations)
    assert allocated + result.remaining_credit_grosze == paid
    assert allocated <= sum(c.outstanding_grosze for c in open_charges)
    for a in result.allocations:
        assert (
            a.amount_grosze
            <= next(c for c in open_charges if c.charge_id == a.charge_id).outstanding_grosze
        )
