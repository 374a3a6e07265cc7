"""Customer accounts of the e-office: creation both ways, activation, passwords, deletion."""

from __future__ import annotations

from typing import Any

from psycopg.rows import DictRow

from portal.db import Conn

# An invoice proves the customer only if it was issued within this many days.
RECENT_INVOICE_DAYS = 400
ACCOUNT_COLUMNS = (
    "account_id, email, password_hash, must_change_password, customer_id, status,"
    " created_by, claimed_customer_no, claimed_invoice_no, blocked_at, blocked_reason,"
    " created_at, email_verified_at, activated_at, last_login_at"
)


def normalise_email(email: str) -> str:
    """Return the stored form of an e-mail address (trimmed, lower-case)."""
    return email.strip().lower()


def by_email(conn: Conn, email: str) -> DictRow | None:
    """Return the account that logs in with ``email``, or None."""
    return conn.execute(
        f"SELECT {ACCOUNT_COLUMNS} FROM portal_accounts WHERE email = %s",
        (normalise_email(email),),
    ).fetchone()


def by_id(conn: Conn, account_id: int) -> DictRow | None:
    """Return the account ``account_id``, or None."""
    return conn.execute(
        f"SELECT {ACCOUNT_COLUMNS} FROM portal_accounts WHERE account_id = %s", (account_id,)
    ).fetchone()


def create_self(
    conn: Conn,
    email: str,
    password_hash: str,
    customer_no: str,
    invoice_no: str,
    terms_version: str,
    ip: str | None,
) -> int:
    """Create an unverified self-registered account, recording both acceptances."""
    row = conn.execute(
        "INSERT INTO portal_accounts (email, password_hash, created_by, claimed_customer_no,"
        " claimed_invoice_no) VALUES (%s, %s, 'self', %s, %s) RETURNING account_id",
        (normalise_email(email), password_hash, customer_no.strip(), invoice_no.strip()),
    ).fetchone()
    assert row is not None
    account_id = int(row["account_id"])
    for document in ("terms", "privacy"):
        conn.execute(
            "INSERT INTO terms_acceptances (account_id, document, version, ip)"
            " VALUES (%s, %s, %s, %s)",
            (account_id, document, terms_version, ip),
        )
    return account_id


def create_by_staff(conn: Conn, customer_id: int, email: str, password_hash: str) -> int:
    """Create an active account for a customer; its password must be changed at first login."""
    row = conn.execute(
        "INSERT INTO portal_accounts (email, password_hash, must_change_password, customer_id,"
        " status, created_by, activated_at) VALUES (%s, %s, true, %s, 'active', 'staff', now())"
        " RETURNING account_id",
        (normalise_email(email), password_hash, customer_id),
    ).fetchone()
    assert row is not None
    return int(row["account_id"])


def matching_customer(conn: Conn, customer_no: str, invoice_no: str) -> int | None:
    """Return the customer whose number and recent issued invoice both match, else None."""
    row = conn.execute(
        "SELECT c.customer_id FROM customers c JOIN invoices i USING (customer_id)"
        " WHERE c.customer_no = %s AND i.invoice_no = %s AND i.status = 'issued'"
        " AND i.issue_date >= current_date - %s",
        (customer_no.strip(), invoice_no.strip(), RECENT_INVOICE_DAYS),
    ).fetchone()
    return None if row is None else int(row["customer_id"])


def confirm_email(conn: Conn, account: DictRow) -> str:
    """Mark the e-mail verified; activate when the claimed data match. Return the status."""
    if account["status"] != "unverified":
        return str(account["status"])
    customer_id = matching_customer(
        conn, account["claimed_customer_no"] or "", account["claimed_invoice_no"] or ""
    )
    status = "pending" if customer_id is None else "active"
    conn.execute(
        "UPDATE portal_accounts SET email_verified_at = now(), status = %s, customer_id = %s,"
        " activated_at = CASE WHEN %s = 'active' THEN now() END WHERE account_id = %s",
        (status, customer_id, status, account["account_id"]),
    )
    return status


def activate(conn: Conn, account_id: int, customer_id: int) -> bool:
    """Approve a pending account for ``customer_id``; return False if it was not pending."""
    return (
        conn.execute(
            "UPDATE portal_accounts SET status = 'active', customer_id = %s, activated_at = now()"
            " WHERE account_id = %s AND status = 'pending'",
            (customer_id, account_id),
        ).rowcount
        == 1
    )


def set_password(
    conn: Conn, account_id: int, password_hash: str, must_change: bool = False
) -> None:
    """Store a new password hash."""
    conn.execute(
        "UPDATE portal_accounts SET password_hash = %s, must_change_password = %s"
        " WHERE account_id = %s",
        (password_hash, must_change, account_id),
    )


def set_email(conn: Conn, account_id: int, email: str) -> None:
    """Change the login e-mail (already verified by the caller)."""
    conn.execute(
        "UPDATE portal_accounts SET email = %s WHERE account_id = %s",
        (normalise_email(email), account_id),
    )


def set_blocked(conn: Conn, account_id: int, reason: str | None) -> bool:
    """Block (with a reason) or unblock (reason None); return False if no such account."""
    return (
        conn.execute(
            "UPDATE portal_accounts SET blocked_at = CASE WHEN %s::text IS NULL THEN NULL"
            " ELSE now() END, blocked_reason = %s WHERE account_id = %s",
            (reason, reason, account_id),
        ).rowcount
        == 1
    )


def touch_login(conn: Conn, account_id: int, new_hash: str | None) -> None:
    """Record a successful login, upgrading the hash when its parameters are outdated."""
    conn.execute(
        "UPDATE portal_accounts SET last_login_at = now(),"
        " password_hash = coalesce(%s, password_hash) WHERE account_id = %s",
        (new_hash, account_id),
    )


def delete(conn: Conn, account_id: int) -> None:
    """Delete the account and what only the e-office used (sessions, tokens, acceptances,
    its own notices); the customer's accounting records stay."""
    conn.execute("DELETE FROM portal_accounts WHERE account_id = %s", (account_id,))


def pending(conn: Conn, limit: int = 200) -> list[dict[str, Any]]:
    """Return the accounts waiting for staff approval, oldest first, with any customer match."""
    rows = conn.execute(
        "SELECT a.account_id, a.email, a.claimed_customer_no, a.claimed_invoice_no,"
        " a.created_at, a.email_verified_at, c.customer_id, c.name AS customer_name"
        " FROM portal_accounts a LEFT JOIN customers c ON c.customer_no = a.claimed_customer_no"
        " WHERE a.status = 'pending' ORDER BY a.created_at LIMIT %s",
        (limit,),
    ).fetchall()
    return [dict(r) for r in rows]
