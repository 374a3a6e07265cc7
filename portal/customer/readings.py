"""Readings pages: history per meter, entering a reading, asking for a remote reading."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

from flask import current_app, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from psycopg.rows import DictRow
from wtforms.fields.choices import SelectChoice  # type: ignore[attr-defined]

from billing_engine.model import ReadingRefused
from billing_engine.periods import warsaw_day
from meterflow.errors import ConfigError, TransportError
from meterflow.settings import Settings
from portal.auth import current_customer_id, login_required, one_owned_or_404
from portal.customer import bp, data, m3_text, meter_readings, remote
from portal.customer.forms import ReadingForm, RemoteReadForm
from portal.db import get_conn, read_only
from portal.i18n import current_language

log = logging.getLogger(__name__)


def refusal_text(error: ReadingRefused, last: tuple[str, str] | None) -> str:
    """Billing's refusal in the customer's language."""
    if error.code == "below_last_actual" and last:
        return str(
            _(
                "The reading is lower than the last actual reading %(value)s m³ of %(day)s. "
                "Check that you copied the black digits of the meter.",
                value=last[0],
                day=last[1],
            )
        )
    texts = {
        "future": _("The reading is dated in the future; give today's date."),
        "third_period": _(
            "You have read the meter yourself in the two billing periods before; this period "
            "needs a remote or inspector reading, which we will arrange."
        ),
        "same_day": _("You have already entered a reading of this meter for that day."),
    }
    return str(texts.get(error.code, _("The reading cannot be accepted: %(why)s", why=str(error))))


def history_rows(history: list[meter_readings.HistoryRow]) -> list[tuple[str, str, str, str]]:
    """The history table's cells as text (date, reading, use, source), formatted in one pass
    rather than by a filter per cell."""
    language = current_language()
    labels = {
        "remote": _("remote"),
        "customer": _("own"),
        "estimate": _("estimate"),
        "inspector": _("inspector"),
    }
    return [
        (
            f"{h.day:%d.%m.%Y}",
            m3_text(h.value_m3, language),
            m3_text(h.used_m3, language),
            labels.get(h.source, h.source),
        )
        for h in history
    ]


def owned_meter(meter_id: str) -> DictRow:
    """The logged-in customer's current installation of ``meter_id``, or a 404."""
    return one_owned_or_404(
        f"SELECT * FROM ({data.METERS} AND mi.meter_id = %(meter_id)s"
        " ORDER BY mi.installation_id) m ORDER BY (removed_on IS NULL) DESC, installed_on DESC",
        {"meter_id": meter_id},
    )


@bp.route("/readings", methods=["GET", "POST"])
@read_only
@login_required
def readings() -> ResponseReturnValue:
    """The customer's meters with their last readings, and the form to enter one."""
    conn = get_conn()
    customer_id = current_customer_id()
    meters = [m for m in data.meters(conn, customer_id) if m["removed_on"] is None]
    form = ReadingForm()
    form.meter_id.choices = [
        SelectChoice(m["meter_id"], f"{m['meter_id']} · {m['address']}") for m in meters
    ]
    if form.read_on.data is None and not form.is_submitted():
        form.read_on.data = warsaw_day(datetime.now(UTC))
    status = 200
    if form.validate_on_submit():
        meter = owned_meter(form.meter_id.data or "")
        now = datetime.now(UTC)
        assert form.read_on.data is not None and form.value_m3.data is not None
        try:
            meter_readings.submit(
                conn, customer_id, meter["meter_id"], form.read_on.data, form.value_m3.data, now
            )
        except ReadingRefused as refused:
            last = meter_readings.last_actual(conn, meter["meter_id"], now)
            shown = (str(last.value_m3), f"{warsaw_day(last.read_at):%d.%m.%Y}") if last else None
            form.value_m3.errors = [refusal_text(refused, shown)]
            status = 422
        else:
            flash(_("Thank you, the reading has been accepted."))
            return redirect(url_for("customer.meter", meter_id=meter["meter_id"]))
    elif form.is_submitted():
        status = 400
    newest = {m["meter_id"]: data.last_reading(conn, m["meter_id"]) for m in meters}
    page = render_template("customer/readings.html", form=form, meters=meters, last=newest)
    return page, status


@bp.get("/meters/<meter_id>")
@read_only
@login_required
def meter(meter_id: str) -> ResponseReturnValue:
    """One meter's reading history and its remote reading requests."""
    row = owned_meter(meter_id)
    conn = get_conn()
    return render_template(
        "customer/meter.html",
        meter=row,
        history=history_rows(meter_readings.history(conn, meter_id)),
        requests=remote.requests(conn, current_customer_id(), meter_id),
        form=RemoteReadForm(),
    )


@bp.post("/meters/<meter_id>/remote-read")
@login_required
def remote_read(meter_id: str) -> ResponseReturnValue:
    """Send a read command to the gateway that last heard the meter, and record it."""
    row = owned_meter(meter_id)
    if not RemoteReadForm().validate_on_submit():
        flash(_("The request was not sent; reload the page and try again."), "error")
        return redirect(url_for("customer.meter", meter_id=meter_id)), 303
    conn = get_conn()
    customer_id = current_customer_id()
    if remote.recent_request(conn, customer_id, meter_id):
        flash(_("You asked for a reading of this meter a moment ago; please wait for it."))
        return redirect(url_for("customer.meter", meter_id=meter_id))
    gateway = remote.gateway_of(conn, meter_id)
    if gateway is None:
        flash(_("This meter cannot be read remotely; please enter the reading yourself."), "error")
        return redirect(url_for("customer.meter", meter_id=meter_id))
    request_id = uuid.uuid4()
    error = _send(gateway, request_id, row["meter_id"])
    remote.record(conn, request_id, customer_id, meter_id, gateway, error)
    if error:
        flash(
            _("We could not reach the meter's gateway just now; please try again later."), "error"
        )
    else:
        flash(_("The meter will be read in a few minutes; the result will appear here."))
    return redirect(url_for("customer.meter", meter_id=meter_id))


def _send(gateway: str, request_id: uuid.UUID, meter_id: str) -> str | None:
    settings: Settings = current_app.extensions["meterflow.settings"]
    try:
        if not settings.mqtt_url:
            raise ConfigError("METERFLOW_MQTT_URL is not set")
        remote.publish_command(
            settings.mqtt_url, gateway, remote.command_payload(request_id, meter_id)
        )
    except (TransportError, ConfigError) as exc:
        log.warning("remote reading %s of %s failed: %s", request_id, meter_id, exc)
        return str(exc)
    return None
