"""Invoices (with the PDF from billing), payment history, balance, demands, interest notes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import NamedTuple

from flask import Response, current_app, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from psycopg.rows import DictRow

from billing_engine.money import format_pln
from billing_engine.pdf import load_document, render
from billing_engine.periods import warsaw_day
from portal.auth import current_customer_id, login_required, one_owned_or_404
from portal.customer import bp, data
from portal.db import get_conn, read_only
from portal.uploads import safe_filename


class InvoiceRow(NamedTuple):
    """One line of the invoice table, formatted."""

    number: str
    href: str
    pdf_href: str
    correction: bool
    estimated: bool
    period: str
    due: str
    amount: str


def invoice_rows(invoices: list[DictRow]) -> list[InvoiceRow]:
    """The invoice table's cells as text, formatted in one pass (one URL built, not two a row)."""
    base = url_for("customer.invoices")
    return [
        InvoiceRow(
            i["invoice_no"],
            f"{base}/{i['invoice_id']}",
            f"{base}/{i['invoice_id']}.pdf",
            i["kind"] == "correction",
            bool(i["estimated"]),
            f"{i['period_start']:%d.%m.%Y}–{i['period_end']:%d.%m.%Y}",
            f"{i['due_date']:%d.%m.%Y}",
            format_pln(i["gross_gr"]),
        )
        for i in invoices
    ]


def payment_rows(payments: list[DictRow]) -> list[tuple[str, str, str, str]]:
    """The payment table's cells as text (date, kind, amount, reference)."""
    kinds = {"payment": _("payment"), "credit_note": _("credit note")}
    return [
        (
            f"{p['booked_on']:%d.%m.%Y}",
            str(kinds.get(p["kind"], p["kind"])),
            format_pln(p["amount_gr"]),
            p["reference"] or "",
        )
        for p in payments
    ]


@bp.get("/invoices")
@read_only
@login_required
def invoices() -> ResponseReturnValue:
    """Invoices, payments, the balance, payment demands and interest notes."""
    conn = get_conn()
    customer_id = current_customer_id()
    return render_template(
        "customer/invoices.html",
        money=data.account(data.ledger(conn, customer_id), warsaw_day(datetime.now(UTC))),
        invoices=invoice_rows(data.invoices(conn, customer_id)),
        payments=payment_rows(data.payments(conn, customer_id)),
        demands=data.demands(conn, customer_id),
        notes=data.interest_notes(conn, customer_id),
    )


@bp.get("/invoices/<int:invoice_id>")
@read_only
@login_required
def invoice(invoice_id: int) -> ResponseReturnValue:
    """One issued invoice with its lines."""
    head = one_owned_or_404(
        "SELECT * FROM invoices WHERE invoice_id = %(id)s AND customer_id = %(customer_id)s"
        " AND status = 'issued'",
        {"id": invoice_id},
    )
    lines = (
        get_conn()
        .execute(
            "SELECT description, quantity, unit, unit_price, net_gr, vat_rate, estimated"
            " FROM invoice_lines WHERE invoice_id = %s ORDER BY line_no",
            (invoice_id,),
        )
        .fetchall()
    )
    return render_template("customer/invoice.html", invoice=head, lines=lines)


@bp.get("/invoices/<int:invoice_id>.pdf")
@login_required
def invoice_pdf(invoice_id: int) -> ResponseReturnValue:
    """The invoice as PDF, rendered by billing (downloaded, never shown inline)."""
    head = one_owned_or_404(
        "SELECT invoice_no FROM invoices WHERE invoice_id = %(id)s"
        " AND customer_id = %(customer_id)s AND status = 'issued'",
        {"id": invoice_id},
    )
    conninfo = current_app.extensions["meterflow.settings"].database_url
    pdf = render(load_document(conninfo, invoice_id))
    name = safe_filename(f"faktura-{head['invoice_no']}.pdf".replace("/", "-"))
    return Response(
        pdf,
        mimetype="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
