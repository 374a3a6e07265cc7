"""Results of remote readings on request: one ``remote_reading_result`` notice per answered
request. A request is answered by the first volume reading of its meter received after it
was made (the portal's ``customer/remote.py`` shows the same answer). The notice's dedup
key ``remote_reading_result:<request id>`` is the request's mark: finding the answer, and
writing the notice that marks the request, are one statement, so a re-run (or two
schedulers at once) queues nothing twice.
"""

from __future__ import annotations

from typing import Any

import psycopg

from billing_engine.inputs import VOLUME

# Requests older than this are no longer looked at: an answer days later is not the result
# the customer asked for, and the scan stays small however many requests pile up.
LOOK_BACK_DAYS = 3

_ANSWERED = f"""
INSERT INTO outbox (kind, customer_id, dedup_key, payload)
SELECT 'remote_reading_result', q.customer_id, 'remote_reading_result:' || q.request_id,
       jsonb_build_object('request_id', q.request_id, 'meter_id', q.meter_id,
                          'value_m3', a.value::text, 'read_at', a.read_at)
FROM remote_read_requests q
CROSS JOIN LATERAL (
    SELECT read_at, value FROM readings
    WHERE meter_id = q.meter_id AND {VOLUME}
      AND read_at >= q.requested_at - interval '1 day' AND received_at >= q.requested_at
    ORDER BY read_at LIMIT 1
) a
WHERE q.status = 'sent'
  AND q.requested_at > now() - make_interval(days => %(days)s)
  AND NOT EXISTS (SELECT 1 FROM outbox o
                  WHERE o.dedup_key = 'remote_reading_result:' || q.request_id)
ORDER BY q.requested_at
ON CONFLICT (dedup_key) DO NOTHING
"""


def queue_remote_results(
    conn: psycopg.Connection[Any], look_back_days: int = LOOK_BACK_DAYS
) -> int:
    """Queue a result notice for each request of the last ``look_back_days`` days answered
    by a reading and not notified yet; return how many."""
    with conn.transaction():
        return conn.execute(_ANSWERED, {"days": look_back_days}).rowcount
