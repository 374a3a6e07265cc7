"""e-komunikat: fan an announcement out to the customers it concerns, as outbox notices.

An announcement (the portal's ``announcements`` with its ``announcement_streets``) concerns
every customer with a contract in force during it at a service point whose address starts
with one of its streets (in the named city, if any); with no streets, every such customer.
``group_code`` narrows it to one billing group. Each customer gets one notice per
announcement however often this runs (the dedup key names both).
"""

from __future__ import annotations

from typing import Any

import psycopg

_FAN_OUT = """
INSERT INTO outbox (kind, customer_id, dedup_key, payload)
SELECT DISTINCT ON (c.customer_id)
       'announcement', c.customer_id, 'announcement:' || a.announcement_id || ':' || c.customer_id,
       jsonb_build_object('announcement_id', a.announcement_id, 'announcement_kind', a.kind,
                          'title', a.title, 'body', a.body,
                          'starts_at', a.starts_at, 'ends_at', a.ends_at)
FROM announcements a
JOIN contracts c
  ON c.valid_from <= (a.ends_at AT TIME ZONE 'Europe/Warsaw')::date
 AND (c.valid_to IS NULL OR c.valid_to >= (a.starts_at AT TIME ZONE 'Europe/Warsaw')::date)
JOIN service_points sp ON sp.service_point_id = c.service_point_id
WHERE a.announcement_id = %(announcement)s
  AND (%(group)s::text IS NULL OR c.group_code = %(group)s)
  AND (NOT EXISTS (SELECT 1 FROM announcement_streets s
                   WHERE s.announcement_id = a.announcement_id)
       OR EXISTS (SELECT 1 FROM announcement_streets s
                  WHERE s.announcement_id = a.announcement_id
                    AND left(lower(sp.address), length(s.street)) = lower(s.street)
                    AND (s.city = '' OR lower(s.city) = lower(sp.city))))
ORDER BY c.customer_id
ON CONFLICT (dedup_key) DO NOTHING
"""


def fan_out_announcement(
    conn: psycopg.Connection[Any], announcement_id: int, group_code: str | None = None
) -> int:
    """Queue the announcement for every customer it concerns; return how many new notices."""
    cur = conn.execute(_FAN_OUT, {"announcement": announcement_id, "group": group_code})
    return cur.rowcount
