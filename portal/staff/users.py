"""Staff users: creation (CLI and admins), lookup, password changes."""

from __future__ import annotations

import secrets
import string
from collections.abc import Sequence

from psycopg import errors as pg_errors
from psycopg.rows import DictRow

from meterflow.errors import AuthError
from portal.db import Conn

COLUMNS = (
    "staff_id, email, name, password_hash, roles, must_change_password, disabled_at,"
    " created_at, last_login_at"
)
_ALPHABET = string.ascii_letters + string.digits


def random_password(length: int = 16) -> str:
    """Return a random password that meets the default rule (digit, both cases, a symbol)."""
    while True:
        core = "".join(secrets.choice(_ALPHABET) for _ in range(length - 2))
        candidate = core[: length // 2] + secrets.choice("!#%+-=?@") + core[length // 2 :]
        candidate += secrets.choice(string.digits)
        if any(c.islower() for c in candidate) and any(c.isupper() for c in candidate):
            return candidate


def by_email(conn: Conn, email: str) -> DictRow | None:
    """Return the staff user who logs in with ``email``, or None."""
    return conn.execute(
        f"SELECT {COLUMNS} FROM staff_users WHERE email = %s", (email.strip().lower(),)
    ).fetchone()


def by_id(conn: Conn, staff_id: int) -> DictRow | None:
    """Return the staff user ``staff_id``, or None."""
    return conn.execute(
        f"SELECT {COLUMNS} FROM staff_users WHERE staff_id = %s", (staff_id,)
    ).fetchone()


def create(conn: Conn, email: str, roles: Sequence[str], password_hash: str, name: str = "") -> int:
    """Create a staff user who must change the password at first login.

    Raises AuthError if the e-mail is taken or a role is unknown.
    """
    try:
        with conn.transaction():
            row = conn.execute(
                "INSERT INTO staff_users (email, name, password_hash, roles)"
                " VALUES (%s, %s, %s, %s) RETURNING staff_id",
                (email.strip().lower(), name, password_hash, list(roles)),
            ).fetchone()
    except pg_errors.UniqueViolation:
        raise AuthError(f"a staff user {email} already exists") from None
    except pg_errors.CheckViolation:
        raise AuthError(
            f"unknown role in {list(roles)}; use billing, customer_service, admin"
        ) from None
    assert row is not None
    return int(row["staff_id"])


def set_password(conn: Conn, staff_id: int, password_hash: str) -> None:
    """Store a new password hash; the forced change is done."""
    conn.execute(
        "UPDATE staff_users SET password_hash = %s, must_change_password = false"
        " WHERE staff_id = %s",
        (password_hash, staff_id),
    )


def touch_login(conn: Conn, staff_id: int) -> None:
    """Record a successful login."""
    conn.execute("UPDATE staff_users SET last_login_at = now() WHERE staff_id = %s", (staff_id,))
