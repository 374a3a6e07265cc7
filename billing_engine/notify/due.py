"""Notices that fall due by date and that no document announces: an overdue reminder a few
days after a charge's due date (before billing's payment demand), and e-powiadomienie UMOWA
before a contract ends. Run once a day (``meterflow notify queue-due``); the dedup keys
make a re-run, or a run on the next day, queue nothing twice."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import psycopg

# What is still owed on a charge: its amount less the payments allocated to it.
_OVERDUE = """
INSERT INTO outbox (kind, customer_id, dedup_key, payload)
SELECT 'overdue_reminder', e.customer_id, 'overdue:' || e.entry_id,
       jsonb_build_object('charge_id', e.entry_id, 'invoice_id', e.invoice_id,
                          'invoice_no', e.reference, 'due_date', e.due_date,
                          'overdue_gr', e.amount_gr - coalesce(paid.gr, 0))
FROM ledger_entries e
LEFT JOIN LATERAL (SELECT sum(a.amount_gr) AS gr FROM payment_allocations a
                   WHERE a.charge_id = e.entry_id) paid ON true
WHERE e.kind = 'charge' AND e.due_date BETWEEN %(oldest)s AND %(latest)s
  AND e.amount_gr - coalesce(paid.gr, 0) > 0
  AND NOT EXISTS (SELECT 1 FROM payment_demands d WHERE d.charge_id = e.entry_id)
ON CONFLICT (dedup_key) DO NOTHING
"""

_CONTRACTS = """
INSERT INTO outbox (kind, customer_id, dedup_key, payload)
SELECT 'contract_ending', c.customer_id, 'contract_ending:' || c.contract_id || ':' || c.valid_to,
       jsonb_build_object('contract_id', c.contract_id, 'contract_no', c.contract_no,
                          'valid_to', c.valid_to, 'renewal', false)
FROM contracts c
WHERE c.valid_to BETWEEN %(today)s AND %(until)s
  AND NOT EXISTS (SELECT 1 FROM contracts n
                  WHERE n.service_point_id = c.service_point_id
                    AND n.customer_id = c.customer_id AND n.valid_from > c.valid_to)
ON CONFLICT (dedup_key) DO NOTHING
"""


def queue_overdue_reminders(
    conn: psycopg.Connection[Any], today: date, after_days: int = 3, window_days: int = 10
) -> int:
    """Queue one reminder per charge still owed ``after_days`` days past its due date (looking
    back ``window_days``), unless a payment demand went out; return how many."""
    latest = today - timedelta(days=after_days)
    oldest = latest - timedelta(days=window_days)
    return conn.execute(_OVERDUE, {"oldest": oldest, "latest": latest}).rowcount


def queue_contract_endings(
    conn: psycopg.Connection[Any], today: date, days_before: int = 30
) -> int:
    """Queue e-powiadomienie UMOWA for contracts ending within ``days_before`` days that no
    later contract of the same customer at the same service point follows; return how many."""
    until = today + timedelta(days=days_before)
    return conn.execute(_CONTRACTS, {"today": today, "until": until}).rowcount
