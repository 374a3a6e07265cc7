"""Complaints (reklamacje) and service reports (zgłoszenia): file with attachments, follow
their status, deadline and answer."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from flask import current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import ngettext
from werkzeug.datastructures import FileStorage
from wtforms.fields.choices import SelectChoice  # type: ignore[attr-defined]

from billing_engine.periods import warsaw_day
from portal.auth import current_customer_id, login_required, one_owned_or_404
from portal.customer import bp, data
from portal.customer.forms import ComplaintForm
from portal.db import Conn, get_conn
from portal.uploads import MAX_BYTES, UploadRejected, save_upload, send_upload

MAX_ATTACHMENTS = 5


def answer_deadline(filed_on: date) -> date:
    """The day by which the utility answers a case filed on ``filed_on``."""
    return filed_on + timedelta(days=int(current_app.config["COMPLAINT_ANSWER_DAYS"]))


def rejection_text(rejected: UploadRejected) -> str:
    """Why an attachment was refused, in the customer's language."""
    limit_mb = MAX_BYTES // (1024 * 1024)
    texts = {
        "empty": _("%(name)s: the file is empty.", name=rejected.filename),
        "too_large": _(
            "%(name)s: the file is larger than %(mb)d MB.", name=rejected.filename, mb=limit_mb
        ),
        "name_mismatch": _(
            "%(name)s: the file's name does not match its content.", name=rejected.filename
        ),
    }
    fallback = _("%(name)s: only PDF, JPEG and PNG files are accepted.", name=rejected.filename)
    return str(texts.get(rejected.reason, fallback))


def _choices(form: ComplaintForm, conn: Conn, customer_id: int) -> None:
    form.invoice_id.choices = [SelectChoice("", "—")] + [
        SelectChoice(str(i["invoice_id"]), f"{i['invoice_no']} ({i['period_start']:%m.%Y})")
        for i in data.invoices(conn, customer_id)
    ]
    form.meter_id.choices = [SelectChoice("", "—")] + [
        SelectChoice(m["meter_id"], f"{m['meter_id']} · {m['address']}")
        for m in data.meters(conn, customer_id)
    ]


def _file(conn: Conn, customer_id: int, form: ComplaintForm, files: list[FileStorage]) -> int:
    """Store the case and its attachments in one savepoint; return its id.

    Raises UploadRejected if an attachment is refused (nothing is stored then).
    """
    with conn.transaction():
        row = conn.execute(
            "INSERT INTO complaints (customer_id, kind, subject, description, invoice_id,"
            " meter_id, due_on) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING complaint_id",
            (
                customer_id,
                form.kind.data,
                (form.subject.data or "").strip(),
                (form.description.data or "").strip(),
                int(form.invoice_id.data) if form.invoice_id.data else None,
                form.meter_id.data or None,
                answer_deadline(warsaw_day(datetime.now(UTC))),
            ),
        ).fetchone()
        assert row is not None
        for file in files:
            upload_id = save_upload(conn, customer_id, file)
            conn.execute(
                "INSERT INTO complaint_attachments (complaint_id, upload_id) VALUES (%s, %s)",
                (row["complaint_id"], upload_id),
            )
    return int(row["complaint_id"])


@bp.route("/complaints", methods=["GET", "POST"])
@login_required
def complaints() -> ResponseReturnValue:
    """The customer's cases and the form to file a new one."""
    conn = get_conn()
    customer_id = current_customer_id()
    form = ComplaintForm()
    _choices(form, conn, customer_id)
    if not form.is_submitted():
        form.kind.data = request.args.get("kind", "other")
        form.invoice_id.data = request.args.get("invoice", "")
    status = 200
    if form.validate_on_submit():
        files = [f for f in form.attachments.data or [] if f and f.filename]
        if form.kind.data == "invoice_dispute" and not form.invoice_id.data:
            form.invoice_id.errors = [_("Choose the invoice the complaint is about.")]
        elif len(files) > MAX_ATTACHMENTS:
            form.attachments.errors = [
                ngettext(
                    "Attach at most %(num)d file.", "Attach at most %(num)d files.", MAX_ATTACHMENTS
                )
            ]
        else:
            try:
                complaint_id = _file(conn, customer_id, form, files)
            except UploadRejected as rejected:
                form.attachments.errors = [rejection_text(rejected)]
            else:
                flash(_("Thank you; your case has been registered."))
                return redirect(url_for("customer.complaint", complaint_id=complaint_id))
        status = 400
    elif form.is_submitted():
        status = 400
    rows = conn.execute(
        "SELECT complaint_id, kind, subject, status, filed_at, due_on FROM complaints"
        " WHERE customer_id = %s ORDER BY filed_at DESC",
        (customer_id,),
    ).fetchall()
    page = render_template(
        "customer/complaints.html", form=form, rows=rows, today=warsaw_day(datetime.now(UTC))
    )
    return page, status


@bp.get("/complaints/<int:complaint_id>")
@login_required
def complaint(complaint_id: int) -> ResponseReturnValue:
    """One case: what was filed, its status, deadline, attachments and the answer."""
    row = one_owned_or_404(
        "SELECT c.*, i.invoice_no FROM complaints c LEFT JOIN invoices i USING (invoice_id)"
        " WHERE c.complaint_id = %(id)s AND c.customer_id = %(customer_id)s",
        {"id": complaint_id},
    )
    files = (
        get_conn()
        .execute(
            "SELECT u.upload_id, u.filename, u.size_bytes FROM complaint_attachments a"
            " JOIN portal_uploads u USING (upload_id) WHERE a.complaint_id = %s ORDER BY 1",
            (complaint_id,),
        )
        .fetchall()
    )
    return render_template("customer/complaint.html", c=row, files=files)


@bp.get("/complaints/<int:complaint_id>/files/<int:upload_id>")
@login_required
def complaint_file(complaint_id: int, upload_id: int) -> ResponseReturnValue:
    """An attachment of the customer's own case, as a download."""
    one_owned_or_404(
        "SELECT 1 FROM complaint_attachments a JOIN complaints c USING (complaint_id)"
        " WHERE a.complaint_id = %(id)s AND a.upload_id = %(upload)s"
        " AND c.customer_id = %(customer_id)s",
        {"id": complaint_id, "upload": upload_id},
    )
    return send_upload(get_conn(), upload_id, current_customer_id())
