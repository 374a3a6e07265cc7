"""Helpers of the payment tests: a database of their own, what the ledger says about a
customer or a charge."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from billing_engine.db import Conn


def allocations_of(conn: Conn, charge_id: int) -> int:
    """Grosze settled on a charge so far."""
    row = conn.execute(
        "SELECT coalesce(sum(amount_gr), 0) FROM payment_allocations WHERE charge_id = %s",
        (charge_id,),
    ).fetchone()
    assert row is not None
    return int(row[0])


def payments_of(conn: Conn, customer_id: int) -> list[tuple[int, str]]:
    """The customer's ledger payments: (amount_gr, reference)."""
    rows = conn.execute(
        "SELECT amount_gr, reference FROM ledger_entries WHERE customer_id = %s"
        " AND kind = 'payment' ORDER BY entry_id",
        (customer_id,),
    ).fetchall()
    return [(int(a), str(r)) for a, r in rows]


@contextmanager
def fresh_database(server_url: str, prefix: str) -> Iterator[str]:
    """A newly created and migrated database on ``server_url``'s server, dropped after."""
    from schemas.migrate import migrate

    base = server_url.rsplit("/", 1)[0]
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"'.encode())
    try:
        migrate(f"{base}/{name}")
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())
