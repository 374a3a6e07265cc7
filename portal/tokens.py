"""Signed, single-use, expiring e-mail tokens (verification, password reset, new e-mail).

The link carries a nonce signed with the app's secret key; the database keeps only the
nonce's SHA-256 and marks it used, so a token works once and only until it expires.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer

from meterflow.errors import AuthError
from portal.db import Conn

LIFETIMES: dict[str, timedelta] = {
    "verify": timedelta(days=3),
    "reset": timedelta(hours=1),
    "new_email": timedelta(days=1),
}


def issue(conn: Conn, account_id: int, purpose: str, new_email: str | None = None) -> str:
    """Return a new token for ``purpose``; earlier unused tokens of that purpose stop working."""
    nonce = secrets.token_urlsafe(24)
    conn.execute(
        "UPDATE email_tokens SET used_at = now()"
        " WHERE account_id = %s AND purpose = %s AND used_at IS NULL",
        (account_id, purpose),
    )
    conn.execute(
        "INSERT INTO email_tokens (token_hash, account_id, purpose, new_email, expires_at)"
        " VALUES (%s, %s, %s, %s, now() + %s)",
        (_hash(nonce), account_id, purpose, new_email, LIFETIMES[purpose]),
    )
    return _serializer(purpose).dumps(nonce)


def consume(conn: Conn, token: str, purpose: str) -> tuple[int, str | None]:
    """Use up ``token``; return (account id, new e-mail or None).

    Raises AuthError if the token is forged, expired, already used or for another purpose.
    """
    max_age = int(LIFETIMES[purpose].total_seconds())
    try:
        nonce = _serializer(purpose).loads(token, max_age=max_age)
    except BadSignature:
        raise AuthError("the link is invalid or has expired") from None
    row = conn.execute(
        "UPDATE email_tokens SET used_at = now()"
        " WHERE token_hash = %s AND purpose = %s AND used_at IS NULL AND expires_at > now()"
        " RETURNING account_id, new_email",
        (_hash(str(nonce)), purpose),
    ).fetchone()
    if row is None:
        raise AuthError("the link is invalid, already used or has expired")
    return int(row["account_id"]), row["new_email"]


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key or "", salt=f"meterflow-{purpose}")


def _hash(nonce: str) -> bytes:
    return hashlib.sha256(nonce.encode()).digest()
