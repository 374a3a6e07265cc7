"""A customer account's ledger: FIFO settlement of charges, balance and overdue debt.

Amounts are signed grosze: charges and interest positive (the customer owes), payments and
credit notes negative. Credits settle the open charge with the oldest due date first; what
is left over is carried as credit and settles the next charge booked.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from billing_engine.model import (
    Allocation,
    FifoResult,
    LedgerEntry,
    LedgerState,
    OpenCharge,
)
from meterflow.errors import BillingError

DEBIT_KINDS = frozenset({"charge", "interest"})


def allocate_fifo(
    open_charges: Sequence[OpenCharge], payment_grosze: int, *, credit_id: int, on: date
) -> FifoResult:
    """Share a payment over the open charges, oldest due first; the rest stays as credit.

    Raises BillingError if the payment is negative.
    """
    if payment_grosze < 0:
        raise BillingError(f"a payment of {payment_grosze} grosze is negative")
    left = payment_grosze
    allocations = []
    for charge in sorted(open_charges, key=lambda c: (c.due_on, c.charge_id)):
        if left == 0:
            break
        amount = min(left, charge.outstanding_grosze)
        if amount > 0:
            allocations.append(Allocation(charge.charge_id, credit_id, amount, on))
            left -= amount
    return FifoResult(tuple(allocations), left)


def _check(entry: LedgerEntry) -> None:
    if entry.kind in DEBIT_KINDS and (entry.amount_grosze <= 0 or entry.due_on is None):
        raise BillingError(f"{entry.kind} {entry.entry_id} needs a positive amount and a due date")
    if entry.kind not in DEBIT_KINDS and entry.amount_grosze >= 0:
        raise BillingError(f"{entry.kind} {entry.entry_id} must be a negative amount")


def _order(entry: LedgerEntry) -> tuple[date, int, int]:
    return (entry.booked_on, 0 if entry.kind in DEBIT_KINDS else 1, entry.entry_id)


def replay(entries: Sequence[LedgerEntry]) -> LedgerState:
    """The account after every entry in booking order, with each FIFO allocation made.

    Raises BillingError if a charge is not positive or lacks a due date, or a credit is not
    negative.
    """
    open_: dict[int, OpenCharge] = {}
    credits: list[tuple[int, int]] = []
    allocations: list[Allocation] = []
    for entry in sorted(entries, key=_order):
        _check(entry)
        if entry.kind not in DEBIT_KINDS:
            credits.append((entry.entry_id, -entry.amount_grosze))
        elif entry.due_on is not None:
            open_[entry.entry_id] = OpenCharge(
                entry.entry_id, entry.due_on, entry.amount_grosze, entry.document
            )
        while credits and open_:
            credit_id, amount = credits.pop(0)
            result = allocate_fifo(
                list(open_.values()), amount, credit_id=credit_id, on=entry.booked_on
            )
            for allocation in result.allocations:
                charge = open_[allocation.charge_id]
                left = charge.outstanding_grosze - allocation.amount_grosze
                if left:
                    open_[charge.charge_id] = OpenCharge(
                        charge.charge_id, charge.due_on, left, charge.document
                    )
                else:
                    del open_[charge.charge_id]
            allocations.extend(result.allocations)
            if result.remaining_credit_grosze:
                credits.insert(0, (credit_id, result.remaining_credit_grosze))
    still_open = tuple(sorted(open_.values(), key=lambda c: (c.due_on, c.charge_id)))
    return LedgerState(still_open, sum(amount for _, amount in credits), tuple(allocations))


def balance(entries: Sequence[LedgerEntry]) -> int:
    """What the customer owes (positive) or has in credit (negative): the sum of entries."""
    return sum(entry.amount_grosze for entry in entries)


def overdue(entries: Sequence[LedgerEntry], today: date) -> list[OpenCharge]:
    """Charges booked by ``today`` still open after their due date, oldest due first."""
    state = replay([e for e in entries if e.booked_on <= today])
    return [charge for charge in state.open_charges if charge.due_on < today]


def overdue_debt(entries: Sequence[LedgerEntry], today: date) -> int:
    """The sum still owed on charges past their due date."""
    return sum(charge.outstanding_grosze for charge in overdue(entries, today))
