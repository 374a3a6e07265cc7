"""The staff console's foundation: staff users with roles, ``staff_required``, the audit log.

Staff users are separate from customer accounts and log in at ``/staff/login``. Roles are
``billing``, ``customer_service`` and ``admin`` (admin passes every role check). Every
staff action that changes something calls :func:`audit` in the same transaction.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from flask import Blueprint, abort, g, redirect, request, session, url_for
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from portal.db import Conn, get_conn

ROLES: tuple[str, ...] = ("billing", "customer_service", "admin")
bp = Blueprint("staff", __name__, url_prefix="/staff")
P = ParamSpec("P")
R = TypeVar("R")


def current_staff() -> DictRow | None:
    """Return the logged-in staff user of this request, or None."""
    staff: DictRow | None = g.get("staff")
    return staff


def has_role(staff: DictRow, role: str) -> bool:
    """Return True if ``staff`` holds ``role`` or is an admin."""
    roles: list[str] = staff["roles"]
    return role in roles or "admin" in roles


def staff_required(*roles: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Let through staff holding any of ``roles`` (none given: any staff); customers get 404,
    anonymous visitors go to the staff login."""

    def decorate(view: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(view)
        def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
            staff = current_staff()
            if staff is None:
                if getattr(session, "account_id", None) is not None:
                    abort(404)
                abort(redirect(url_for("staff.login", next=request.full_path.rstrip("?"))))
            if roles and not any(has_role(staff, role) for role in roles):
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorate


def audit(
    action: str,
    target_kind: str = "",
    target_id: object = "",
    conn: Conn | None = None,
    **details: Any,
) -> None:
    """Record a staff action in ``audit_log`` (in the request's transaction)."""
    staff = current_staff()
    (conn or get_conn()).execute(
        "INSERT INTO audit_log (staff_id, staff_email, action, target_kind, target_id, details,"
        " ip) VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (
            staff["staff_id"] if staff else None,
            staff["email"] if staff else "system",
            action,
            target_kind,
            str(target_id),
            Jsonb(details),
            request.remote_addr if request else None,
        ),
    )


def load_staff() -> None:
    """Before each request: load the session's staff user; end the session if disabled."""
    staff_id = getattr(session, "staff_id", None)
    if staff_id is None:
        return
    from portal.sessions import begin
    from portal.staff import users

    staff = users.by_id(get_conn(), staff_id)
    if staff is None or staff["disabled_at"] is not None:
        begin(session)
        return
    g.staff = staff
    from portal.auth import PASSWORD_CHANGE_ALLOWED

    if staff["must_change_password"] and request.endpoint not in PASSWORD_CHANGE_ALLOWED:
        abort(redirect(url_for("staff.change_password")))


from portal.staff import views  # noqa: E402,F401  (routes register on bp)
