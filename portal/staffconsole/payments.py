"""Unmatched bank-statement credits: staff book each to a customer, exactly once, through
the statement importer's ``assign`` (the ledger settles the oldest due first), or leave it
out of the ledger with a note through ``ignore`` (e.g. to be returned to the sender)."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from psycopg.rows import DictRow

from billing_engine.bank.importer import (
    DecisionRefused,
    Refusal,
    assign,
    count_unmatched,
    ignore,
    unmatched,
)
from billing_engine.money import format_pln
from billing_engine.periods import warsaw_day
from meterflow.errors import BillingError
from portal.customer import data
from portal.db import Conn, get_conn, tuple_rows
from portal.forms import add_error
from portal.staff import audit, current_staff, staff_required
from portal.staffconsole import bp
from portal.staffconsole.customers import find_customers
from portal.staffconsole.forms import AssignForm, IgnoreForm, SearchForm

PER_PAGE = 50
log = logging.getLogger(__name__)

# What staff read when the importer refuses a decision; its English reason goes to the log.
_REFUSALS = {
    Refusal.MISSING: _l("This credit is not on any imported statement; nothing was done."),
    Refusal.DECIDED: _l("Someone has already decided about this credit; nothing was done."),
    Refusal.NOT_PLN: _l("Nothing was booked: the credit is not in PLN."),
    Refusal.BOOKED_BEFORE: _l(
        "This credit is in the ledger already; it has not been booked a second time."
    ),
    Refusal.NO_NOTE: _l("Say why the credit is ignored."),
}

_ITEM = """
SELECT i.item_id, i.booked_on, i.amount_gr, i.currency, i.counterparty_account,
       i.counterparty_name, i.title, i.state, i.note, i.assigned_by, i.assigned_at,
       s.reference AS statement_reference, s.source_name, c.customer_id, c.customer_no,
       c.name AS customer_name
FROM statement_items i JOIN bank_statements s USING (statement_id)
LEFT JOIN customers c ON c.customer_id = i.customer_id
WHERE i.item_id = %s AND i.amount_gr > 0
"""

_DECIDED = """
SELECT i.item_id, i.booked_on, i.amount_gr, i.currency, i.counterparty_name, i.title,
       i.state, i.note, i.assigned_by, i.assigned_at, c.customer_id, c.customer_no,
       c.name AS customer_name
FROM statement_items i LEFT JOIN customers c ON c.customer_id = i.customer_id
WHERE i.assigned_at IS NOT NULL ORDER BY i.assigned_at DESC LIMIT 20
"""

# Customers a credit points at: its title names their number or one of their invoices
# (series/number/year), or staff assigned an earlier credit from the same sender to them.
_HINTS = """
SELECT c.customer_id, c.customer_no, c.name, c.address, array_agg(DISTINCT h.why) AS why
FROM (
    SELECT customer_id, 'number' AS why FROM customers WHERE customer_no = ANY(%(tokens)s)
    UNION ALL
    SELECT customer_id, 'invoice' FROM invoices
    WHERE status = 'issued' AND (series, year, number) IN (
        SELECT * FROM unnest(%(series)s::text[], %(years)s::int[], %(numbers)s::int[]))
    UNION ALL
    SELECT customer_id, 'sender' FROM statement_items
    WHERE state = 'assigned' AND counterparty_account = %(sender)s AND %(sender)s <> ''
) h JOIN customers c USING (customer_id)
GROUP BY c.customer_id ORDER BY c.customer_no LIMIT 10
"""
_TOKEN = re.compile(r"[0-9A-Za-z][0-9A-Za-z/_.-]*[0-9A-Za-z]")
_INVOICE_NO = re.compile(r"([0-9A-Za-z]+)/(\d{1,9})/(\d{4})")


@bp.get("/payments/unmatched")
@staff_required("billing")
def unmatched_credits() -> ResponseReturnValue:
    """Credits no virtual account claimed, newest first, a page at a time, and what staff
    decided lately."""
    conn = get_conn()
    with tuple_rows(conn) as billing_conn:
        total = count_unmatched(billing_conn)
        pages = max(-(-total // PER_PAGE), 1)
        page = min(max(request.args.get("page", 1, type=int), 1), pages)
        items = unmatched(billing_conn, PER_PAGE, (page - 1) * PER_PAGE, newest_first=True)
    return render_template(
        "staffconsole/unmatched.html",
        items=items,
        total=total,
        page=page,
        pages=pages,
        decided=conn.execute(_DECIDED).fetchall(),
        amount=amount_text,
    )


@bp.get("/payments/unmatched/<int:item_id>")
@staff_required("billing")
def unmatched_credit(item_id: int) -> ResponseReturnValue:
    """One credit: customers its title or sender points at, customer search, the chosen
    customer's name and balance, and the forms to book the credit or to ignore it."""
    return _credit_page(
        item_id,
        SearchForm(request.args),
        AssignForm(),
        IgnoreForm(),
        chosen=request.args.get("customer_id", type=int),
    )


@bp.post("/payments/unmatched/<int:item_id>/assign")
@staff_required("billing")
def assign_credit(item_id: int) -> ResponseReturnValue:
    """Book the credit to the customer staff confirmed, once; a second submit books nothing."""
    form = AssignForm()
    search = SearchForm(formdata=None)
    if not form.validate_on_submit():
        return _credit_page(item_id, search, form, IgnoreForm(formdata=None), status=400)
    conn = get_conn()
    number = (form.customer_no.data or "").strip()
    customer = conn.execute(
        "SELECT customer_id, customer_no, name FROM customers WHERE customer_no = %s", (number,)
    ).fetchone()
    if customer is None:
        add_error(form.customer_no, _("No customer has the number %(number)s.", number=number))
        return _credit_page(item_id, search, form, IgnoreForm(formdata=None), status=400)
    try:
        with tuple_rows(conn) as billing_conn:
            booked = assign(billing_conn, item_id, customer["customer_id"], _decided_by())
    except BillingError as refused:
        return _refused(item_id, form, refused)
    audit(
        "payment.assigned",
        "statement_item",
        item_id,
        customer_id=customer["customer_id"],
        customer_no=customer["customer_no"],
        amount_gr=booked.amount_gr,
        entry_id=booked.entry_id,
    )
    flash(
        _(
            "%(amount)s has been booked to %(number)s (%(name)s).",
            amount=format_pln(booked.amount_gr),
            number=customer["customer_no"],
            name=customer["name"],
        )
    )
    return redirect(url_for("staffconsole.unmatched_credits"))


@bp.post("/payments/unmatched/<int:item_id>/ignore")
@staff_required("billing")
def ignore_credit(item_id: int) -> ResponseReturnValue:
    """Leave the credit out of the ledger (to be returned, not a customer's), with a note."""
    form = IgnoreForm()
    search = SearchForm(formdata=None)
    if not form.validate_on_submit():
        return _credit_page(item_id, search, AssignForm(formdata=None), form, status=400)
    note = (form.note.data or "").strip()
    try:
        with tuple_rows(get_conn()) as billing_conn:
            ignore(billing_conn, item_id, note, _decided_by())
    except BillingError as refused:
        return _refused(item_id, form, refused)
    audit("payment.ignored", "statement_item", item_id, note=note)
    flash(_("The credit has been marked as ignored; it stays out of the ledger."))
    return redirect(url_for("staffconsole.unmatched_credits"))


def amount_text(amount_gr: int, currency: str) -> str:
    """An amount as the console writes money (``1 234,56 zł``), another currency by its code."""
    text = format_pln(amount_gr)
    return text if currency == "PLN" else f"{text.removesuffix('zł')}{currency}"


def _decided_by() -> str:
    staff = current_staff()
    assert staff is not None
    return f"staff:{staff['email']}"


def _refused(
    item_id: int, form: AssignForm | IgnoreForm, refused: BillingError
) -> ResponseReturnValue:
    """The credit's page after ``assign`` or ``ignore`` refused (nothing was written): 409
    if the credit was decided meanwhile, else 400 with billing's reason, in the user's
    language, on the form."""
    log.warning("staff decision on statement item %s refused: %s", item_id, refused)
    if isinstance(refused, DecisionRefused):
        why = str(_REFUSALS[refused.reason])
    else:
        # A rule of the ledger or the store, without a reason code.
        why = _("The billing system refused the booking; the reason is in the system log.")
    search = SearchForm(formdata=None)
    if isinstance(form, AssignForm):
        add_error(form.customer_no, why)
        return _credit_page(item_id, search, form, IgnoreForm(formdata=None), status=400)
    add_error(form.note, why)
    return _credit_page(item_id, search, AssignForm(formdata=None), form, status=400)


def _credit_page(
    item_id: int,
    search: SearchForm,
    assign_form: AssignForm,
    ignore_form: IgnoreForm,
    chosen: int | None = None,
    status: int = 200,
) -> ResponseReturnValue:
    conn = get_conn()
    item = conn.execute(_ITEM, (item_id,)).fetchone()
    if item is None:
        abort(404)
    if item["state"] != "unmatched":
        # Decided already (a second submit, another clerk): say how and by whom, offer nothing.
        late = status >= 400
        page = render_template(
            "staffconsole/unmatched_item.html", item=item, late=late, amount=amount_text
        )
        return page, 409 if late else status
    found: list[DictRow] = []
    if search.q.data and search.validate():
        found = find_customers(conn, search.q.data.strip(), limit=20)
        if chosen is None and len(found) == 1:
            chosen = int(found[0]["customer_id"])
    customer = _at_a_glance(conn, chosen) if chosen is not None else None
    money = None
    if customer is not None:
        today = warsaw_day(datetime.now(UTC))
        money = data.account(data.ledger(conn, customer["customer_id"]), today)
    page = render_template(
        "staffconsole/unmatched_item.html",
        item=item,
        search=search,
        found=found,
        hints=_hints(conn, item),
        customer=customer,
        money=money,
        assign=assign_form,
        ignore=ignore_form,
        amount=amount_text,
    )
    return page, status


def _at_a_glance(conn: Conn, customer_id: int) -> DictRow | None:
    row: DictRow | None = conn.execute(
        "SELECT customer_id, customer_no, name, address FROM customers WHERE customer_id = %s",
        (customer_id,),
    ).fetchone()
    return row


def _hints(conn: Conn, item: DictRow) -> list[DictRow]:
    title = str(item["title"])
    words = _TOKEN.findall(title)
    tokens = sorted({*words, *(w.upper() for w in words)})[:100]
    invoices = sorted(
        {
            (series, int(year), int(number))
            for raw, number, year in _INVOICE_NO.findall(title)[:10]
            for series in {raw, raw.upper()}
        }
    )
    return conn.execute(
        _HINTS,
        {
            "tokens": tokens,
            "series": [series for series, _year, _number in invoices],
            "years": [year for _series, year, _number in invoices],
            "numbers": [number for _series, _year, number in invoices],
            "sender": item["counterparty_account"],
        },
    ).fetchall()
