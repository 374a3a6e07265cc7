"""Staff work queues: held readings to review, the complaints inbox, announcements."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from flask import abort, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from billing_engine.periods import warsaw_day
from portal.db import get_conn
from portal.staff import audit, current_staff, staff_required
from portal.staffconsole import bp
from portal.staffconsole.forms import AnnouncementForm, AnswerForm, ResolveForm
from portal.uploads import send_upload

WARSAW = ZoneInfo("Europe/Warsaw")


@bp.get("/held")
@staff_required("billing")
def held() -> ResponseReturnValue:
    """Readings the settlement held for review (e.g. a jump), oldest first."""
    rows = (
        get_conn()
        .execute(
            "SELECT h.*, k.contract_no, c.customer_id, c.customer_no FROM held_readings h"
            " JOIN contracts k USING (contract_id) JOIN customers c USING (customer_id)"
            " WHERE h.resolved_at IS NULL ORDER BY h.created_at LIMIT 200"
        )
        .fetchall()
    )
    return render_template("staffconsole/held.html", rows=rows, form=ResolveForm())


@bp.post("/held/<int:held_id>/resolve")
@staff_required("billing")
def resolve_held(held_id: int) -> ResponseReturnValue:
    """Mark a held reading reviewed, with how it was resolved."""
    form = ResolveForm()
    if not form.validate_on_submit():
        flash(_("Say how the reading was resolved."), "error")
        return redirect(url_for("staffconsole.held")), 303
    done = (
        get_conn()
        .execute(
            "UPDATE held_readings SET resolved_at = now(), resolution = %s"
            " WHERE held_id = %s AND resolved_at IS NULL",
            (form.resolution.data, held_id),
        )
        .rowcount
    )
    if not done:
        abort(404)
    audit("held.resolved", "held_reading", held_id, resolution=form.resolution.data)
    flash(_("The reading has been marked as reviewed."))
    return redirect(url_for("staffconsole.held"))


@bp.get("/complaints")
@staff_required("customer_service")
def complaints() -> ResponseReturnValue:
    """Open cases, nearest deadline first; overdue ones stand out."""
    rows = (
        get_conn()
        .execute(
            "SELECT p.complaint_id, p.kind, p.subject, p.status, p.filed_at, p.due_on,"
            " c.customer_no, c.name FROM complaints p JOIN customers c USING (customer_id)"
            " WHERE p.status IN ('open', 'in_progress') ORDER BY p.due_on, p.filed_at LIMIT 500"
        )
        .fetchall()
    )
    return render_template(
        "staffconsole/complaints.html", rows=rows, today=warsaw_day(datetime.now(UTC))
    )


@bp.route("/complaints/<int:complaint_id>", methods=["GET", "POST"])
@staff_required("customer_service")
def complaint(complaint_id: int) -> ResponseReturnValue:
    """A case with its attachments, and the answer form."""
    conn = get_conn()
    row = conn.execute(
        "SELECT p.*, c.customer_no, c.name, i.invoice_no FROM complaints p"
        " JOIN customers c USING (customer_id) LEFT JOIN invoices i USING (invoice_id)"
        " WHERE p.complaint_id = %s",
        (complaint_id,),
    ).fetchone()
    if row is None:
        abort(404)
    form = AnswerForm(data={"status": row["status"], "answer": row["answer"] or ""})
    status = 200
    if form.validate_on_submit():
        answer = (form.answer.data or "").strip()
        if form.status.data in ("answered", "closed") and not answer:
            form.answer.errors = [_("Write the answer before marking the case answered.")]
            status = 400
        else:
            staff = current_staff()
            conn.execute(
                "UPDATE complaints SET status = %s, answer = %s, answered_by = %s,"
                " answered_at = CASE WHEN %s::text IS NULL THEN NULL ELSE now() END"
                " WHERE complaint_id = %s",
                (
                    form.status.data,
                    answer or None,
                    staff["staff_id"] if staff else None,
                    answer or None,
                    complaint_id,
                ),
            )
            audit("complaint.answered", "complaint", complaint_id, status=form.status.data)
            flash(_("The case has been saved."))
            return redirect(url_for("staffconsole.complaints"))
    elif form.is_submitted():
        status = 400
    files = conn.execute(
        "SELECT u.upload_id, u.filename FROM complaint_attachments a JOIN portal_uploads u"
        " USING (upload_id) WHERE a.complaint_id = %s ORDER BY 1",
        (complaint_id,),
    ).fetchall()
    page = render_template("staffconsole/complaint.html", c=row, form=form, files=files)
    return page, status


@bp.get("/complaints/<int:complaint_id>/files/<int:upload_id>")
@staff_required("customer_service")
def complaint_file(complaint_id: int, upload_id: int) -> ResponseReturnValue:
    """An attachment of a case, as a download."""
    conn = get_conn()
    found = conn.execute(
        "SELECT 1 FROM complaint_attachments WHERE complaint_id = %s AND upload_id = %s",
        (complaint_id, upload_id),
    ).fetchone()
    if found is None:
        abort(404)
    return send_upload(conn, upload_id, None)


@bp.route("/announcements", methods=["GET", "POST"])
@staff_required("customer_service")
def announcements() -> ResponseReturnValue:
    """Current announcements and the form to publish one for some streets (or everybody)."""
    conn = get_conn()
    form = AnnouncementForm()
    status = 200
    if form.validate_on_submit():
        assert form.starts_at.data is not None and form.ends_at.data is not None
        staff = current_staff()
        row = conn.execute(
            "INSERT INTO announcements (kind, title, body, starts_at, ends_at, created_by)"
            " VALUES (%s, %s, %s, %s, %s, %s) RETURNING announcement_id",
            (
                form.kind.data,
                (form.title.data or "").strip(),
                (form.body.data or "").strip(),
                form.starts_at.data.replace(tzinfo=WARSAW),
                form.ends_at.data.replace(tzinfo=WARSAW),
                staff["staff_id"] if staff else None,
            ),
        ).fetchone()
        assert row is not None
        streets = sorted({s.strip() for s in (form.streets.data or "").splitlines() if s.strip()})
        for street in streets:
            conn.execute(
                "INSERT INTO announcement_streets (announcement_id, street) VALUES (%s, %s)",
                (row["announcement_id"], street[:200]),
            )
        audit("announcement.published", "announcement", row["announcement_id"], streets=streets)
        flash(_("The announcement has been published."))
        return redirect(url_for("staffconsole.announcements"))
    if form.is_submitted():
        status = 400
    rows = conn.execute(
        "SELECT a.*, coalesce(string_agg(s.street, ', '), '') AS streets FROM announcements a"
        " LEFT JOIN announcement_streets s USING (announcement_id) WHERE a.ends_at > now()"
        " GROUP BY a.announcement_id ORDER BY a.starts_at"
    ).fetchall()
    return render_template("staffconsole/announcements.html", form=form, rows=rows), status
