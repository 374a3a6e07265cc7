"""Documents and information, open to everybody: forms, tariffs, terms, privacy policy,
announcements and replacement water points."""

from __future__ import annotations

from flask import Response, abort, current_app, render_template
from flask.typing import ResponseReturnValue

from portal.customer import bp, documents
from portal.db import get_conn


@bp.get("/info")
def information() -> ResponseReturnValue:
    """Forms to download, tariffs, legal notices, announcements, replacement water points."""
    conn = get_conn()
    tariffs = conn.execute(
        "SELECT t.tariff_group, t.name, v.valid_from, v.valid_to, v.water_price_per_m3,"
        " v.sewage_price_per_m3, v.subscription_gr_per_month, v.vat_rate"
        " FROM tariffs t JOIN tariff_versions v USING (tariff_id)"
        " WHERE v.valid_to IS NULL OR v.valid_to >= current_date - 365"
        " ORDER BY t.tariff_group, v.valid_from DESC"
    ).fetchall()
    announcements = conn.execute(
        "SELECT a.announcement_id, a.kind, a.title, a.body, a.starts_at, a.ends_at,"
        " coalesce(string_agg(s.street || CASE WHEN s.city <> '' THEN ' (' || s.city || ')'"
        "   ELSE '' END, ', ' ORDER BY s.street), '') AS streets"
        " FROM announcements a LEFT JOIN announcement_streets s USING (announcement_id)"
        " WHERE a.ends_at > now() GROUP BY a.announcement_id ORDER BY a.starts_at LIMIT 50"
    ).fetchall()
    points = conn.execute(
        "SELECT name, address, active_from, active_to FROM water_points"
        " WHERE active_from <= now() + interval '7 days'"
        " AND (active_to IS NULL OR active_to > now()) ORDER BY name"
    ).fetchall()
    return render_template(
        "customer/info.html",
        forms=documents.FORMS,
        tariffs=tariffs,
        announcements=announcements,
        points=points,
    )


@bp.get("/info/forms/<slug>.pdf")
def form_pdf(slug: str) -> ResponseReturnValue:
    """A downloadable application or contract form."""
    form = documents.by_slug(slug)
    if form is None:
        abort(404)
    directory = current_app.extensions["meterflow.settings"].data_dir / "documents"
    return Response(
        documents.cached(form, directory),
        mimetype="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{form.slug}.pdf"'},
    )


@bp.get("/info/terms")
def terms() -> ResponseReturnValue:
    """The terms of the e-office (regulamin)."""
    return render_template("customer/terms.html", version=current_app.config["TERMS_VERSION"])


@bp.get("/info/privacy")
def privacy() -> ResponseReturnValue:
    """The privacy policy."""
    return render_template("customer/privacy.html", version=current_app.config["TERMS_VERSION"])
