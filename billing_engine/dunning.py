"""Dunning decisions: payment reminders (e-monit), payment demands and interest notes.

Pure: the caller passes what was already sent, so a job run twice decides nothing twice.
"""

from __future__ import annotations

from collections.abc import Sequence, Set
from datetime import date, timedelta

from billing_engine.interest import interest_for
from billing_engine.ledger import replay
from billing_engine.model import (
    DunningPolicy,
    InterestNoteItem,
    LedgerEntry,
    NoticeKind,
    OpenCharge,
    Party,
    ReferenceRate,
)


def reminders_due(
    charges: Sequence[OpenCharge],
    today: date,
    policy: DunningPolicy,
    sent: Set[tuple[int, NoticeKind]],
) -> list[OpenCharge]:
    """Open charges due within ``reminder_days_before_due`` days that got no reminder yet."""
    window = timedelta(days=policy.reminder_days_before_due)
    return [
        c
        for c in charges
        if c.outstanding_grosze > 0
        and c.due_on - window <= today <= c.due_on
        and (c.charge_id, "reminder") not in sent
    ]


def demands_due(
    charges: Sequence[OpenCharge],
    today: date,
    policy: DunningPolicy,
    sent: Set[tuple[int, NoticeKind]],
) -> list[OpenCharge]:
    """Open charges overdue ``demand_after_overdue_days`` days or more with no demand yet."""
    return [
        c
        for c in charges
        if c.outstanding_grosze > 0
        and (today - c.due_on).days >= policy.demand_after_overdue_days
        and (c.charge_id, "demand") not in sent
    ]


def interest_note_items(
    entries: Sequence[LedgerEntry],
    today: date,
    rates: Sequence[ReferenceRate],
    party: Party,
    policy: DunningPolicy,
    noted: Set[tuple[int, int]],
) -> list[InterestNoteItem]:
    """Late payments of charges (not of interest) up to ``today`` not yet on an interest note.

    ``noted`` holds (charge id, credit id) pairs already noted. Items whose interest is
    below ``min_interest_grosze`` are left out.
    """
    booked = [e for e in entries if e.booked_on <= today]
    charges = {e.entry_id: e for e in booked if e.kind == "charge" and e.due_on is not None}
    items = []
    for allocation in replay(booked).allocations:
        charge = charges.get(allocation.charge_id)
        if charge is None or charge.due_on is None or allocation.on <= charge.due_on:
            continue
        if (allocation.charge_id, allocation.credit_id) in noted:
            continue
        result = interest_for(allocation.amount_grosze, charge.due_on, allocation.on, rates, party)
        if result.total_grosze >= policy.min_interest_grosze:
            items.append(
                InterestNoteItem(
                    charge.entry_id,
                    allocation.credit_id,
                    charge.document,
                    charge.due_on,
                    allocation.on,
                    result,
                )
            )
    return items
