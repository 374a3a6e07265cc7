"""Notices to customers and accounts, written to billing's ``outbox`` in the caller's transaction.

The outbox dispatcher delivers them (e-mail, SMS or letter per ``payload["channel"]``);
portal notices carry their recipient address in ``payload["to"]`` because an account's
login e-mail may differ from the customer's contact e-mail.
"""

from __future__ import annotations

import secrets
from typing import Any

from flask import current_app, url_for
from psycopg.types.json import Jsonb

from meterflow.errors import AuthError
from portal.db import Conn

PORTAL_KINDS: frozenset[str] = frozenset(
    {
        "portal_verify_email",
        "portal_password_reset",
        "portal_initial_password",
        "portal_account_exists",
        "portal_new_email",
        "portal_account_activated",
    }
)


def queue_notice(
    conn: Conn,
    *,
    kind: str,
    payload: dict[str, Any],
    customer_id: int | None = None,
    account_id: int | None = None,
    dedup_key: str | None = None,
) -> int:
    """Write one notice to the outbox and return its id.

    Raises AuthError if neither a customer nor an account is given.
    """
    if customer_id is None and account_id is None:
        raise AuthError("a notice needs a customer or an account to go to")
    key = dedup_key or f"{kind}:{secrets.token_hex(16)}"
    row = conn.execute(
        "INSERT INTO outbox (kind, customer_id, account_id, dedup_key, payload)"
        " VALUES (%s, %s, %s, %s, %s) RETURNING outbox_id",
        (kind, customer_id, account_id, key, Jsonb(payload)),
    ).fetchone()
    assert row is not None
    return int(row["outbox_id"])


def link(endpoint: str, **values: Any) -> str:
    """Return an absolute URL for a notice: under METERFLOW_PORTAL_BASE_URL when set (so a
    forged Host header cannot redirect a reset link), else from the request."""
    base = current_app.config.get("PUBLIC_BASE_URL")
    if base:
        return str(base).rstrip("/") + url_for(endpoint, **values)
    return url_for(endpoint, _external=True, **values)
