"""Consent per notice kind and channel, and signed unsubscribe links.

Consent lives in the portal's ``notification_preferences`` (one row per customer and kind,
``by_email``/``by_sms``; no row: e-mail on, SMS off). Kinds marked ``legally_required`` in
``notice_kinds`` (payment demand, interest note, account security events) are delivered by
e-mail whatever the row says and cannot be unsubscribed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import psycopg
from itsdangerous import BadSignature, URLSafeSerializer
from psycopg.rows import tuple_row

from meterflow.errors import AuthError, BillingError
from meterflow.settings import Settings

SALT = "meterflow-notify-unsubscribe"
CHANNEL_COLUMNS = {"email": "by_email", "sms": "by_sms"}


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    """What an unsubscribe link stands for."""

    customer_id: int
    kind: str
    channel: str


def link_secret(settings: Settings) -> str:
    """The key that signs unsubscribe links: the portal's secret key, so both agree."""
    from portal import _persistent_secret

    return settings.secret_key or _persistent_secret(settings.data_dir)


def unsubscribe_token(secret: str, customer_id: int, kind: str, channel: str) -> str:
    """A signed token naming one customer, kind and channel."""
    return str(_serializer(secret).dumps([customer_id, kind, channel]))


@lru_cache(maxsize=8)
def _serializer(secret: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret, salt=SALT)


def read_unsubscribe_token(secret: str, token: str) -> Unsubscribe:
    """The customer, kind and channel of ``token``.

    Raises AuthError if the token was not signed with ``secret`` or is malformed.
    """
    try:
        customer_id, kind, channel = _serializer(secret).loads(token)
    except (BadSignature, ValueError, TypeError) as exc:
        raise AuthError("the unsubscribe link is invalid") from exc
    if channel not in CHANNEL_COLUMNS or not isinstance(customer_id, int):
        raise AuthError("the unsubscribe link is invalid")
    return Unsubscribe(customer_id, str(kind), channel)


def legally_required(conn: psycopg.Connection[Any], kind: str) -> bool:
    """True if notices of ``kind`` go out whatever the customer chose.

    Raises BillingError if ``kind`` is not a known notice kind.
    """
    row = (
        conn.cursor(row_factory=tuple_row)
        .execute("SELECT legally_required FROM notice_kinds WHERE kind = %s", (kind,))
        .fetchone()
    )
    if row is None:
        raise BillingError(f"unknown notice kind {kind!r}")
    return bool(row[0])


def set_consent(
    conn: psycopg.Connection[Any], customer_id: int, kind: str, channel: str, enabled: bool
) -> None:
    """Record whether the customer wants ``kind`` notices on ``channel``.

    Raises BillingError if the kind or channel is unknown, or if ``kind`` is legally
    required and ``enabled`` is false.
    """
    column = CHANNEL_COLUMNS.get(channel)
    if column is None:
        raise BillingError(f"unknown channel {channel!r}: use email or sms")
    if not enabled and legally_required(conn, kind):
        raise BillingError(f"{kind} notices are required by law and cannot be turned off")
    conn.execute(
        f"INSERT INTO notification_preferences (customer_id, kind, {column})"
        f" VALUES (%s, %s, %s) ON CONFLICT (customer_id, kind) DO UPDATE"
        f" SET {column} = EXCLUDED.{column}",
        (customer_id, kind, enabled),
    )


def consents(conn: psycopg.Connection[Any], customer_id: int) -> dict[tuple[str, str], bool]:
    """Every (kind, channel) the customer has a choice on, with the choice or its default."""
    rows = (
        conn.cursor(row_factory=tuple_row)
        .execute(
            "SELECT k.kind, coalesce(p.by_email, true), coalesce(p.by_sms, false)"
            " FROM notice_kinds k LEFT JOIN notification_preferences p"
            "   ON p.kind = k.kind AND p.customer_id = %s"
            " WHERE NOT k.legally_required ORDER BY k.kind",
            (customer_id,),
        )
        .fetchall()
    )
    result: dict[tuple[str, str], bool] = {}
    for kind, email, sms in rows:
        result[(kind, "email")] = bool(email)
        result[(kind, "sms")] = bool(sms)
    return result
