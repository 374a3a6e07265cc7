"""The sender's SQL: routing outbox notices to deliveries, claiming, marking, recovery.

A worker holds a session advisory lock on its own id for its whole life. A delivery left
'claimed' or 'sending' by a worker whose lock is free again belongs to a dead worker: the
lock vanished with its database session, so no clock or timeout is needed to tell.

The claim is committed synchronously; the per-message marks ('sending' before the network
call, the result after it) with ``synchronous_commit = off``, which saves a disk flush per
message. An asynchronous commit is visible at once and survives a crash of the sender; only
a crash of the PostgreSQL server can lose the last of them, and then every delivery of a dead
worker claimed before the server's start counts as possibly sent.

Marks (``Marks``): one statement per message commits the last result and the next 'sending'
mark. A delivery's state is always exact; what a 'sent' result leaves for later is its row
in ``notify_attempts`` and ``outbox.sent_at``, written for ``LOG_EVERY`` sent deliveries at
once and at the latest with a lane's last mark of a batch. A 'sent' row keeps its worker's
id, so recovery rewrites the log of a dead worker's sent deliveries that it had not written
yet (while such rows exist the worker has a delivery in flight: that is how recovery finds
it).
Any other result (failed, dead, duplicate) is logged at once (``advance``).
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import TupleRow

Conn = psycopg.Connection[TupleRow]
# First key of the two-int advisory locks of sender workers ("notf").
LOCK_SPACE = 0x6E6F7466
# Sent deliveries of a lane whose attempt log (and outbox.sent_at) is written in one go.
LOG_EVERY = 32

_ROUTE = """
WITH batch AS (
    SELECT o.outbox_id, o.kind, o.customer_id, o.payload, k.legally_required
    FROM outbox o JOIN notice_kinds k ON k.kind = o.kind
    WHERE o.routed_at IS NULL
    ORDER BY o.outbox_id LIMIT %(limit)s FOR UPDATE OF o SKIP LOCKED
), routed AS (
    UPDATE outbox SET routed_at = now() FROM batch WHERE outbox.outbox_id = batch.outbox_id
), wanted AS (
    SELECT b.outbox_id, b.payload->>'channel' AS channel,
           coalesce(b.payload->>'to', '') AS address
    FROM batch b WHERE b.payload ? 'channel'
    UNION ALL
    SELECT b.outbox_id, ch.channel,
           coalesce(CASE ch.channel WHEN 'email' THEN c.email ELSE c.phone END, '')
    FROM batch b
    JOIN customers c ON c.customer_id = b.customer_id
    CROSS JOIN (VALUES ('email'), ('sms')) AS ch(channel)
    LEFT JOIN notification_preferences p
           ON p.customer_id = b.customer_id AND p.kind = b.kind
    WHERE NOT b.payload ? 'channel'
      AND CASE ch.channel WHEN 'email' THEN b.legally_required OR coalesce(p.by_email, true)
                          ELSE coalesce(p.by_sms, false) END
)
INSERT INTO notify_deliveries (outbox_id, channel, address, status, last_error)
SELECT outbox_id, channel, address,
       CASE WHEN channel IN ('email', 'sms') AND address <> '' THEN 'pending'
            ELSE 'skipped' END,
       CASE WHEN channel NOT IN ('email', 'sms') THEN 'the sender does not deliver ' || channel
            WHEN address = '' THEN 'no ' || channel || ' address' END
FROM wanted
"""

_CLAIM = """
WITH picked AS (
    SELECT outbox_id, channel FROM notify_deliveries
    WHERE status = 'pending' AND channel = %(channel)s AND next_attempt_at <= now()
    ORDER BY next_attempt_at, outbox_id LIMIT %(limit)s FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE notify_deliveries d
    SET status = 'claimed', worker_id = %(worker)s, updated_at = now(), claimed_at = now()
    FROM picked WHERE d.outbox_id = picked.outbox_id AND d.channel = picked.channel
    RETURNING d.outbox_id, d.channel, d.address, d.attempts
)
SELECT c.outbox_id, c.channel, c.address, c.attempts, o.kind, o.customer_id, o.payload,
       k.legally_required, cu.name, cu.customer_no,
       coalesce(s.language, 'pl'), coalesce(s.e_invoice, false)
FROM claimed c
JOIN outbox o ON o.outbox_id = c.outbox_id
JOIN notice_kinds k ON k.kind = o.kind
LEFT JOIN customers cu ON cu.customer_id = o.customer_id
LEFT JOIN notification_settings s ON s.customer_id = o.customer_id
ORDER BY c.outbox_id
"""

# One statement, so one round trip and one commit per message: the result of the last
# attempt (logged, the delivery moved on) and the 'sending' mark of the next delivery.
_ADVANCE = """
WITH logged AS (
    INSERT INTO notify_attempts (outbox_id, channel, attempt, status, error, provider_id)
    SELECT %(outbox_id)s::bigint, %(channel)s::text, %(attempt)s::int, %(status)s::text,
           %(error)s::text, %(provider_id)s::text
    WHERE %(outbox_id)s::bigint IS NOT NULL
), finished AS (
    UPDATE notify_deliveries
    SET status = %(state)s::text, worker_id = NULL, updated_at = now(),
        attempts = greatest(attempts, %(attempt)s::int),
        provider_id = coalesce(%(provider_id)s::text, provider_id), last_error = %(error)s::text,
        next_attempt_at = now() + make_interval(secs => %(delay_s)s::float8)
    WHERE outbox_id = %(outbox_id)s::bigint AND channel = %(channel)s::text
), delivered AS (
    UPDATE outbox SET sent_at = now()
    WHERE outbox_id = %(outbox_id)s::bigint AND sent_at IS NULL
      AND %(status)s::text IN ('sent', 'duplicate')
), started AS (
    UPDATE notify_deliveries SET status = 'sending', attempts = attempts + 1, updated_at = now()
    WHERE outbox_id = %(next_id)s::bigint AND channel = %(next_channel)s::text
)
SELECT 1
"""
_STATES = {"sent": "sent", "duplicate": "sent", "failed": "pending", "dead": "dead"}

# The common case, one UPDATE of at most two rows: the previous delivery of the lane 'sent'
# (it keeps worker_id until its attempt is logged: see the module's doc) and the next one
# 'sending'. Both of one channel.
_MARK = """
UPDATE notify_deliveries
SET status = CASE WHEN outbox_id = %(next_id)s::bigint THEN 'sending' ELSE 'sent' END,
    attempts = attempts + CASE WHEN outbox_id = %(next_id)s::bigint THEN 1 ELSE 0 END,
    provider_id = CASE WHEN outbox_id = %(next_id)s::bigint THEN provider_id
                       ELSE %(provider_id)s::text END,
    last_error = CASE WHEN outbox_id = %(next_id)s::bigint THEN last_error END,
    updated_at = now()
WHERE channel = %(channel)s::text AND outbox_id IN (%(sent_id)s::bigint, %(next_id)s::bigint)
"""

# The attempt rows and outbox.sent_at of sent deliveries, from the sender's memory. The
# outbox rows are locked in id order: another worker may log the same notices' other channel.
_LOG = """
WITH sent AS (
    SELECT * FROM unnest(%(log_ids)s::bigint[], %(log_attempts)s::int[],
                         %(log_providers)s::text[], %(log_at)s::float8[])
                  AS l(outbox_id, attempt, provider_id, at)
), logged AS (
    INSERT INTO notify_attempts (outbox_id, channel, attempt, status, provider_id, at)
    SELECT outbox_id, %(channel)s::text, attempt, 'sent', provider_id, to_timestamp(at)
    FROM sent
), unsent AS (
    SELECT o.outbox_id, to_timestamp(sent.at) AS at
    FROM outbox o JOIN sent ON sent.outbox_id = o.outbox_id
    WHERE o.sent_at IS NULL ORDER BY o.outbox_id FOR UPDATE OF o
), delivered AS (
    UPDATE outbox SET sent_at = unsent.at FROM unsent WHERE outbox.outbox_id = unsent.outbox_id
)
"""
_MARK_AND_LOG = _LOG + _MARK
_LOG_ONLY = _LOG + "SELECT 1"

# A dead worker's delivery was never started if it is still 'claimed' and the database server
# has not restarted since the claim; otherwise it may be in flight, or its later marks (not
# synchronously committed) may have died with the server.
_ORPHANS_UNCLAIM = """
UPDATE notify_deliveries SET status = 'pending', worker_id = NULL, updated_at = now()
WHERE worker_id = %(worker)s AND status = 'claimed'
  AND claimed_at >= pg_postmaster_start_time()
"""

# Maybe in flight: back to pending (with a log line) where the provider deduplicates by the
# delivery's key, else 'uncertain'.
_ORPHANS_SENDING = """
WITH moved AS (
    UPDATE notify_deliveries
    SET status = CASE WHEN channel = ANY(%(resend)s) THEN 'pending' ELSE 'uncertain' END,
        attempts = CASE WHEN status = 'claimed' THEN attempts + 1 ELSE attempts END,
        worker_id = NULL, updated_at = now(), next_attempt_at = now(),
        last_error = CASE WHEN channel = ANY(%(resend)s) THEN %(resend_note)s
                          ELSE %(uncertain_note)s END
    WHERE worker_id = %(worker)s AND status IN ('claimed', 'sending')
    RETURNING outbox_id, channel, attempts, status, last_error
)
INSERT INTO notify_attempts (outbox_id, channel, attempt, status, error)
SELECT outbox_id, channel, attempts,
       CASE status WHEN 'pending' THEN 'failed' ELSE 'uncertain' END, last_error
FROM moved
RETURNING status
"""

# A dead worker's sent deliveries whose attempt it had not logged yet (see the module's doc).
_ORPHANS_UNLOGGED = """
WITH lost AS (
    SELECT d.outbox_id, d.channel, d.attempts, d.provider_id, d.updated_at
    FROM notify_deliveries d
    WHERE d.worker_id = %(worker)s AND d.status = 'sent'
      AND NOT EXISTS (SELECT 1 FROM notify_attempts a WHERE a.outbox_id = d.outbox_id
                      AND a.channel = d.channel AND a.attempt = d.attempts)
), logged AS (
    INSERT INTO notify_attempts (outbox_id, channel, attempt, status, provider_id, at)
    SELECT outbox_id, channel, attempts, 'sent', provider_id, updated_at FROM lost
)
UPDATE outbox SET sent_at = lost.updated_at
FROM lost WHERE outbox.outbox_id = lost.outbox_id AND outbox.sent_at IS NULL
"""

UNCERTAIN_NOTE = (
    "the sender died during the network call; the message may have been delivered and "
    "was not sent again (the channel cannot be asked); staff: meterflow notify resend"
)
RESEND_NOTE = "the sender died during the network call; sent again under the same key"


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery this worker claimed, with what rendering it needs."""

    outbox_id: int
    channel: str
    address: str
    attempts: int
    kind: str
    customer_id: int | None
    payload: dict[str, Any]
    legally_required: bool
    customer_name: str | None
    customer_no: str | None
    language: str
    e_invoice: bool

    @property
    def key(self) -> str:
        """The delivery's key: Message-ID local part and the SMS idempotency key."""
        return f"mf-{self.outbox_id}-{self.channel}"


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one attempt ended: sent, duplicate (the provider had it), failed or dead."""

    outbox_id: int
    channel: str
    attempt: int
    status: str
    error: str | None = None
    provider_id: str | None = None
    retry_in_s: float = 0.0


def route(conn: Conn, limit: int) -> int:
    """Decide the deliveries of up to ``limit`` new outbox notices; return how many."""
    with conn.transaction():
        cur = conn.execute(_ROUTE, {"limit": limit})
        return cur.rowcount


def claim(conn: Conn, channel: str, worker_id: int, limit: int) -> list[Claimed]:
    """Claim up to ``limit`` due deliveries of ``channel`` (safe with several workers)."""
    with conn.transaction():
        rows = conn.execute(
            _CLAIM, {"channel": channel, "worker": worker_id, "limit": limit}
        ).fetchall()
    return [Claimed(*row) for row in rows]


def advance(conn: Conn, outcome: Outcome | None, sending: Claimed | None) -> None:
    """Record ``outcome`` and mark ``sending`` as being sent, in one statement.

    ``conn`` is in autocommit mode with ``synchronous_commit`` off (see the module's doc).
    """
    params: dict[str, object] = {
        "outbox_id": None,
        "channel": None,
        "attempt": None,
        "status": None,
        "error": None,
        "provider_id": None,
        "state": None,
        "delay_s": 0.0,
        "next_id": sending.outbox_id if sending else None,
        "next_channel": sending.channel if sending else None,
    }
    if outcome is not None:
        params.update(
            outbox_id=outcome.outbox_id,
            channel=outcome.channel,
            attempt=outcome.attempt,
            status=outcome.status,
            error=outcome.error,
            provider_id=outcome.provider_id,
            state=_STATES[outcome.status],
            delay_s=outcome.retry_in_s,
        )
    conn.execute(_ADVANCE, params)


class Marks:
    """One lane's marks for one channel on its own session (autocommit, ``synchronous_commit``
    off).

    ``start(item)`` commits, before the network call, the result of the last attempt (see
    ``record``) and the item's 'sending' mark in one statement; ``close()`` commits what is
    left. Sent results take the cheap path of the module's doc; other results are written
    as ``advance`` does.
    """

    def __init__(self, conn: Conn, channel: str) -> None:
        self.conn = conn
        self.channel = channel
        self._result: Outcome | None = None
        self._unlogged: list[tuple[Outcome, float]] = []

    def record(self, outcome: Outcome) -> None:
        """The result of the last attempt (or of a delivery that could not be rendered)."""
        if self._result is not None:
            self._commit(None)
        self._result = outcome
        if outcome.status == "sent":
            self._unlogged.append((outcome, time.time()))

    def start(self, item: Claimed) -> None:
        """Commit the last result and mark ``item`` as being sent."""
        self._commit(item)

    def close(self) -> None:
        """Commit the last result and log every sent delivery not logged yet."""
        self._commit(None)

    def _commit(self, sending: Claimed | None) -> None:
        outcome, self._result = self._result, None
        # Logged at the latest with the lane's last mark: while a sent delivery is unlogged,
        # its worker has a delivery in flight, which is how recovery finds it.
        log = bool(self._unlogged) and (sending is None or len(self._unlogged) >= LOG_EVERY)
        if outcome is not None and outcome.status != "sent":
            if log:
                self.conn.execute(_LOG_ONLY, self._log_params())
            advance(self.conn, outcome, sending)
        elif outcome is not None or sending is not None:
            params: dict[str, object] = {
                "channel": self.channel,
                "next_id": sending.outbox_id if sending is not None else None,
                "sent_id": outcome.outbox_id if outcome is not None else None,
                "provider_id": outcome.provider_id if outcome is not None else None,
            }
            if log:
                params.update(self._log_params())
            self.conn.execute(_MARK_AND_LOG if log else _MARK, params)
        elif log:
            self.conn.execute(_LOG_ONLY, self._log_params())

    def _log_params(self) -> dict[str, object]:
        """The unlogged sent deliveries as the arrays of ``_LOG`` (and forget them)."""
        sent, self._unlogged = self._unlogged, []
        return {
            "channel": self.channel,
            "log_ids": [o.outbox_id for o, _ in sent],
            "log_attempts": [o.attempt for o, _ in sent],
            "log_providers": [o.provider_id for o, _ in sent],
            "log_at": [at for _, at in sent],
        }


def release(conn: Conn, worker_id: int) -> None:
    """Give back deliveries claimed but not started (a worker stopping cleanly)."""
    with conn.transaction():
        conn.execute(
            "UPDATE notify_deliveries SET status = 'pending', worker_id = NULL"
            " WHERE worker_id = %s AND status = 'claimed'",
            (worker_id,),
        )


def lock_worker(conn: Conn, worker_id: int) -> bool:
    """Take the session lock that says worker ``worker_id`` is alive; false if taken."""
    row = conn.execute("SELECT pg_try_advisory_lock(%s, %s)", (LOCK_SPACE, worker_id)).fetchone()
    return bool(row and row[0])


def recover(conn: Conn, me: int, resendable: Collection[str]) -> tuple[int, int]:
    """Resolve deliveries left in flight by dead workers; return (released, uncertain).

    Claimed-but-unsent deliveries and interrupted ones on channels whose provider
    deduplicates (``resendable``) go back to pending; interrupted e-mails become
    'uncertain' for staff, never resent blindly.
    """
    workers = conn.execute(
        "SELECT DISTINCT worker_id FROM notify_deliveries"
        " WHERE status IN ('claimed', 'sending') AND worker_id <> %s",
        (me,),
    ).fetchall()
    released = uncertain = 0
    for (worker,) in workers:
        if not lock_worker(conn, worker):
            continue  # alive
        try:
            with conn.transaction():
                params = {
                    "worker": worker,
                    "resend": list(resendable),
                    "resend_note": RESEND_NOTE,
                    "uncertain_note": UNCERTAIN_NOTE,
                }
                conn.execute(_ORPHANS_UNLOGGED, params)
                released += conn.execute(_ORPHANS_UNCLAIM, params).rowcount
                for (status,) in conn.execute(_ORPHANS_SENDING, params).fetchall():
                    released += status == "failed"
                    uncertain += status == "uncertain"
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s, %s)", (LOCK_SPACE, worker))
    return released, uncertain


def resend(conn: Conn, outbox_id: int, channel: str) -> bool:
    """Staff: send an 'uncertain' or 'dead' delivery again; false if there is none."""
    with conn.transaction():
        cur = conn.execute(
            "UPDATE notify_deliveries SET status = 'pending', next_attempt_at = now(),"
            " last_error = NULL WHERE outbox_id = %s AND channel = %s"
            " AND status IN ('uncertain', 'dead')",
            (outbox_id, channel),
        )
        return cur.rowcount == 1
