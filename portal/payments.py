"""Paying invoices online through a Przelewy24-compatible gateway.

``/payments/pay`` lists the customer's open invoices; paying one or several registers one
transaction with the gateway and redirects there. The gateway POSTs a signed status
notification to ``/payments/p24/status`` (CSRF-exempt: it comes from the gateway, and the
signature authenticates it): the portal checks the signature and the amount against the
registered transaction, confirms with the verify call and books the payment once through
``billing_engine.payments`` (ledger reference ``p24:<session id>``). Anything else is
refused, logged and kept in ``payment_refusals``. ``/payments/return/<session>`` is where
the customer comes back: it says "being confirmed" until the notification is booked.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.blueprints import BlueprintSetupState
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from billing_engine.db import Conn as BillingConn
from billing_engine.db import connect
from billing_engine.money import format_pln
from billing_engine.p24 import Notification, P24Client, P24Config, parse_notification
from billing_engine.payments import book_payment
from billing_engine.periods import warsaw_day
from meterflow.errors import AuthError, MeterflowError, TransportError
from meterflow.settings import Settings
from portal.auth import current_account, current_customer_id, login_required, one_owned_or_404
from portal.db import get_conn
from portal.security import csp_with_form_target

bp = Blueprint("payments", __name__, url_prefix="/payments")
log = logging.getLogger(__name__)

OPEN_INVOICES = """
SELECT i.invoice_id, i.invoice_no, i.due_date, i.gross_gr,
       (e.amount_gr - coalesce(sum(a.amount_gr), 0))::bigint AS open_gr
FROM invoices i
JOIN ledger_entries e ON e.invoice_id = i.invoice_id AND e.kind = 'charge'
LEFT JOIN payment_allocations a ON a.charge_id = e.entry_id
WHERE i.customer_id = %(customer_id)s AND i.status = 'issued'
GROUP BY i.invoice_id, e.entry_id
HAVING e.amount_gr - coalesce(sum(a.amount_gr), 0) > 0
ORDER BY i.due_date, i.invoice_id
"""


@bp.record_once
def _exempt_status(state: BlueprintSetupState) -> None:
    # The gateway cannot send a CSRF token; the notification's signature stands for it.
    csrf = state.app.extensions.get("csrf")
    if csrf is not None:
        csrf.exempt("portal.payments.status")


def _settings() -> Settings:
    settings: Settings = current_app.extensions["meterflow.settings"]
    return settings


def _external(endpoint: str, **values: Any) -> str:
    base = _settings().portal_base_url or request.host_url
    return base.rstrip("/") + url_for(endpoint, **values)


@bp.get("/pay")
@login_required
def pay_form() -> ResponseReturnValue:
    """The customer's open invoices, to choose what to pay."""
    rows = get_conn().execute(OPEN_INVOICES, {"customer_id": current_customer_id()}).fetchall()
    response = make_response(
        render_template("payments/pay.html", invoices=rows, format_pln=format_pln)
    )
    response.headers["Content-Security-Policy"] = csp_with_form_target(_settings().p24_base_url)
    return response


@bp.post("/pay")
@login_required
def pay() -> ResponseReturnValue:
    """Register one transaction for the chosen open invoices and send the customer to pay."""
    customer_id = current_customer_id()
    chosen = {int(v) for v in request.form.getlist("invoice") if v.isdigit()}
    conn = get_conn()
    rows = [
        r
        for r in conn.execute(OPEN_INVOICES, {"customer_id": customer_id}).fetchall()
        if r["invoice_id"] in chosen
    ]
    if not rows or len(rows) != len(chosen):
        flash(_("Choose one or more open invoices to pay."), "error")
        return redirect(url_for("payments.pay_form"))
    amount = sum(int(r["open_gr"]) for r in rows)
    session_id = uuid.uuid4().hex
    conn.execute(
        "INSERT INTO payment_transactions (session_id, customer_id, invoice_ids, amount_gr)"
        " VALUES (%s, %s, %s, %s)",
        (session_id, customer_id, sorted(chosen), amount),
    )
    client = P24Client(P24Config.from_settings(_settings()))
    account = current_account()
    try:
        token = client.register(
            session_id,
            amount,
            description=_("Invoices %(numbers)s", numbers=", ".join(r["invoice_no"] for r in rows)),
            email=str(account["email"]) if account else "",
            url_return=_external("payments.returned", session_id=session_id),
            url_status=_external("payments.status"),
        )
    except MeterflowError as exc:
        log.error("payment %s: the gateway refused the registration: %s", session_id, exc)
        conn.execute(
            "UPDATE payment_transactions SET state = 'failed', updated_at = now()"
            " WHERE session_id = %s",
            (session_id,),
        )
        flash(_("The payment service is not available now. Please try again later."), "error")
        return redirect(url_for("payments.pay_form"))
    conn.execute(
        "UPDATE payment_transactions SET token = %s, updated_at = now() WHERE session_id = %s",
        (token, session_id),
    )
    return redirect(client.redirect_url(token), code=303)


@bp.get("/return/<session_id>")
@login_required
def returned(session_id: str) -> ResponseReturnValue:
    """Where the gateway sends the customer back: booked, failed or being confirmed."""
    row = one_owned_or_404(
        "SELECT session_id, amount_gr, state FROM payment_transactions"
        " WHERE session_id = %(session_id)s AND customer_id = %(customer_id)s",
        {"session_id": session_id},
    )
    return render_template("payments/return.html", payment=row, format_pln=format_pln)


@bp.post("/p24/status")
def status() -> ResponseReturnValue:
    """The gateway's status notification: verify, confirm and book once, or refuse."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        body = request.form.to_dict()
    settings = _settings()
    if not settings.database_url:
        abort(500)
    with connect(settings.database_url) as conn:
        return _handle_notification(conn, body, P24Config.from_settings(settings))


def _handle_notification(
    conn: BillingConn, body: Mapping[str, Any], config: P24Config
) -> ResponseReturnValue:
    session_id = str(body.get("sessionId", ""))[:100]
    try:
        note = parse_notification(body, config)
        reason = _confirm_and_book(conn, note, config)
    except AuthError as exc:
        reason = str(exc)
    except TransportError as exc:
        # Not confirmed: answer with an error so the gateway sends the notification again.
        log.error("payment %s: verify failed: %s", session_id, exc)
        _record_refusal(conn, session_id, f"verify failed: {exc}", body)
        return "verify failed", 502
    if reason:
        log.warning("payment %s: notification refused: %s", session_id, reason)
        _record_refusal(conn, session_id, reason, body)
        return "refused", 400
    return "OK", 200


def _confirm_and_book(conn: BillingConn, note: Notification, config: P24Config) -> str:
    """Check, verify and book a signed notification; return why it is refused, or ""."""
    with conn.transaction():
        row = conn.execute(
            "SELECT customer_id, amount_gr, currency, state FROM payment_transactions"
            " WHERE session_id = %s FOR UPDATE",
            (note.session_id,),
        ).fetchone()
        if row is None:
            return "no transaction was registered with this session id"
        customer_id, amount, currency, state = row
        if state == "booked":
            return ""
        if (note.amount, note.origin_amount, note.currency) != (amount, amount, currency):
            return f"amount {note.amount} {note.currency}, registered {amount} {currency}"
        conn.execute(
            "UPDATE payment_transactions SET state = 'notified', p24_order_id = %s,"
            " updated_at = now() WHERE session_id = %s",
            (note.order_id, note.session_id),
        )
        P24Client(config).verify(note.session_id, note.order_id, amount, currency)
        reference = f"p24:{note.session_id}"
        book_payment(conn, int(customer_id), int(amount), reference, warsaw_day(datetime.now(UTC)))
        conn.execute(
            "UPDATE payment_transactions SET state = 'booked', updated_at = now(),"
            " entry_id = (SELECT entry_id FROM ledger_entries WHERE kind = 'payment'"
            " AND reference = %s) WHERE session_id = %s",
            (reference, note.session_id),
        )
    return ""


def _record_refusal(
    conn: BillingConn, session_id: str, reason: str, body: Mapping[str, Any]
) -> None:
    with conn.transaction():
        conn.execute(
            "INSERT INTO payment_refusals (session_id, reason, payload) VALUES (%s, %s, %s)",
            (session_id or None, reason, json.dumps(dict(body), default=str)),
        )
