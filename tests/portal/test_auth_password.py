"""Forgotten password, password change, e-mail change and deleting the account."""

from __future__ import annotations

import uuid

import psycopg
from flask import Flask
from flask.testing import FlaskClient

from tests.portal.helpers import Account, home, login, outbox_payload, path_of, post_form

Db = psycopg.Connection[psycopg.rows.DictRow]
NEW_PASSWORD = "Zawor-Kulowy-88"


def test_forgot_answers_the_same_for_known_and_unknown_addresses(
    client: FlaskClient, db: Db, customer_account: Account
) -> None:
    known = post_form(client, "/password/forgot", {"email": customer_account.email})
    unknown = post_form(client, "/password/forgot", {"email": "nobody-x@example.com"})
    assert known.status_code == unknown.status_code == 302
    assert known.headers["Location"] == unknown.headers["Location"] == "/password/sent"
    assert outbox_payload(db, "portal_password_reset", customer_account.account_id)["to"] == (
        customer_account.email
    )
    bad = post_form(client, "/password/forgot", {"email": ""})
    assert "Podaj adres e-mail." in bad.get_data(as_text=True)


def test_reset_link_sets_the_password_once_and_ends_sessions(
    app: Flask, db: Db, customer_account: Account
) -> None:
    other = app.test_client()
    login(other, customer_account.email, customer_account.password)
    client = app.test_client()
    post_form(client, "/password/forgot", {"email": customer_account.email})
    url = path_of(outbox_payload(db, "portal_password_reset", customer_account.account_id)["url"])
    weak = post_form(client, url, {"password": "abc", "password_again": "abc"})
    assert "Hasło jest za krótkie." in weak.get_data(as_text=True)
    done = post_form(client, url, {"password": NEW_PASSWORD, "password_again": NEW_PASSWORD})
    assert done.headers["Location"] == "/login"
    assert other.get("/account").status_code == 302
    again = post_form(client, url, {"password": NEW_PASSWORD, "password_again": NEW_PASSWORD})
    assert again.status_code == 400
    assert login(client, customer_account.email, NEW_PASSWORD).headers["Location"] == home(client)


def test_a_new_reset_link_cancels_the_previous_one(
    client: FlaskClient, db: Db, customer_account: Account
) -> None:
    post_form(client, "/password/forgot", {"email": customer_account.email})
    first = path_of(outbox_payload(db, "portal_password_reset", customer_account.account_id)["url"])
    post_form(client, "/password/forgot", {"email": customer_account.email})
    response = post_form(client, first, {"password": NEW_PASSWORD, "password_again": NEW_PASSWORD})
    assert response.status_code == 400


def test_password_change_keeps_this_session_and_ends_the_others(
    app: Flask, customer_account: Account
) -> None:
    here, elsewhere = app.test_client(), app.test_client()
    login(here, customer_account.email, customer_account.password)
    login(elsewhere, customer_account.email, customer_account.password)
    response = post_form(
        here,
        "/account/password",
        {
            "current_password": customer_account.password,
            "password": NEW_PASSWORD,
            "password_again": NEW_PASSWORD,
        },
    )
    assert response.headers["Location"] == "/account"
    assert here.get("/account").status_code == 200
    assert elsewhere.get("/account").status_code == 302


def test_password_change_form_reports_bad_input(
    client: FlaskClient, customer_account: Account
) -> None:
    login(client, customer_account.email, customer_account.password)
    cases = [
        (
            {
                "current_password": "Wrong-1234!",
                "password": NEW_PASSWORD,
                "password_again": NEW_PASSWORD,
            },
            "Obecne hasło jest nieprawidłowe.",
        ),
        (
            {
                "current_password": customer_account.password,
                "password": NEW_PASSWORD,
                "password_again": "Inne-Haslo-77",
            },
            "Hasła się różnią.",
        ),
        (
            {
                "current_password": customer_account.password,
                "password": "qwerty123",
                "password_again": "qwerty123",
            },
            "zbyt popularne",
        ),
        (
            {
                "current_password": customer_account.password,
                "password": customer_account.password,
                "password_again": customer_account.password,
            },
            "Wybierz hasło inne niż obecne.",
        ),
        ({"password": NEW_PASSWORD, "password_again": NEW_PASSWORD}, "Podaj obecne hasło."),
    ]
    for data, message in cases:
        page = post_form(client, "/account/password", data).get_data(as_text=True)
        assert message in page, message


def test_email_change_needs_the_password_and_the_new_address(
    client: FlaskClient, db: Db, customer_account: Account
) -> None:
    login(client, customer_account.email, customer_account.password)
    new = f"new-{uuid.uuid4().hex[:8]}@example.com"
    wrong = post_form(client, "/account/email", {"current_password": "Nope-1234!", "email": new})
    assert "Obecne hasło jest nieprawidłowe." in wrong.get_data(as_text=True)
    same = post_form(
        client,
        "/account/email",
        {"current_password": customer_account.password, "email": customer_account.email},
    )
    assert "To już jest Twój adres e-mail." in same.get_data(as_text=True)
    bad = post_form(
        client, "/account/email", {"current_password": customer_account.password, "email": "x@"}
    )
    assert "Podaj poprawny adres e-mail." in bad.get_data(as_text=True)
    sent = post_form(
        client, "/account/email", {"current_password": customer_account.password, "email": new}
    )
    assert sent.headers["Location"] == "/account"
    payload = outbox_payload(db, "portal_new_email", customer_account.account_id)
    assert payload["to"] == new
    assert post_form(client, path_of(payload["url"]), {}).status_code == 302
    row = db.execute(
        "SELECT email FROM portal_accounts WHERE account_id = %s", (customer_account.account_id,)
    ).fetchone()
    assert row is not None and row["email"] == new


def test_email_change_to_a_taken_address_reveals_nothing(
    client: FlaskClient, db: Db, customer_account: Account, make_customer_account: object
) -> None:
    other: Account = make_customer_account()  # type: ignore[operator]
    login(client, customer_account.email, customer_account.password)
    sent = post_form(
        client,
        "/account/email",
        {"current_password": customer_account.password, "email": other.email},
    )
    assert sent.headers["Location"] == "/account"
    payload = outbox_payload(db, "portal_account_exists", customer_account.account_id)
    assert payload["to"] == other.email


def test_deleting_the_account_keeps_the_customer_record(
    client: FlaskClient, db: Db, customer_account: Account
) -> None:
    login(client, customer_account.email, customer_account.password)
    refused = post_form(client, "/account/delete", {"current_password": customer_account.password})
    assert "Potwierdź usunięcie." in refused.get_data(as_text=True)
    wrong = post_form(client, "/account/delete", {"current_password": "Nope-123!", "confirm": "y"})
    assert "Obecne hasło jest nieprawidłowe." in wrong.get_data(as_text=True)
    done = post_form(
        client, "/account/delete", {"current_password": customer_account.password, "confirm": "y"}
    )
    assert done.headers["Location"] == "/login"
    assert (
        db.execute(
            "SELECT 1 FROM portal_accounts WHERE account_id = %s", (customer_account.account_id,)
        ).fetchone()
        is None
    )
    assert (
        db.execute(
            "SELECT 1 FROM portal_sessions WHERE account_id = %s", (customer_account.account_id,)
        ).fetchone()
        is None
    )
    assert (
        db.execute(
            "SELECT 1 FROM customers WHERE customer_id = %s", (customer_account.customer_id,)
        ).fetchone()
        is not None
    )
    assert client.get("/account").status_code == 302
