"""The logged-in customer's own account: password, e-mail address, deletion."""

from __future__ import annotations

from flask import flash, g, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from psycopg import errors as pg_errors
from psycopg.rows import DictRow

from meterflow.errors import AuthError
from portal import ratelimit, sessions, tokens
from portal.auth import accounts, bp, login_required
from portal.auth.forms import ChangeEmailForm, ChangePasswordForm, DeleteAccountForm
from portal.auth.views import _bad_link, hasher, too_many
from portal.db import get_conn
from portal.forms import add_error
from portal.notices import link, queue_notice


def _me() -> DictRow:
    account: DictRow = g.account
    return account


def _password_ok(field_data: str | None) -> bool | int:
    """Check the current password again; an int is the seconds to wait (rate-limited)."""
    wait = ratelimit.hit("login", _me()["email"])
    if wait:
        return wait
    return hasher().verify(_me()["password_hash"], field_data or "")


@bp.get("/account")
@login_required
def account() -> ResponseReturnValue:
    """The account overview: login e-mail and the account actions."""
    return render_template("auth/account.html", account=_me())


@bp.route("/account/password", methods=["GET", "POST"])
def change_password() -> ResponseReturnValue:
    """Change the password (also the forced change at first login); other sessions end."""
    if g.get("account") is None:
        return redirect(url_for("auth.login", next=request.path))
    form = ChangePasswordForm()
    if form.validate_on_submit():
        checked = _password_ok(form.current_password.data)
        if checked is not True and checked is not False:
            return too_many(int(checked))
        if not checked:
            add_error(form.current_password, _("The current password is wrong."))
        elif form.password.data == form.current_password.data:
            add_error(form.password, _("Choose a password different from the current one."))
        else:
            conn = get_conn()
            account_id = _me()["account_id"]
            accounts.set_password(conn, account_id, hasher().hash(form.password.data or ""))
            sessions.end_all(conn, account_id=account_id)
            sessions.begin(session, account_id=account_id)
            flash(_("Your password has been changed. Other sessions have been logged out."))
            return redirect(url_for("auth.account"))
    forced = bool(_me()["must_change_password"])
    return render_template(
        "auth/form.html",
        form=form,
        title=_("Change password"),
        submit=_("Change password"),
        forced=forced,
    )


@bp.route("/account/email", methods=["GET", "POST"])
@login_required
def change_email() -> ResponseReturnValue:
    """Ask to change the login e-mail: password again, then a link to the new address."""
    form = ChangeEmailForm()
    if form.validate_on_submit():
        new_email = accounts.normalise_email(form.email.data or "")
        checked = _password_ok(form.current_password.data)
        if checked is not True and checked is not False:
            return too_many(int(checked))
        if not checked:
            add_error(form.current_password, _("The current password is wrong."))
        elif new_email == _me()["email"]:
            add_error(form.email, _("This is already your e-mail address."))
        else:
            _send_new_email_link(new_email)
            flash(
                _(
                    "We have sent a link to %(email)s. Open it to finish the change.",
                    email=new_email,
                )
            )
            return redirect(url_for("auth.account"))
    return render_template(
        "auth/form.html", form=form, title=_("Change e-mail address"), submit=_("Send the link")
    )


@bp.route("/account/email/confirm/<token>", methods=["GET", "POST"])
def confirm_email(token: str) -> ResponseReturnValue:
    """Finish an e-mail change from the link sent to the new address."""
    if request.method == "GET":
        return render_template("auth/confirm.html", title=_("Confirm the new e-mail address"))
    conn = get_conn()
    try:
        account_id, new_email = tokens.consume(conn, token, "new_email")
    except AuthError:
        return _bad_link()
    assert new_email is not None
    try:
        with conn.transaction():
            accounts.set_email(conn, account_id, new_email)
    except pg_errors.UniqueViolation:
        return _bad_link()
    flash(_("Your e-mail address has been changed."))
    return redirect(url_for("auth.account" if g.get("account") else "auth.login"))


@bp.route("/account/delete", methods=["GET", "POST"])
@login_required
def delete_account() -> ResponseReturnValue:
    """Delete the e-office account; invoices, payments and readings stay with the utility."""
    form = DeleteAccountForm()
    if form.validate_on_submit():
        checked = _password_ok(form.current_password.data)
        if checked is not True and checked is not False:
            return too_many(int(checked))
        if not checked:
            add_error(form.current_password, _("The current password is wrong."))
        else:
            accounts.delete(get_conn(), _me()["account_id"])
            sessions.begin(session)
            flash(_("Your e-office account has been deleted."))
            return redirect(url_for("auth.login"))
    return render_template(
        "auth/form.html",
        form=form,
        title=_("Delete the account"),
        submit=_("Delete my account"),
        danger=True,
        intro=_(
            "Your login and the personal data used only by the e-office "
            "will be deleted. Invoices, payments and readings stay with "
            "the utility as the law requires."
        ),
    )


def _send_new_email_link(new_email: str) -> None:
    conn = get_conn()
    me = _me()
    if accounts.by_email(conn, new_email) is not None:
        # Say nothing here about the other account; tell only the owner of that address.
        queue_notice(
            conn,
            kind="portal_account_exists",
            account_id=me["account_id"],
            payload={"to": new_email, "channel": "email", "login_url": link("auth.login")},
        )
        return
    token = tokens.issue(conn, me["account_id"], "new_email", new_email=new_email)
    queue_notice(
        conn,
        kind="portal_new_email",
        account_id=me["account_id"],
        customer_id=me["customer_id"],
        payload={
            "to": new_email,
            "channel": "email",
            "url": link("auth.confirm_email", token=token),
        },
    )
