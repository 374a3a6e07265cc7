"""Rate limits on login, registration and password reset, counted in PostgreSQL.

Counters live in ``rate_limits`` so every gunicorn worker and every machine shares them.
They are keyed per (IP, e-mail) and per IP, never per e-mail alone: an attacker elsewhere
can slow down only their own attempts, never lock a customer out. Being over a limit means
"try again in N seconds" (the rest of the window), not a locked account.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import secrets

import psycopg
from flask import current_app, request

from meterflow.errors import StoreError
from portal.db import Conn, pool_of


@dataclasses.dataclass(frozen=True, slots=True)
class Limit:
    """At most ``hits`` attempts per ``window_s`` seconds for one key."""

    hits: int
    window_s: int


# action -> (limit per IP and e-mail, limit per IP)
DEFAULT_LIMITS: dict[str, tuple[Limit, Limit]] = {
    "login": (Limit(10, 900), Limit(100, 900)),
    "register": (Limit(5, 3600), Limit(20, 3600)),
    "reset": (Limit(5, 3600), Limit(30, 3600)),
    "staff_login": (Limit(10, 900), Limit(50, 900)),
}
_UPSERT = (
    "INSERT INTO rate_limits AS r (bucket, window_start)"
    " VALUES (%(b)s, to_timestamp(floor(extract(epoch FROM now()) / %(w)s) * %(w)s))"
    " ON CONFLICT (bucket, window_start) DO UPDATE SET hits = r.hits + 1"
    " RETURNING hits, extract(epoch FROM r.window_start - now()) + %(w)s AS left_s"
)


def hit(action: str, email: str = "", ip: str | None = None) -> int | None:
    """Count one attempt at ``action``; return seconds to wait if over a limit, else None.

    Raises StoreError if the counters cannot be written.
    """
    limits: dict[str, tuple[Limit, Limit]] = current_app.config["RATE_LIMITS"]
    per_pair, per_ip = limits[action]
    address = ip or request.remote_addr or "unknown"
    buckets = [(f"{action}:ip:{address}", per_ip)]
    if email:
        digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
        buckets.append((f"{action}:ip-email:{address}:{digest}", per_pair))
    wait = 0
    try:
        with pool_of(current_app).connection() as conn:
            for bucket, limit in buckets:
                row = conn.execute(_UPSERT, {"b": bucket, "w": limit.window_s}).fetchone()
                assert row is not None
                if row["hits"] > limit.hits:
                    wait = max(wait, math.ceil(float(row["left_s"])))
            if secrets.randbelow(200) == 0:
                purge_old(conn)
    except psycopg.Error as exc:
        raise StoreError(f"cannot count attempts: {exc}") from exc
    return max(wait, 1) if wait else None


def purge_old(conn: Conn) -> int:
    """Delete counters of windows that started over a day ago; return how many."""
    return conn.execute(
        "DELETE FROM rate_limits WHERE window_start < now() - interval '1 day'"
    ).rowcount
