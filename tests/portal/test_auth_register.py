"""Self-registration: customer and invoice numbers, acceptances, e-mail verification,
automatic activation or the staff approval queue; no answer reveals a registered e-mail."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import psycopg
import pytest
from flask.testing import FlaskClient

from tests.portal.helpers import Account, home, login, outbox_payload, path_of, post_form

Db = psycopg.Connection[psycopg.rows.DictRow]
GOOD_PASSWORD = "Licznik-Wody-42"


def form(email: str, customer_no: str, invoice_no: str, **changes: str) -> dict[str, str]:
    data = {
        "email": email,
        "password": GOOD_PASSWORD,
        "password_again": GOOD_PASSWORD,
        "customer_no": customer_no,
        "invoice_no": invoice_no,
        "accept_terms": "y",
        "accept_privacy": "y",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v != ""}


def new_email() -> str:
    return f"reg-{uuid.uuid4().hex[:10]}@example.com"


def account_of(db: Db, email: str) -> psycopg.rows.DictRow:
    row = db.execute("SELECT * FROM portal_accounts WHERE email = %s", (email,)).fetchone()
    assert row is not None
    return row


def verify(client: FlaskClient, db: Db, account_id: int) -> None:
    url = path_of(outbox_payload(db, "portal_verify_email", account_id)["url"])
    assert client.get(url).status_code == 200
    response = post_form(client, url, {})
    assert response.status_code == 302


def test_matching_data_activate_the_account_after_verification(
    client: FlaskClient,
    db: Db,
    bare_customer: tuple[int, str],
    issued_invoice: Callable[[int], str],
) -> None:
    customer_id, customer_no = bare_customer
    invoice_no = issued_invoice(customer_id)
    email = new_email()
    response = post_form(client, "/register", form(email, customer_no, invoice_no))
    assert response.headers["Location"] == "/register/sent"
    account = account_of(db, email)
    assert account["status"] == "unverified"
    accepted = db.execute(
        "SELECT document, version FROM terms_acceptances WHERE account_id = %s ORDER BY 1",
        (account["account_id"],),
    ).fetchall()
    assert [(r["document"], r["version"]) for r in accepted] == [
        ("privacy", "2026-01"),
        ("terms", "2026-01"),
    ]
    verify(client, db, account["account_id"])
    account = account_of(db, email)
    assert account["status"] == "active" and account["customer_id"] == customer_id
    assert login(client, email, GOOD_PASSWORD).headers["Location"] == home(client)


def test_mismatching_data_wait_for_staff_approval(
    client: FlaskClient, db: Db, bare_customer: tuple[int, str]
) -> None:
    _, customer_no = bare_customer
    email = new_email()
    post_form(client, "/register", form(email, customer_no, "FV/999/2026"))
    account = account_of(db, email)
    verify(client, db, account["account_id"])
    account = account_of(db, email)
    assert account["status"] == "pending" and account["customer_id"] is None


def test_verification_link_works_once(
    client: FlaskClient, db: Db, bare_customer: tuple[int, str]
) -> None:
    email = new_email()
    post_form(client, "/register", form(email, bare_customer[1], "FV/1/2026"))
    account_id = account_of(db, email)["account_id"]
    url = path_of(outbox_payload(db, "portal_verify_email", account_id)["url"])
    assert post_form(client, url, {}).status_code == 302
    assert post_form(client, url, {}).status_code == 400


def test_forged_verification_link_is_refused(client: FlaskClient) -> None:
    response = post_form(client, "/verify/forged.token.value", {})
    assert response.status_code == 400
    assert "Link nie działa" in response.get_data(as_text=True)


def test_registering_a_known_email_looks_the_same_and_tells_the_owner(
    client: FlaskClient, db: Db, customer_account: Account
) -> None:
    response = post_form(client, "/register", form(customer_account.email, "K-x", "FV/1/2026"))
    assert response.headers["Location"] == "/register/sent"
    payload = outbox_payload(db, "portal_account_exists", customer_account.account_id)
    assert payload["to"] == customer_account.email
    count = db.execute(
        "SELECT count(*) AS n FROM portal_accounts WHERE email = %s", (customer_account.email,)
    ).fetchone()
    assert count is not None and count["n"] == 1


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"email": "bad@"}, "Podaj poprawny adres e-mail."),
        ({"password": "krotkie", "password_again": "krotkie"}, "Hasło jest za krótkie."),
        ({"password": "Haslo123!", "password_again": "Haslo123!"}, "zbyt popularne"),
        ({"password": "bezcyfry-Ab", "password_again": "bezcyfry-Ab"}, "musi zawierać cyfrę"),
        ({"password_again": "Inne-Haslo-99"}, "Hasła się różnią."),
        ({"customer_no": ""}, "Podaj numer klienta."),
        ({"invoice_no": "<script>"}, "Używaj tylko liter"),
        ({"accept_terms": ""}, "Musisz zaakceptować regulamin."),
        ({"accept_privacy": ""}, "Musisz zaakceptować politykę prywatności."),
    ],
)
def test_registration_form_reports_each_bad_field(
    client: FlaskClient, db: Db, changes: dict[str, str], message: str
) -> None:
    data = form(new_email(), "K-1", "FV/1/2026")
    data.update(changes)
    data = {k: v for k, v in data.items() if v != ""}
    email = data.get("email", "")
    response = post_form(client, "/register", data)
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    assert db.execute("SELECT 1 FROM portal_accounts WHERE email = %s", (email,)).fetchone() is None


def test_resend_sends_a_new_link_only_to_unverified_accounts(
    client: FlaskClient, db: Db, bare_customer: tuple[int, str]
) -> None:
    email = new_email()
    post_form(client, "/register", form(email, bare_customer[1], "FV/1/2026"))
    account_id = account_of(db, email)["account_id"]
    first = outbox_payload(db, "portal_verify_email", account_id)["url"]
    response = post_form(client, "/verify/resend", {"email": email})
    assert response.headers["Location"] == "/register/sent"
    second = outbox_payload(db, "portal_verify_email", account_id)["url"]
    assert second != first
    assert post_form(client, path_of(first), {}).status_code == 400
    assert post_form(client, path_of(second), {}).status_code == 302
    unknown = post_form(client, "/verify/resend", {"email": new_email()})
    assert unknown.headers["Location"] == "/register/sent"
    bad = post_form(client, "/verify/resend", {"email": "x"})
    assert "Podaj poprawny adres e-mail." in bad.get_data(as_text=True)
