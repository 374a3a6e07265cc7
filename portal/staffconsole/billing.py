"""Tariffs (new versions through billing's validated writer) and settlement runs with their
reports (billing's ``settle`` and ``report``)."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import timedelta

from flask import Response, abort, current_app, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from billing_engine.model import TariffVersion
from billing_engine.money import round_grosze
from billing_engine.report import group_totals, invoices_frame
from billing_engine.repository import add_tariff_versions, load_tariffs
from billing_engine.settlement import settle
from billing_engine.tariffs import Tariff
from meterflow.errors import BillingError, StoreError
from portal.db import get_conn, tuple_rows
from portal.staff import audit, staff_required
from portal.staffconsole import bp
from portal.staffconsole.forms import RunForm, TariffVersionForm


def _conninfo() -> str:
    url = current_app.extensions["meterflow.settings"].database_url
    assert url is not None
    return str(url)


def _tariff_page(form: TariffVersionForm, status: int = 200) -> ResponseReturnValue:
    rows = (
        get_conn()
        .execute(
            "SELECT t.tariff_id, t.tariff_group, t.name, v.valid_from, v.valid_to,"
            " v.water_price_per_m3, v.sewage_price_per_m3, v.subscription_gr_per_month,"
            " v.vat_rate FROM tariffs t JOIN tariff_versions v USING (tariff_id)"
            " ORDER BY t.tariff_group, v.valid_from DESC"
        )
        .fetchall()
    )
    return render_template("staffconsole/tariffs.html", rows=rows, form=form), status


@bp.get("/tariffs")
@staff_required("billing")
def tariffs() -> ResponseReturnValue:
    """Tariff groups with their versions, and the form to add a version."""
    return _tariff_page(TariffVersionForm())


@bp.post("/tariffs/<int:tariff_id>/versions")
@staff_required("billing")
def add_version(tariff_id: int) -> ResponseReturnValue:
    """Add a tariff version; billing's rules check it (no overlap, prices not negative)."""
    form = TariffVersionForm()
    if not form.validate_on_submit():
        return _tariff_page(form, 400)
    conn = get_conn()
    with tuple_rows(conn) as billing_conn:
        stored = load_tariffs(billing_conn)
    if tariff_id not in stored:
        abort(404)
    assert form.valid_from.data is not None and form.water_price.data is not None
    assert form.sewage_price.data is not None and form.subscription.data is not None
    version = TariffVersion(
        form.valid_from.data,
        None,
        form.water_price.data,
        form.sewage_price.data,
        round_grosze(form.subscription.data),
    )
    try:
        old = stored[tariff_id]
        Tariff(old.group, (*_closed(old.versions, version), version), old.norm_m3_per_day)
        with conn.transaction():
            _close_open_version(tariff_id, version)
            with tuple_rows(conn) as billing_conn:
                add_tariff_versions(billing_conn, tariff_id, [version])
    except BillingError as refused:
        form.valid_from.errors = [_("Billing refused the version: %(why)s", why=str(refused))]
        return _tariff_page(form, 400)
    audit("tariff.version_added", "tariff", tariff_id, valid_from=str(version.valid_from))
    flash(_("The tariff version has been added."))
    return redirect(url_for("staffconsole.tariffs"))


def _closed(versions: tuple[TariffVersion, ...], new: TariffVersion) -> list[TariffVersion]:
    end = new.valid_from - timedelta(days=1)
    return [
        replace(v, valid_to=end) if v.valid_to is None and v.valid_from <= end else v
        for v in versions
    ]


def _close_open_version(tariff_id: int, new: TariffVersion) -> None:
    get_conn().execute(
        "UPDATE tariff_versions SET valid_to = %s::date - 1 WHERE tariff_id = %s"
        " AND valid_to IS NULL AND valid_from < %s",
        (new.valid_from, tariff_id, new.valid_from),
    )


@bp.route("/runs", methods=["GET", "POST"])
@staff_required("billing")
def runs() -> ResponseReturnValue:
    """Settlement runs with their summaries; start a run (dry or issuing)."""
    form = RunForm()
    status = 200
    if form.validate_on_submit():
        label = form.label.data or ""
        try:
            summary = settle(_conninfo(), label, dry_run=form.mode.data == "dry")
        except (BillingError, StoreError) as refused:
            form.label.errors = [_("The run did not start: %(why)s", why=str(refused))]
            status = 400
        else:
            audit(
                "settlement.run",
                "period",
                label,
                dry_run=summary.dry_run,
                issued=summary.issued,
                held=summary.held,
                failed=len(summary.failed),
            )
            flash(
                _(
                    "Period %(label)s: %(due)s due, %(issued)s issued, %(held)s held, "
                    "%(failed)s refused.",
                    label=label,
                    due=summary.due,
                    issued=summary.issued,
                    held=summary.held,
                    failed=len(summary.failed),
                )
            )
            return redirect(url_for("staffconsole.runs"))
    elif form.is_submitted():
        status = 400
    rows = (
        get_conn()
        .execute(
            "SELECT run_id, to_char(period, 'YYYY-MM') AS label, group_code, dry_run,"
            " started_at, finished_at, status, summary FROM billing_runs"
            " ORDER BY run_id DESC LIMIT 50"
        )
        .fetchall()
    )
    return render_template("staffconsole/runs.html", rows=rows, form=form), status


@bp.get("/runs/<label>/report.csv")
@staff_required("billing")
def run_report(label: str) -> ResponseReturnValue:
    """The settlement report of a period (totals per tariff group) from billing, as CSV."""
    try:
        totals = group_totals(invoices_frame(_conninfo(), label))
    except BillingError:
        abort(404)
    out = io.StringIO()
    totals.to_csv(out, index=False)
    audit("settlement.report", "period", label)
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="rozliczenie-{label}.csv"'},
    )
