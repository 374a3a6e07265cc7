"""Login, logout and sessions of customer accounts."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
from flask import Flask
from flask.testing import FlaskClient

from tests.portal.helpers import Account, csrf, home, login, post_form, session_cookie


def test_login_page_is_polish_by_default(client: FlaskClient) -> None:
    page = client.get("/login").get_data(as_text=True)
    assert "Logowanie do e-Biura" in page
    assert 'lang="pl"' in page


def test_login_with_valid_password_reaches_the_account(
    client: FlaskClient, customer_account: Account
) -> None:
    response = login(client, customer_account.email, customer_account.password)
    assert response.status_code == 302
    assert response.headers["Location"] == home(client)
    assert customer_account.email in client.get("/account").get_data(as_text=True)


def test_login_issues_a_fresh_session_id(client: FlaskClient, customer_account: Account) -> None:
    csrf(client, "/login")
    before = session_cookie(client)
    assert before is not None
    login(client, customer_account.email, customer_account.password)
    after = session_cookie(client)
    assert after is not None and after != before
    stale = client.application.test_client()
    stale.set_cookie("mf_session", before)
    assert stale.get("/account").status_code == 302


def test_wrong_password_and_unknown_email_get_the_same_message(
    client: FlaskClient, customer_account: Account
) -> None:
    wrong = login(client, customer_account.email, "Wrong-Pass-123!").get_data(as_text=True)
    unknown = login(client, "nobody-here@example.com", "Wrong-Pass-123!").get_data(as_text=True)
    message = "Nieprawidłowy adres e-mail lub hasło."
    assert message in wrong and message in unknown


def test_login_form_reports_bad_fields(client: FlaskClient) -> None:
    response = post_form(client, "/login", {"email": "not-an-address", "password": ""})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Podaj poprawny adres e-mail." in page
    assert "Podaj hasło." in page


def test_pages_need_login(client: FlaskClient) -> None:
    response = client.get("/account")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=/account")


def test_login_follows_only_local_next(client: FlaskClient, customer_account: Account) -> None:
    token = csrf(client, "/login")
    response = client.post(
        "/login?next=//evil.example/x",
        data={
            "csrf_token": token,
            "email": customer_account.email,
            "password": customer_account.password,
        },
    )
    assert response.headers["Location"] == home(client)


def test_logout_ends_every_session_of_the_account(app: Flask, customer_account: Account) -> None:
    phone, laptop = app.test_client(), app.test_client()
    login(phone, customer_account.email, customer_account.password)
    login(laptop, customer_account.email, customer_account.password)
    assert laptop.get("/account").status_code == 200
    post_form(phone, "/logout", {}, form_page="/account")
    assert phone.get("/account").status_code == 302
    assert laptop.get("/account").status_code == 302


def test_first_login_of_a_staff_made_account_forces_a_password_change(
    client: FlaskClient, make_customer_account: Callable[..., Account]
) -> None:
    account = make_customer_account(must_change=True)
    response = login(client, account.email, account.password)
    assert response.headers["Location"] == "/account/password"
    assert client.get("/account").headers["Location"] == "/account/password"
    page = client.get("/account/password").get_data(as_text=True)
    assert "Zanim przejdziesz dalej, ustaw własne hasło." in page
    response = post_form(
        client,
        "/account/password",
        {
            "current_password": account.password,
            "password": "Nowe-Haslo-Kranu-7",
            "password_again": "Nowe-Haslo-Kranu-7",
        },
    )
    assert response.headers["Location"] == "/account"
    assert client.get("/account").status_code == 200


def test_blocked_account_cannot_log_in(
    client: FlaskClient, customer_account: Account, db: psycopg.Connection[psycopg.rows.DictRow]
) -> None:
    db.execute(
        "UPDATE portal_accounts SET blocked_at = now(), blocked_reason = 'abuse'"
        " WHERE account_id = %s",
        (customer_account.account_id,),
    )
    page = login(client, customer_account.email, customer_account.password).get_data(as_text=True)
    assert "To konto jest zablokowane." in page
    assert client.get("/account").status_code == 302


def test_unverified_and_pending_accounts_are_told_why(
    client: FlaskClient, customer_account: Account, db: psycopg.Connection[psycopg.rows.DictRow]
) -> None:
    db.execute(
        "UPDATE portal_accounts SET status = 'pending' WHERE account_id = %s",
        (customer_account.account_id,),
    )
    page = login(client, customer_account.email, customer_account.password).get_data(as_text=True)
    assert "czeka na zatwierdzenie" in page
    db.execute(
        "UPDATE portal_accounts SET status = 'unverified' WHERE account_id = %s",
        (customer_account.account_id,),
    )
    page = login(client, customer_account.email, customer_account.password).get_data(as_text=True)
    assert "Najpierw potwierdź adres e-mail" in page
    assert client.get("/account").status_code == 302


def test_login_sweeps_expired_sessions(
    client: FlaskClient, customer_account: Account, db: psycopg.Connection[psycopg.rows.DictRow]
) -> None:
    db.execute(
        "INSERT INTO portal_sessions (session_hash, account_id, data, expires_at)"
        " VALUES (sha256('expired-test'::bytea), %s, '{}', now() - interval '1 minute')",
        (customer_account.account_id,),
    )
    login(client, customer_account.email, customer_account.password)
    gone = db.execute(
        "SELECT 1 FROM portal_sessions WHERE session_hash = sha256('expired-test'::bytea)"
    ).fetchone()
    assert gone is None
