"""The dashboard's money figures agree with billing's ledger rules, replayed once or twice."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from billing_engine.ledger import balance, overdue_debt, replay
from billing_engine.model import LedgerEntry
from portal.customer.data import account

TODAY = date(2026, 5, 20)


def _entries(with_future: bool) -> list[LedgerEntry]:
    entries = [
        LedgerEntry(1, "charge", 10_000, TODAY - timedelta(days=60), TODAY - timedelta(days=45)),
        LedgerEntry(2, "charge", 8_000, TODAY - timedelta(days=30), TODAY - timedelta(days=5)),
        LedgerEntry(3, "payment", -12_000, TODAY - timedelta(days=20), None),
        LedgerEntry(4, "charge", 9_000, TODAY - timedelta(days=2), TODAY + timedelta(days=12)),
    ]
    if with_future:
        entries.append(
            LedgerEntry(5, "payment", -9_000, TODAY + timedelta(days=1), None),
        )
    return entries


@pytest.mark.parametrize("with_future", [False, True])
def test_account_matches_billing_rules(with_future: bool) -> None:
    entries = _entries(with_future)
    got = account(entries, TODAY)
    assert got.balance_gr == balance(entries)
    assert got.overdue_gr == overdue_debt(entries, TODAY)
    upcoming = [c for c in replay(entries).open_charges if c.due_on >= TODAY]
    assert got.next_due == (upcoming[0].due_on if upcoming else None)
    assert got.overdue_gr == 6_000
