"""New-login notices: a customer's successful login from a browser that never signed in to
that account before queues a ``new_login`` notice (legally required, not unsubscribable).

Privacy first: the server keeps no list of devices, IP addresses or fingerprints. The
browser itself remembers which accounts it signed in to, in the ``mf_device`` cookie
(HttpOnly, SameSite=Lax, 400 days): one tag per account, the first 16 bytes of
HMAC-SHA256(portal secret, account id), at most ``MAX_TAGS`` of them (a shared computer).
A tag cannot be forged without the secret and names no account to anyone else. A browser
that clears its cookies, or a private window, counts as a new device (a notice too many
rather than one too few). The notice itself carries the time, the IP address and the
browser and system family, so the account's owner can recognise the login.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import UTC, datetime
from typing import Any, Protocol

import psycopg
from psycopg.rows import tuple_row
from psycopg.types.json import Jsonb

COOKIE = "mf_device"
COOKIE_MAX_AGE_S = 400 * 24 * 3600
MAX_TAGS = 8

_BROWSERS = (
    ("Edge", re.compile(r"Edg(?:e|A|iOS)?/")),
    ("Opera", re.compile(r"OPR/|Opera")),
    ("Samsung Internet", re.compile(r"SamsungBrowser/")),
    ("Firefox", re.compile(r"Firefox/|FxiOS/")),
    ("Chrome", re.compile(r"Chrome/|CriOS/")),
    ("Safari", re.compile(r"Safari/")),
)
_SYSTEMS = (
    ("Android", re.compile(r"Android")),
    ("iOS", re.compile(r"iPhone|iPad|iPod")),
    ("Windows", re.compile(r"Windows")),
    ("macOS", re.compile(r"Mac OS X|Macintosh")),
    ("ChromeOS", re.compile(r"CrOS")),
    ("Linux", re.compile(r"Linux")),
)


class CookieResponse(Protocol):
    """What the portal's response offers to set a cookie (werkzeug's ``Response``)."""

    def set_cookie(
        self,
        key: str,
        value: str = "",
        max_age: int | None = None,
        *,
        secure: bool = False,
        httponly: bool = False,
        samesite: str | None = None,
    ) -> None:
        """Set a cookie."""


def _tag(secret: str | bytes, account_id: int) -> str:
    key = secret.encode() if isinstance(secret, str) else secret
    mac = hmac.new(key, f"meterflow-device:{account_id}".encode(), hashlib.sha256)
    return mac.hexdigest()[:32]


def _tags(cookie: str | None) -> list[str]:
    return [t for t in (cookie or "").split(".") if re.fullmatch(r"[0-9a-f]{32}", t)]


def known(cookie: str | None, secret: str | bytes, account_id: int) -> bool:
    """True if the browser's ``mf_device`` cookie shows it signed in to the account before."""
    mine = _tag(secret, account_id)
    return any(hmac.compare_digest(mine, t) for t in _tags(cookie))


def remember(cookie: str | None, secret: str | bytes, account_id: int) -> str:
    """The cookie value with the account's tag added (the newest last, the oldest dropped)."""
    mine = _tag(secret, account_id)
    kept = [t for t in _tags(cookie) if t != mine][-(MAX_TAGS - 1) :]
    return ".".join([*kept, mine])


def device_label(user_agent: str | None) -> str:
    """The browser and system family of a User-Agent, e.g. ``Firefox, Windows``."""
    agent = user_agent or ""
    browser = next((name for name, rx in _BROWSERS if rx.search(agent)), "unknown browser")
    system = next((name for name, rx in _SYSTEMS if rx.search(agent)), "unknown system")
    return f"{browser}, {system}"


def queue_new_login(
    conn: psycopg.Connection[Any],
    account: Any,
    at: datetime,
    ip: str | None,
    user_agent: str | None,
) -> int:
    """Queue a ``new_login`` notice to the account's login e-mail; return its outbox id.

    ``account`` is the portal's account row (``account_id``, ``customer_id``, ``email``).
    """
    payload = {
        "at": at.isoformat(),
        "ip": ip or "unknown",
        "device": device_label(user_agent),
        "channel": "email",
        "to": account["email"],
    }
    with conn.cursor(row_factory=tuple_row) as cur:
        row = cur.execute(
            "INSERT INTO outbox (kind, customer_id, account_id, dedup_key, payload)"
            " VALUES ('new_login', %s, %s, %s, %s) RETURNING outbox_id",
            (
                account["customer_id"],
                account["account_id"],
                f"new_login:{account['account_id']}:{secrets.token_hex(16)}",
                Jsonb(payload),
            ),
        ).fetchone()
    assert row is not None
    return int(row[0])


def note_login(
    conn: psycopg.Connection[Any],
    account: Any,
    cookie: str | None,
    secret: str | bytes,
    ip: str | None,
    user_agent: str | None,
) -> str:
    """Queue a ``new_login`` notice unless the browser's cookie knows the account; return
    the cookie value to set (the account remembered, its expiry renewed)."""
    if not known(cookie, secret, account["account_id"]):
        queue_new_login(conn, account, datetime.now(UTC), ip, user_agent)
    return remember(cookie, secret, account["account_id"])


def set_cookie(response: CookieResponse, value: str, *, secure: bool) -> None:
    """Put the ``mf_device`` cookie with ``value`` on ``response``."""
    response.set_cookie(
        COOKIE, value, max_age=COOKIE_MAX_AGE_S, secure=secure, httponly=True, samesite="Lax"
    )
