"""Contact data and notification preferences (e-mail/SMS per kind of notice)."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from portal.auth import current_customer_id, login_required
from portal.customer import bp, data
from portal.customer.forms import NOTICE_KINDS, ContactForm, PreferencesForm
from portal.db import Conn, get_conn


def preferences(conn: Conn, customer_id: int) -> dict[str, tuple[bool, bool]]:
    """(by e-mail, by SMS) per kind of notice; kinds without a row default to e-mail only."""
    rows = conn.execute(
        "SELECT kind, by_email, by_sms FROM notification_preferences WHERE customer_id = %s",
        (customer_id,),
    ).fetchall()
    stored = {r["kind"]: (bool(r["by_email"]), bool(r["by_sms"])) for r in rows}
    return {kind: stored.get(kind, (True, False)) for kind, _label in NOTICE_KINDS}


def _save_preferences(conn: Conn, customer_id: int, form: PreferencesForm) -> None:
    for kind, _label in NOTICE_KINDS:
        channels = form[kind]
        conn.execute(
            "INSERT INTO notification_preferences (customer_id, kind, by_email, by_sms)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT (customer_id, kind)"
            " DO UPDATE SET by_email = excluded.by_email, by_sms = excluded.by_sms",
            (customer_id, kind, bool(channels.by_email.data), bool(channels.by_sms.data)),
        )


def _page(contact: ContactForm, prefs: PreferencesForm, status: int = 200) -> ResponseReturnValue:
    person = data.customer(get_conn(), current_customer_id())
    page = render_template("customer/profile.html", person=person, contact=contact, prefs=prefs)
    return page, status


@bp.get("/profile")
@login_required
def profile() -> ResponseReturnValue:
    """Contact data and notification preferences, each its own form."""
    conn = get_conn()
    customer_id = current_customer_id()
    person = data.customer(conn, customer_id)
    contact = ContactForm(data={"email": person["email"], "phone": person["phone"]})
    stored = preferences(conn, customer_id)
    prefs = PreferencesForm(data={k: {"by_email": e, "by_sms": s} for k, (e, s) in stored.items()})
    return _page(contact, prefs)


@bp.post("/profile/contact")
@login_required
def save_contact() -> ResponseReturnValue:
    """Save the contact e-mail and phone (used for notices, not for logging in)."""
    form = ContactForm()
    if not form.validate_on_submit():
        return _page(form, PreferencesForm(formdata=None), 400)
    get_conn().execute(
        "UPDATE customers SET email = %s, phone = %s WHERE customer_id = %s",
        (
            (form.email.data or "").strip().lower() or None,
            (form.phone.data or "").strip() or None,
            current_customer_id(),
        ),
    )
    flash(_("Your contact data has been saved."))
    return redirect(url_for("customer.profile"))


@bp.post("/profile/notices")
@login_required
def save_notices() -> ResponseReturnValue:
    """Save which notices go by e-mail and which by SMS."""
    form = PreferencesForm()
    if not form.validate_on_submit():
        return _page(ContactForm(formdata=None), form, 400)
    conn = get_conn()
    customer_id = current_customer_id()
    if any(form[k].by_sms.data for k, _label in NOTICE_KINDS):
        phone = data.customer(conn, customer_id)["phone"]
        if not phone:
            flash(_("Give a mobile phone number first to receive SMS."), "error")
            return _page(ContactForm(formdata=None), form, 400)
    _save_preferences(conn, customer_id, form)
    flash(_("Your notification preferences have been saved."))
    return redirect(url_for("customer.profile"))
