"""Customer authentication: the ``auth`` blueprint and the helpers every customer page uses.

Object-level checks (for the customer pages): every object a customer asks for - meter,
invoice, complaint, attachment - is fetched by a query that also filters on the logged-in
customer, and a miss is a 404 (never 403, so ids of others reveal nothing)::

    @bp.get("/invoices/<int:invoice_id>")
    @login_required
    def invoice(invoice_id: int) -> str:
        row = one_owned_or_404(
            "SELECT * FROM invoices WHERE invoice_id = %(id)s AND customer_id = %(customer_id)s",
            {"id": invoice_id},
        )
        ...
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, ParamSpec, TypeVar

from flask import Blueprint, abort, g, redirect, request, session, url_for
from psycopg.rows import DictRow

from meterflow.errors import AuthError
from portal.db import get_conn

bp = Blueprint("auth", __name__)
P = ParamSpec("P")
R = TypeVar("R")
# Endpoints a person who must change their password may still reach.
PASSWORD_CHANGE_ALLOWED = frozenset(
    {
        "auth.change_password",
        "auth.logout",
        "staff.change_password",
        "staff.logout",
        "static",
        "i18n.switch_language",
    }
)


def current_account() -> DictRow | None:
    """Return the logged-in customer account of this request, or None."""
    account: DictRow | None = g.get("account")
    return account


def current_customer_id() -> int:
    """Return the customer id of the logged-in, active account.

    Raises AuthError if nobody (or a not yet approved account) is logged in.
    """
    account = current_account()
    if account is None or account["customer_id"] is None or account["status"] != "active":
        raise AuthError("no active customer account is logged in")
    return int(account["customer_id"])


def login_required(view: Callable[P, R]) -> Callable[P, R]:
    """Let only a logged-in, active, unblocked customer account through; others to login."""

    @functools.wraps(view)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
        account = current_account()
        if account is None:
            abort(redirect(url_for("auth.login", next=request.full_path.rstrip("?"))))
        if account["status"] != "active":
            abort(redirect(url_for("auth.login")))
        return view(*args, **kwargs)

    return wrapped


def one_owned_or_404(query: str, params: Mapping[str, Any]) -> DictRow:
    """Run ``query`` (which must filter on ``%(customer_id)s``) for the logged-in customer;
    return its row, or answer 404 when the object is missing or someone else's."""
    if "%(customer_id)s" not in query:
        raise AuthError("an owned-object query must filter on %(customer_id)s")
    row = get_conn().execute(query, {**params, "customer_id": current_customer_id()}).fetchone()
    if row is None:
        abort(404)
    return row


def load_account() -> None:
    """Before each request: load the session's account; end the session if it is blocked."""
    account_id = getattr(session, "account_id", None)
    if account_id is None:
        return
    from portal.auth import accounts
    from portal.sessions import begin

    account = accounts.by_id(get_conn(), account_id)
    if account is None or account["blocked_at"] is not None:
        begin(session)
        return
    g.account = account
    if account["must_change_password"] and request.endpoint not in PASSWORD_CHANGE_ALLOWED:
        abort(redirect(url_for("auth.change_password")))


from portal.auth import account_views, views  # noqa: E402,F401  (routes register on bp)
