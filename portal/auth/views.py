"""Login, logout, self-registration, e-mail verification and forgotten passwords.

No answer here reveals whether an e-mail address has an account: unknown addresses get the
same page and the same work (a password hash is still checked or computed).
"""

from __future__ import annotations

from flask import (
    after_this_request,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from psycopg.rows import DictRow
from werkzeug.wrappers import Response

from billing_engine.notify import devices
from meterflow.errors import AuthError
from portal import ratelimit, sessions, tokens
from portal.auth import accounts, bp, current_account
from portal.auth.forms import ForgotForm, LoginForm, RegisterForm, ResendForm, ResetForm
from portal.db import get_conn
from portal.forms import add_error
from portal.notices import link, queue_notice
from portal.passwords import Hasher
from portal.security import safe_next


def hasher() -> Hasher:
    """The app's password hasher."""
    found: Hasher = current_app.extensions["meterflow.hasher"]
    return found


def password_matches(row: DictRow | None, password: str) -> bool:
    """Check ``password`` against ``row``'s hash; False when there is no row.

    Always one hash check, so an unknown address costs the same time as a known one.
    """
    stored = row["password_hash"] if row else None
    return hasher().verify(stored, password) and row is not None


def home_url() -> str:
    """Where a logged-in customer lands: CUSTOMER_HOME if that endpoint exists, else /account."""
    endpoint = current_app.config.get("CUSTOMER_HOME", "")
    if endpoint and endpoint in current_app.view_functions:
        return url_for(endpoint)
    return url_for("auth.account")


def too_many(wait: int) -> ResponseReturnValue:
    """The 429 page: the same for every e-mail address."""
    message = _("Too many attempts. Try again in %(minutes)s min.", minutes=max(1, wait // 60))
    page = render_template("message.html", title=_("Please wait"), message=message)
    return page, 429, {"Retry-After": str(wait)}


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    """Log in with e-mail and password; a fresh session id on success."""
    form = LoginForm()
    if form.validate_on_submit():
        wait = ratelimit.hit("login", form.email.data or "")
        if wait:
            return too_many(wait)
        conn = get_conn()
        account = accounts.by_email(conn, form.email.data or "")
        password_ok = password_matches(account, form.password.data or "")
        if account is None or not password_ok:
            add_error(form.password, _("Wrong e-mail address or password."))
        elif account["blocked_at"] is not None:
            add_error(form.email, _("This account is blocked. Contact customer service."))
        elif account["status"] == "unverified":
            add_error(form.email, _("Confirm your e-mail address first (see the link we sent)."))
        elif account["status"] == "pending":
            add_error(form.email, _("Your account waits for approval by customer service."))
        else:
            sessions.begin(session, account_id=account["account_id"])
            new_hash = None
            if hasher().needs_rehash(account["password_hash"]):
                new_hash = hasher().hash(form.password.data or "")
            accounts.touch_login(conn, account["account_id"], new_hash)
            device = devices.note_login(
                conn,
                account,
                request.cookies.get(devices.COOKIE),
                current_app.secret_key or "",
                request.remote_addr,
                request.user_agent.string,
            )
            secure = bool(current_app.config["SESSION_COOKIE_SECURE"])

            @after_this_request
            def remember_device(response: Response) -> Response:
                devices.set_cookie(response, device, secure=secure)
                return response

            sessions.purge_expired(conn)
            if account["must_change_password"]:
                return redirect(url_for("auth.change_password"))
            return redirect(safe_next(request.args.get("next")) or home_url())
    return render_template("auth/login.html", form=form)


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    """Log out here and end every other session of the account."""
    account = current_account()
    if account is not None:
        sessions.end_all(get_conn(), account_id=account["account_id"])
    sessions.begin(session)
    flash(_("You have been logged out."))
    return redirect(url_for("auth.login"))


@bp.route("/register", methods=["GET", "POST"])
def register() -> ResponseReturnValue:
    """Self-registration: customer number, a recent invoice number, both acceptances."""
    form = RegisterForm()
    if form.validate_on_submit():
        email = accounts.normalise_email(form.email.data or "")
        wait = ratelimit.hit("register", email)
        if wait:
            return too_many(wait)
        conn = get_conn()
        password_hash = hasher().hash(form.password.data or "")
        existing = accounts.by_email(conn, email)
        if existing is not None:
            queue_notice(
                conn,
                kind="portal_account_exists",
                account_id=existing["account_id"],
                payload={
                    "to": email,
                    "channel": "email",
                    "login_url": link("auth.login"),
                    "reset_url": link("auth.forgot"),
                },
            )
        else:
            account_id = accounts.create_self(
                conn,
                email,
                password_hash,
                form.customer_no.data or "",
                form.invoice_no.data or "",
                current_app.config["TERMS_VERSION"],
                request.remote_addr,
            )
            _send_verification(account_id, email)
        return redirect(url_for("auth.registered"))
    return render_template("auth/register.html", form=form)


@bp.get("/register/sent")
def registered() -> ResponseReturnValue:
    """The one answer to every registration: look in your mailbox."""
    return render_template(
        "message.html",
        title=_("Check your e-mail"),
        message=_(
            "We have sent a message to the address you gave. Open the link in it to "
            "confirm the address. The link is valid for 3 days."
        ),
    )


@bp.route("/verify/<token>", methods=["GET", "POST"])
def verify(token: str) -> ResponseReturnValue:
    """Confirm an e-mail address (a button, so mail scanners opening links use up nothing)."""
    if request.method == "GET":
        return render_template("auth/confirm.html", title=_("Confirm your e-mail address"))
    conn = get_conn()
    try:
        account_id, _email = tokens.consume(conn, token, "verify")
    except AuthError:
        return _bad_link()
    account = accounts.by_id(conn, account_id)
    assert account is not None
    if accounts.confirm_email(conn, account) == "active":
        flash(_("Your e-mail address is confirmed and your account is active. Log in."))
    else:
        flash(
            _(
                "Your e-mail address is confirmed. Customer service will activate your "
                "account within three working days."
            )
        )
    return redirect(url_for("auth.login"))


@bp.route("/verify/resend", methods=["GET", "POST"])
def resend() -> ResponseReturnValue:
    """Send the verification link again (same answer whatever the address)."""
    form = ResendForm()
    if form.validate_on_submit():
        wait = ratelimit.hit("reset", form.email.data or "")
        if wait:
            return too_many(wait)
        account = accounts.by_email(get_conn(), form.email.data or "")
        if account is not None and account["status"] == "unverified":
            _send_verification(account["account_id"], account["email"])
        return redirect(url_for("auth.registered"))
    return render_template(
        "auth/form.html", form=form, title=_("Send the link again"), submit=_("Send")
    )


@bp.route("/password/forgot", methods=["GET", "POST"])
def forgot() -> ResponseReturnValue:
    """Ask for a password-reset link (same answer whatever the address)."""
    form = ForgotForm()
    if form.validate_on_submit():
        wait = ratelimit.hit("reset", form.email.data or "")
        if wait:
            return too_many(wait)
        conn = get_conn()
        account = accounts.by_email(conn, form.email.data or "")
        if account is not None:
            token = tokens.issue(conn, account["account_id"], "reset")
            queue_notice(
                conn,
                kind="portal_password_reset",
                account_id=account["account_id"],
                customer_id=account["customer_id"],
                payload={
                    "to": account["email"],
                    "channel": "email",
                    "url": link("auth.reset", token=token),
                },
            )
        return redirect(url_for("auth.reset_sent"))
    return render_template(
        "auth/form.html", form=form, title=_("Forgotten password"), submit=_("Send me a link")
    )


@bp.get("/password/sent")
def reset_sent() -> ResponseReturnValue:
    """The one answer to every reset request."""
    return render_template(
        "message.html",
        title=_("Check your e-mail"),
        message=_(
            "If the address has an account, we have sent it a link to set a new "
            "password. The link is valid for one hour and works once."
        ),
    )


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
def reset(token: str) -> ResponseReturnValue:
    """Set a new password with a reset link; every session of the account ends."""
    form = ResetForm()
    if form.validate_on_submit():
        conn = get_conn()
        try:
            account_id, _email = tokens.consume(conn, token, "reset")
        except AuthError:
            return _bad_link()
        accounts.set_password(conn, account_id, hasher().hash(form.password.data or ""))
        sessions.end_all(conn, account_id=account_id)
        flash(_("Your password has been changed. Log in with the new one."))
        return redirect(url_for("auth.login"))
    return render_template(
        "auth/form.html", form=form, title=_("Set a new password"), submit=_("Save the password")
    )


def _send_verification(account_id: int, email: str) -> None:
    conn = get_conn()
    token = tokens.issue(conn, account_id, "verify")
    queue_notice(
        conn,
        kind="portal_verify_email",
        account_id=account_id,
        payload={"to": email, "channel": "email", "url": link("auth.verify", token=token)},
    )


def _bad_link() -> ResponseReturnValue:
    page = render_template(
        "message.html",
        title=_("The link does not work"),
        message=_("The link is invalid, has expired or was already used. Ask for a new one."),
    )
    return page, 400
