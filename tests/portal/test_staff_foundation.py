"""Staff console foundation: separate staff login, roles, approvals, blocking, accounts made
by staff with an initial password, the audit log, and ``meterflow staff add``."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient

from meterflow.cli import main
from tests.portal.helpers import (
    Account,
    StaffUser,
    csrf,
    login,
    outbox_payload,
    post_form,
    staff_login,
)

Db = psycopg.Connection[psycopg.rows.DictRow]


def audit_actions(db: Db, target_id: int) -> list[str]:
    rows = db.execute(
        "SELECT action FROM audit_log WHERE target_kind = 'account'"
        " AND target_id = %s ORDER BY audit_id",
        (str(target_id),),
    ).fetchall()
    return [r["action"] for r in rows]


def pending_account(db: Db, customer_no: str) -> int:
    row = db.execute(
        "INSERT INTO portal_accounts (email, password_hash, status, created_by,"
        " claimed_customer_no, claimed_invoice_no, email_verified_at) VALUES"
        " ('pending-' || md5(random()::text) || '@example.com', 'x', 'pending', 'self', %s,"
        " 'FV/1/2026', now()) RETURNING account_id",
        (customer_no,),
    ).fetchone()
    assert row is not None
    return int(row["account_id"])


def test_staff_login_reaches_the_console_and_is_audited(
    client: FlaskClient, db: Db, staff_user: StaffUser
) -> None:
    response = staff_login(client, staff_user.email, staff_user.password)
    assert response.headers["Location"] == "/staff/"
    page = client.get("/staff/").get_data(as_text=True)
    assert "Konsola pracownika" in page and staff_user.email in page
    row = db.execute(
        "SELECT action, staff_email FROM audit_log WHERE target_kind = 'staff' AND target_id = %s",
        (str(staff_user.staff_id),),
    ).fetchone()
    assert row is not None and (row["action"], row["staff_email"]) == (
        "staff.login",
        staff_user.email,
    )


def test_staff_login_form_reports_bad_input(client: FlaskClient, staff_user: StaffUser) -> None:
    wrong = staff_login(client, staff_user.email, "Wrong-123!").get_data(as_text=True)
    assert "Nieprawidłowy adres e-mail lub hasło." in wrong
    empty = post_form(client, "/staff/login", {"email": "x", "password": ""})
    assert "Podaj poprawny adres e-mail." in empty.get_data(as_text=True)


def test_customer_passwords_do_not_open_the_console(
    client: FlaskClient, customer_account: Account
) -> None:
    page = staff_login(client, customer_account.email, customer_account.password)
    assert "Nieprawidłowy adres e-mail lub hasło." in page.get_data(as_text=True)


def test_customers_get_404_and_visitors_the_staff_login(
    app: Flask, customer_account: Account
) -> None:
    visitor = app.test_client()
    assert visitor.get("/staff/approvals").headers["Location"].startswith("/staff/login")
    customer = app.test_client()
    login(customer, customer_account.email, customer_account.password)
    for path in (
        "/staff/",
        "/staff/approvals",
        "/staff/accounts",
        "/staff/audit",
        "/staff/accounts/new",
    ):
        assert customer.get(path).status_code == 404, path


def test_roles_limit_what_staff_may_do(
    client: FlaskClient, make_staff: Callable[..., StaffUser]
) -> None:
    billing = make_staff(["billing"])
    staff_login(client, billing.email, billing.password)
    assert client.get("/staff/").status_code == 200
    assert client.get("/staff/approvals").status_code == 403
    assert client.get("/staff/audit").status_code == 403


def test_first_staff_login_forces_a_password_change(
    client: FlaskClient, make_staff: Callable[..., StaffUser]
) -> None:
    new = make_staff(["admin"], must_change=True)
    assert staff_login(client, new.email, new.password).headers["Location"] == "/staff/password"
    assert client.get("/staff/audit").headers["Location"] == "/staff/password"
    weak = post_form(
        client,
        "/staff/password",
        {"current_password": new.password, "password": "abc", "password_again": "abc"},
    )
    assert "Hasło jest za krótkie." in weak.get_data(as_text=True)
    done = post_form(
        client,
        "/staff/password",
        {
            "current_password": new.password,
            "password": "Konsola-Biura-31",
            "password_again": "Konsola-Biura-31",
        },
    )
    assert done.headers["Location"] == "/staff/"
    assert client.get("/staff/audit").status_code == 200


def test_approving_a_pending_registration_activates_it_and_is_audited(
    client: FlaskClient, db: Db, staff_user: StaffUser, bare_customer: tuple[int, str]
) -> None:
    customer_id, customer_no = bare_customer
    account_id = pending_account(db, customer_no)
    staff_login(client, staff_user.email, staff_user.password)
    assert customer_no in client.get("/staff/approvals").get_data(as_text=True)
    bad = post_form(
        client,
        f"/staff/approvals/{account_id}/approve",
        {"customer_no": "K-none"},
        form_page="/staff/approvals",
    )
    assert bad.status_code == 400
    assert "Nie ma klienta o tym numerze." in bad.get_data(as_text=True)
    done = post_form(
        client,
        f"/staff/approvals/{account_id}/approve",
        {"customer_no": customer_no},
        form_page="/staff/approvals",
    )
    assert done.headers["Location"] == "/staff/approvals"
    row = db.execute(
        "SELECT status, customer_id FROM portal_accounts WHERE account_id = %s", (account_id,)
    ).fetchone()
    assert row is not None and (row["status"], row["customer_id"]) == ("active", customer_id)
    assert audit_actions(db, account_id) == ["account.approved"]
    assert outbox_payload(db, "portal_account_activated", account_id)["channel"] == "email"
    again = post_form(
        client,
        f"/staff/approvals/{account_id}/approve",
        {"customer_no": customer_no},
        form_page="/staff/approvals",
    )
    assert again.status_code == 404


def test_rejecting_a_registration_deletes_it(
    client: FlaskClient, db: Db, staff_user: StaffUser, bare_customer: tuple[int, str]
) -> None:
    account_id = pending_account(db, bare_customer[1])
    staff_login(client, staff_user.email, staff_user.password)
    post_form(client, f"/staff/approvals/{account_id}/reject", {}, form_page="/staff/approvals")
    assert (
        db.execute("SELECT 1 FROM portal_accounts WHERE account_id = %s", (account_id,)).fetchone()
        is None
    )
    assert audit_actions(db, account_id) == ["account.rejected"]


def test_blocking_ends_the_customers_sessions_and_unblocking_restores_access(
    app: Flask, db: Db, staff_user: StaffUser, customer_account: Account
) -> None:
    customer, staff = app.test_client(), app.test_client()
    login(customer, customer_account.email, customer_account.password)
    staff_login(staff, staff_user.email, staff_user.password)
    page = staff.get(f"/staff/accounts?q={customer_account.email}").get_data(as_text=True)
    assert customer_account.email in page
    token = csrf(staff, "/staff/")
    no_reason = staff.post(
        f"/staff/accounts/{customer_account.account_id}/block", data={"csrf_token": token}
    )
    assert no_reason.status_code in (302, 303)
    assert customer.get("/account").status_code == 200
    staff.post(
        f"/staff/accounts/{customer_account.account_id}/block",
        data={"csrf_token": token, "reason": "breaks the terms"},
    )
    assert customer.get("/account").status_code == 302
    refused = login(customer, customer_account.email, customer_account.password)
    assert "zablokowane" in refused.get_data(as_text=True)
    staff.post(f"/staff/accounts/{customer_account.account_id}/unblock", data={"csrf_token": token})
    assert login(customer, customer_account.email, customer_account.password).status_code == 302
    assert audit_actions(db, customer_account.account_id) == [
        "account.blocked",
        "account.unblocked",
    ]
    missing = staff.post("/staff/accounts/999999999/unblock", data={"csrf_token": token})
    assert missing.status_code == 404


@pytest.mark.parametrize("channel", ["letter", "sms", "email"])
def test_staff_creates_an_account_with_an_initial_password_notice(
    app: Flask, db: Db, staff_user: StaffUser, bare_customer: tuple[int, str], channel: str
) -> None:
    customer_id, customer_no = bare_customer
    staff = app.test_client()
    staff_login(staff, staff_user.email, staff_user.password)
    email = f"{customer_no.lower()}@example.com"
    done = post_form(
        staff,
        "/staff/accounts/new",
        {"customer_no": customer_no, "email": email, "channel": channel},
    )
    assert done.headers["Location"] == "/staff/"
    row = db.execute(
        "SELECT account_id, must_change_password FROM portal_accounts WHERE email = %s", (email,)
    ).fetchone()
    assert row is not None and row["must_change_password"]
    payload = outbox_payload(db, "portal_initial_password", row["account_id"])
    expected_to = {"letter": "ul. Wodna 2", "sms": "+48500100300", "email": email}[channel]
    assert payload["channel"] == channel and payload["to"] == expected_to
    customer = app.test_client()
    first = login(customer, email, str(payload["password"]))
    assert first.headers["Location"] == "/account/password"
    assert audit_actions(db, row["account_id"]) == ["account.created"]
    del customer_id


def test_new_account_form_reports_bad_input(
    client: FlaskClient, staff_user: StaffUser, customer_account: Account
) -> None:
    staff_login(client, staff_user.email, staff_user.password)
    unknown = post_form(
        client,
        "/staff/accounts/new",
        {"customer_no": "K-none", "email": "a@example.com", "channel": "sms"},
    )
    assert "Nie ma klienta o tym numerze." in unknown.get_data(as_text=True)
    taken = post_form(
        client,
        "/staff/accounts/new",
        {
            "customer_no": customer_account.customer_no,
            "email": customer_account.email,
            "channel": "email",
        },
    )
    assert "Konto z tym adresem e-mail już istnieje." in taken.get_data(as_text=True)
    bad = post_form(
        client, "/staff/accounts/new", {"customer_no": "", "email": "x", "channel": "pigeon"}
    )
    page = bad.get_data(as_text=True)
    assert "Podaj numer klienta." in page and "Podaj poprawny adres e-mail." in page


def test_admins_read_the_audit_log(
    client: FlaskClient, make_staff: Callable[..., StaffUser]
) -> None:
    admin = make_staff(["admin"])
    staff_login(client, admin.email, admin.password)
    assert "Dziennik zdarzeń" in client.get("/staff/audit").get_data(as_text=True)


def test_staff_add_command_prints_a_password_once(
    migrated_db: str, db: Db, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("METERFLOW_DATABASE_URL", migrated_db)
    email = "Kierownik-Cli@Wodociagi.example"
    assert main(["staff", "add", email, "--role", "admin", "--role", "billing"]) == 0
    password = capsys.readouterr().out.strip()
    row = db.execute(
        "SELECT roles, must_change_password, password_hash FROM staff_users WHERE email = %s",
        (email.lower(),),
    ).fetchone()
    assert row is not None and row["roles"] == ["admin", "billing"]
    assert row["must_change_password"] and password not in row["password_hash"]
    assert len(password) == 16
    assert main(["staff", "add", email, "--role", "admin"]) == 1
    assert "already exists" in capsys.readouterr().err
