"""The customer's dashboard: balance, overdue debt, last readings, next due date, notices."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import render_template
from flask.typing import ResponseReturnValue

from billing_engine.periods import warsaw_day
from portal.auth import current_customer_id, login_required
from portal.customer import bp, data
from portal.db import get_conn, read_only


@bp.get("/")
@read_only
@login_required
def dashboard() -> ResponseReturnValue:
    """The start page of a logged-in customer."""
    conn = get_conn()
    customer_id = current_customer_id()
    meters = [m for m in data.meters(conn, customer_id) if m["removed_on"] is None]
    last = [r for r in (data.last_reading(conn, m["meter_id"]) for m in meters) if r]
    return render_template(
        "customer/dashboard.html",
        customer=data.customer(conn, customer_id),
        money=data.account(data.ledger(conn, customer_id), warsaw_day(datetime.now(UTC))),
        readings=last,
        notices=data.announcements(conn, customer_id, limit=5),
    )
