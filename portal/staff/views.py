"""Staff login, approvals of registrations, accounts created by staff, blocking, audit log."""

from __future__ import annotations

from flask import abort, flash, g, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from psycopg import errors as pg_errors

from portal import ratelimit, sessions
from portal.auth import accounts
from portal.auth.views import hasher, password_matches, too_many
from portal.db import get_conn
from portal.forms import add_error
from portal.notices import link, queue_notice
from portal.security import safe_next
from portal.staff import audit, bp, current_staff, staff_required, users
from portal.staff.forms import (
    ApproveForm,
    BlockForm,
    NewAccountForm,
    RejectForm,
    SearchForm,
    StaffLoginForm,
    StaffPasswordForm,
    UnblockForm,
)


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    """Staff login (separate from customer accounts); a fresh session id on success."""
    form = StaffLoginForm()
    if form.validate_on_submit():
        wait = ratelimit.hit("staff_login", form.email.data or "")
        if wait:
            return too_many(wait)
        conn = get_conn()
        staff = users.by_email(conn, form.email.data or "")
        password_ok = password_matches(staff, form.password.data or "")
        if staff is None or not password_ok:
            add_error(form.password, _("Wrong e-mail address or password."))
        elif staff["disabled_at"] is not None:
            add_error(form.email, _("This staff account is disabled."))
        else:
            sessions.begin(session, staff_id=staff["staff_id"])
            users.touch_login(conn, staff["staff_id"])
            sessions.purge_expired(conn)
            g.staff = staff
            audit("staff.login", "staff", staff["staff_id"])
            if staff["must_change_password"]:
                return redirect(url_for("staff.change_password"))
            return redirect(safe_next(request.args.get("next")) or url_for("staff.home"))
    return render_template("staff/login.html", form=form)


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    """Log the staff user out everywhere."""
    staff = current_staff()
    if staff is not None:
        sessions.end_all(get_conn(), staff_id=staff["staff_id"])
    sessions.begin(session)
    return redirect(url_for("staff.login"))


@bp.route("/password", methods=["GET", "POST"])
@staff_required()
def change_password() -> ResponseReturnValue:
    """Change the staff password (forced at first login); other sessions end."""
    staff = current_staff()
    assert staff is not None
    form = StaffPasswordForm()
    if form.validate_on_submit():
        if not hasher().verify(staff["password_hash"], form.current_password.data or ""):
            add_error(form.current_password, _("The current password is wrong."))
        elif form.password.data == form.current_password.data:
            add_error(form.password, _("Choose a password different from the current one."))
        else:
            conn = get_conn()
            users.set_password(conn, staff["staff_id"], hasher().hash(form.password.data or ""))
            sessions.end_all(conn, staff_id=staff["staff_id"])
            sessions.begin(session, staff_id=staff["staff_id"])
            audit("staff.password_changed", "staff", staff["staff_id"])
            flash(_("Your password has been changed."))
            return redirect(url_for("staff.home"))
    return render_template(
        "auth/form.html",
        form=form,
        title=_("Change password"),
        submit=_("Change password"),
        forced=staff["must_change_password"],
    )


@bp.get("/")
@staff_required()
def home() -> ResponseReturnValue:
    """The staff console's start page."""
    return render_template("staff/home.html")


@bp.get("/approvals")
@staff_required("customer_service")
def approvals() -> ResponseReturnValue:
    """The queue of verified registrations whose data did not match automatically."""
    return render_template(
        "staff/approvals.html",
        rows=accounts.pending(get_conn()),
        approve=ApproveForm(),
        reject=RejectForm(),
    )


@bp.post("/approvals/<int:account_id>/approve")
@staff_required("customer_service")
def approve(account_id: int) -> ResponseReturnValue:
    """Activate a pending account for the customer staff confirmed."""
    form = ApproveForm()
    conn = get_conn()
    if form.validate_on_submit():
        row = conn.execute(
            "SELECT customer_id FROM customers WHERE customer_no = %s",
            ((form.customer_no.data or "").strip(),),
        ).fetchone()
        if row is None:
            add_error(form.customer_no, _("No customer has this number."))
        elif accounts.activate(conn, account_id, row["customer_id"]):
            audit("account.approved", "account", account_id, customer_id=row["customer_id"])
            account = accounts.by_id(conn, account_id)
            assert account is not None
            queue_notice(
                conn,
                kind="portal_account_activated",
                account_id=account_id,
                customer_id=row["customer_id"],
                payload={
                    "to": account["email"],
                    "channel": "email",
                    "login_url": link("auth.login"),
                },
            )
            flash(_("The account has been activated."))
            return redirect(url_for("staff.approvals"))
        else:
            abort(404)
    page = render_template(
        "staff/approvals.html",
        rows=accounts.pending(conn),
        approve=form,
        reject=RejectForm(),
        failed=account_id,
    )
    return page, 400


@bp.post("/approvals/<int:account_id>/reject")
@staff_required("customer_service")
def reject(account_id: int) -> ResponseReturnValue:
    """Reject a pending registration: the account is deleted."""
    if not RejectForm().validate_on_submit():
        abort(400)
    conn = get_conn()
    deleted = conn.execute(
        "DELETE FROM portal_accounts WHERE account_id = %s AND status = 'pending'", (account_id,)
    ).rowcount
    if not deleted:
        abort(404)
    audit("account.rejected", "account", account_id)
    flash(_("The registration has been rejected."))
    return redirect(url_for("staff.approvals"))


@bp.get("/accounts")
@staff_required("customer_service")
def account_list() -> ResponseReturnValue:
    """Find customer accounts by e-mail or customer number."""
    form = SearchForm(request.args)
    rows = []
    if form.validate() and form.q.data:
        term = form.q.data.strip().lower()
        rows = (
            get_conn()
            .execute(
                "SELECT a.account_id, a.email, a.status, a.blocked_at, a.blocked_reason,"
                " c.customer_no, c.name FROM portal_accounts a"
                " LEFT JOIN customers c USING (customer_id)"
                " WHERE a.email LIKE %s OR lower(c.customer_no) = %s ORDER BY a.email LIMIT 100",
                (term.replace("%", r"\%").replace("_", r"\_") + "%", term),
            )
            .fetchall()
        )
    return render_template(
        "staff/accounts.html", form=form, rows=rows, block=BlockForm(), unblock=UnblockForm()
    )


@bp.post("/accounts/<int:account_id>/block")
@staff_required("customer_service")
def block(account_id: int) -> ResponseReturnValue:
    """Block an account that breaks the terms; its sessions end at once."""
    form = BlockForm()
    if not form.validate_on_submit():
        flash(_("Give a reason for blocking."), "error")
        return redirect(url_for("staff.account_list")), 303
    conn = get_conn()
    if not accounts.set_blocked(conn, account_id, form.reason.data or ""):
        abort(404)
    sessions.end_all(conn, account_id=account_id)
    audit("account.blocked", "account", account_id, reason=form.reason.data)
    flash(_("The account has been blocked."))
    return redirect(url_for("staff.account_list"))


@bp.post("/accounts/<int:account_id>/unblock")
@staff_required("customer_service")
def unblock(account_id: int) -> ResponseReturnValue:
    """Unblock an account."""
    if not UnblockForm().validate_on_submit():
        abort(400)
    if not accounts.set_blocked(get_conn(), account_id, None):
        abort(404)
    audit("account.unblocked", "account", account_id)
    flash(_("The account has been unblocked."))
    return redirect(url_for("staff.account_list"))


@bp.route("/accounts/new", methods=["GET", "POST"])
@staff_required("customer_service")
def new_account() -> ResponseReturnValue:
    """Create a customer's account with a random initial password sent by letter/SMS/e-mail."""
    form = NewAccountForm()
    if form.validate_on_submit():
        conn = get_conn()
        customer = conn.execute(
            "SELECT customer_id, name, address, phone FROM customers WHERE customer_no = %s",
            ((form.customer_no.data or "").strip(),),
        ).fetchone()
        if customer is None:
            add_error(form.customer_no, _("No customer has this number."))
        else:
            password = users.random_password()
            try:
                with conn.transaction():
                    account_id = accounts.create_by_staff(
                        conn,
                        customer["customer_id"],
                        form.email.data or "",
                        hasher().hash(password),
                    )
            except pg_errors.UniqueViolation:
                add_error(form.email, _("An account with this e-mail address already exists."))
            else:
                _send_initial_password(account_id, customer, form, password)
                flash(
                    _(
                        "The account has been created; the initial password goes by %(channel)s.",
                        channel=_channel_label(form),
                    )
                )
                return redirect(url_for("staff.home"))
    return render_template(
        "auth/form.html", form=form, title=_("New customer account"), submit=_("Create the account")
    )


@bp.get("/audit")
@staff_required("admin")
def audit_log() -> ResponseReturnValue:
    """The latest staff actions."""
    rows = (
        get_conn()
        .execute(
            "SELECT at, staff_email, action, target_kind, target_id, details, ip FROM audit_log"
            " ORDER BY audit_id DESC LIMIT 200"
        )
        .fetchall()
    )
    return render_template("staff/audit.html", rows=rows)


def _send_initial_password(
    account_id: int, customer: dict[str, object], form: NewAccountForm, password: str
) -> None:
    conn = get_conn()
    email = accounts.normalise_email(form.email.data or "")
    to = {"letter": customer["address"], "sms": customer["phone"], "email": email}
    queue_notice(
        conn,
        kind="portal_initial_password",
        account_id=account_id,
        customer_id=int(str(customer["customer_id"])),
        payload={
            "to": to[str(form.channel.data)],
            "channel": form.channel.data,
            "login": email,
            "password": password,
            "login_url": link("auth.login"),
        },
    )
    audit(
        "account.created",
        "account",
        account_id,
        customer_id=customer["customer_id"],
        channel=form.channel.data,
    )


def _channel_label(form: NewAccountForm) -> str:
    for value, label, *_rest in form.channel.iter_choices():
        if value == form.channel.data:
            return str(label)
    return str(form.channel.data)
