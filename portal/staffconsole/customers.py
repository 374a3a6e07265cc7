"""Customer search, a customer's account at a glance, meters and their keys (masked)."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from psycopg.rows import DictRow

from billing_engine.periods import warsaw_day
from portal.customer import data
from portal.db import Conn, get_conn
from portal.staff import audit, staff_required
from portal.staffconsole import bp
from portal.staffconsole.forms import KeyForm, SearchForm


def mask_key(key: bytes | None) -> str:
    """A key shown to staff: only its last two bytes, the rest masked."""
    if not key:
        return ""
    return "•" * 28 + key[-2:].hex().upper()


def _like(term: str) -> str:
    return "%" + term.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_") + "%"


def find_customers(conn: Conn, term: str, limit: int = 100) -> list[DictRow]:
    """Customers whose number or meter id is ``term``, or whose name or address contains it."""
    return conn.execute(
        "SELECT DISTINCT c.customer_id, c.customer_no, c.name, c.address FROM customers c"
        " LEFT JOIN contracts k USING (customer_id)"
        " LEFT JOIN service_points sp USING (service_point_id)"
        " LEFT JOIN meter_installations mi ON mi.service_point_id = sp.service_point_id"
        " WHERE c.customer_no = %(exact)s OR mi.meter_id = %(exact)s"
        " OR c.name ILIKE %(like)s OR sp.address ILIKE %(like)s"
        " ORDER BY c.customer_no LIMIT %(limit)s",
        {"exact": term, "like": _like(term), "limit": limit},
    ).fetchall()


@bp.get("/customers")
@staff_required("customer_service", "billing")
def customers() -> ResponseReturnValue:
    """Find customers by number, name, address or meter id."""
    form = SearchForm(request.args)
    rows = []
    if form.validate() and form.q.data:
        rows = find_customers(get_conn(), form.q.data.strip())
    return render_template("staffconsole/customers.html", form=form, rows=rows)


@bp.get("/customers/<int:customer_id>")
@staff_required("customer_service", "billing")
def customer(customer_id: int) -> ResponseReturnValue:
    """One customer: contracts and meters, balance, invoices, held readings, complaints."""
    conn = get_conn()
    row = conn.execute("SELECT * FROM customers WHERE customer_id = %s", (customer_id,)).fetchone()
    if row is None:
        abort(404)
    return render_template(
        "staffconsole/customer.html",
        c=row,
        meters=data.meters(conn, customer_id),
        money=data.account(data.ledger(conn, customer_id), warsaw_day(datetime.now(UTC))),
        invoices=data.invoices(conn, customer_id, limit=24),
        complaints=conn.execute(
            "SELECT complaint_id, subject, status, due_on FROM complaints WHERE customer_id = %s"
            " ORDER BY filed_at DESC LIMIT 20",
            (customer_id,),
        ).fetchall(),
        accounts=conn.execute(
            "SELECT email, status, blocked_at FROM portal_accounts WHERE customer_id = %s",
            (customer_id,),
        ).fetchall(),
    )


@bp.get("/meters/<meter_id>")
@staff_required("billing")
def meter(meter_id: str) -> ResponseReturnValue:
    """A meter: identity, status, installations and its key, masked."""
    conn = get_conn()
    row = conn.execute(
        "SELECT meter_id, manufacturer, serial, version, device_type, aes_key, status, driver,"
        " first_seen_at, last_seen_at FROM meters WHERE meter_id = %s",
        (meter_id,),
    ).fetchone()
    if row is None:
        abort(404)
    installs = conn.execute(
        "SELECT mi.*, sp.address, k.customer_id, c.customer_no FROM meter_installations mi"
        " JOIN service_points sp USING (service_point_id)"
        " LEFT JOIN contracts k ON k.service_point_id = sp.service_point_id"
        " LEFT JOIN customers c ON c.customer_id = k.customer_id"
        " WHERE mi.meter_id = %s ORDER BY mi.installed_on DESC",
        (meter_id,),
    ).fetchall()
    return render_template(
        "staffconsole/meter.html",
        m=row,
        masked=mask_key(row["aes_key"]),
        installs=installs,
        form=KeyForm(),
    )


@bp.post("/meters/<meter_id>/key")
@staff_required("billing")
def replace_key(meter_id: str) -> ResponseReturnValue:
    """Replace a meter's AES key; the audit log records that it changed, never the key."""
    form = KeyForm()
    if not form.validate_on_submit():
        flash(
            " ".join(str(e) for e in form.key_hex.errors) or _("The key was not changed."), "error"
        )
        return redirect(url_for("staffconsole.meter", meter_id=meter_id)), 303
    changed = (
        get_conn()
        .execute("UPDATE meters SET aes_key = %s WHERE meter_id = %s", (form.key_bytes(), meter_id))
        .rowcount
    )
    if not changed:
        abort(404)
    audit("meter.key_replaced", "meter", meter_id)
    flash(_("The meter's key has been replaced."))
    return redirect(url_for("staffconsole.meter", meter_id=meter_id))
