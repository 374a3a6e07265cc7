"""Security that must hold: argon2id, CSRF on every form, cookie flags, headers, no e-mail
enumeration, safe redirects, uploads never served inline, i18n catalogue, secret key."""

from __future__ import annotations

import io
from pathlib import Path

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.datastructures import FileStorage

from meterflow.settings import Settings
from portal import create_app
from portal.db import close_pool, pool_of
from portal.i18n import compile_catalogues
from portal.passwords import Hasher, PasswordPolicy, is_common
from portal.security import safe_next
from portal.uploads import UploadRejected, save_upload, send_upload
from tests.portal.helpers import Account, csrf, login, post_form

Db = psycopg.Connection[psycopg.rows.DictRow]


def test_passwords_are_stored_as_argon2id(
    client: FlaskClient, db: Db, customer_account: Account
) -> None:
    post_form(client, "/password/forgot", {"email": customer_account.email})
    row = db.execute(
        "SELECT password_hash FROM portal_accounts WHERE account_id = %s",
        (customer_account.account_id,),
    ).fetchone()
    assert row is not None and row["password_hash"].startswith("$argon2id$")
    assert Hasher().hash("x").startswith("$argon2id$v=19$m=65536,t=3,p=4$")


def test_every_post_route_refuses_a_missing_csrf_token(app: Flask, client: FlaskClient) -> None:
    csrf_ext = app.extensions["csrf"]
    exempt = set(csrf_ext._exempt_views)
    exempt_bps = {bp.name for bp in csrf_ext._exempt_blueprints}
    posts = [
        r
        for r in app.url_map.iter_rules()
        if "POST" in (r.methods or set())
        and f"{app.view_functions[r.endpoint].__module__}.{r.endpoint.rsplit('.', 1)[-1]}"
        not in exempt
        and r.endpoint.split(".")[0] not in exempt_bps
    ]
    assert len(posts) >= 15
    for rule in posts:
        url = rule.rule
        for arg in rule.arguments:
            url = url.replace(f"<int:{arg}>", "1").replace(f"<{arg}>", "x")
        response = client.post(url, data={"email": "a@example.com"})
        assert response.status_code == 400, url
        assert "Formularz nie został przyjęty" in response.get_data(as_text=True)


def test_session_cookie_is_httponly_lax_and_secure_when_configured(
    portal_settings: Settings, client: FlaskClient
) -> None:
    client.get("/login")
    header = client.get("/login").headers.get("Set-Cookie") or ""
    cookies = [c for c in [header] if c]
    client2 = client.application.test_client()
    first = client2.get("/login").headers.getlist("Set-Cookie")
    assert first, "the login page's CSRF token needs a session cookie"
    for cookie in first + cookies:
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    secure_app = create_app(
        portal_settings.replace(portal_cookie_secure=True), PASSWORD_HASH_PROFILE="fast"
    )
    try:
        cookie = secure_app.test_client().get("/login").headers["Set-Cookie"]
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    finally:
        close_pool(secure_app)


def test_security_headers_are_on_every_page(client: FlaskClient) -> None:
    for path in ("/login", "/register", "/nowhere", "/staff/login"):
        headers = client.get(path).headers
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert "script-src 'self'" in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "same-origin"
        assert headers["X-Frame-Options"] == "DENY"


def test_logged_in_pages_are_not_cached(client: FlaskClient, customer_account: Account) -> None:
    login(client, customer_account.email, customer_account.password)
    assert client.get("/account").headers["Cache-Control"] == "no-store"


def test_unknown_email_spends_a_password_check_too(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    hasher: Hasher = app.extensions["meterflow.hasher"]
    checked: list[str | None] = []
    real = hasher.verify

    def counting(stored: str | None, password: str) -> bool:
        checked.append(stored)
        return real(stored, password)

    monkeypatch.setattr(hasher, "verify", counting)
    login(client, "nobody-at-all@example.com", "Whatever-123!")
    assert checked == [None]


def test_registration_and_reset_answers_do_not_depend_on_the_email(
    client: FlaskClient, customer_account: Account
) -> None:
    data = {
        "password": "Licznik-Wody-42",
        "password_again": "Licznik-Wody-42",
        "customer_no": "K-1",
        "invoice_no": "FV/1/2026",
        "accept_terms": "y",
        "accept_privacy": "y",
    }
    known = post_form(client, "/register", {**data, "email": customer_account.email})
    unknown = post_form(client, "/register", {**data, "email": "fresh-one@example.com"})
    assert known.status_code == unknown.status_code
    assert known.headers["Location"] == unknown.headers["Location"]


def test_password_policy_and_common_passwords() -> None:
    policy = PasswordPolicy()
    assert policy.problems("Kran-Wodny-2026!") == []
    assert "too_long" in policy.problems("Aa1!" + "x" * 30)
    assert set(policy.problems("abcdefgh")) >= {"digit", "upper", "special"}
    assert "email" in policy.problems("Jankowalski-9!", "jankowalski@example.com")
    for common in ("Password1!", "Zaq12wsx!", "Qwerty123!", "Haslo123!"):
        assert is_common(common), common
    assert not is_common("Tr0mbone-Kettle")
    relaxed = PasswordPolicy.from_settings(
        Settings(portal_password_min=12, portal_password_classes="digit")
    )
    assert relaxed.problems("Kran-Wodny-2!") == []
    assert "too_short" in relaxed.problems("kran-wodny1")


@pytest.mark.parametrize(
    ("target", "allowed"),
    [
        ("/account", True),
        ("/a?b=1", True),
        ("//evil.example", False),
        ("https://evil.example", False),
        ("/\\evil.example", False),
        ("", False),
        (None, False),
        ("account", False),
    ],
)
def test_only_local_paths_are_followed(target: str | None, allowed: bool) -> None:
    assert (safe_next(target) is not None) is allowed


def test_language_switch_to_english_and_back(client: FlaskClient) -> None:
    token = csrf(client, "/login")
    response = client.post("/lang/en", data={"csrf_token": token, "next": "/register"})
    assert response.headers["Location"] == "/register"
    page = client.get("/register").get_data(as_text=True)
    assert "Create an e-Office account" in page and 'lang="en"' in page
    client.post("/lang/pl", data={"csrf_token": token, "next": "https://evil.example"})
    assert "Logowanie do e-Biura" in client.get("/login").get_data(as_text=True)


def test_polish_catalogue_compiles_and_translates_everything(tmp_path: Path) -> None:
    written = compile_catalogues(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in written] == ["pl/LC_MESSAGES/messages.mo"]
    from babel.messages.pofile import read_po

    source = Path(__file__).parents[2] / "portal/translations/pl/LC_MESSAGES/messages.po"
    with source.open("rb") as po:
        catalog = read_po(po)
    untranslated = [m.id for m in catalog if m.id and not m.string]
    assert untranslated == []
    assert compile_catalogues(tmp_path) == []


def test_a_generated_secret_key_is_kept_in_the_data_dir(
    portal_settings: Settings, tmp_path: Path
) -> None:
    settings = portal_settings.replace(secret_key=None, data_dir=tmp_path)
    first = create_app(settings, PASSWORD_HASH_PROFILE="fast")
    second = create_app(settings, PASSWORD_HASH_PROFILE="fast")
    try:
        assert first.secret_key == second.secret_key
        assert len(str(first.secret_key)) >= 40
        assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
    finally:
        close_pool(first)
        close_pool(second)


def test_uploads_are_checked_and_served_only_as_attachments(
    app: Flask, customer_account: Account, make_customer_account: object
) -> None:
    other: Account = make_customer_account()  # type: ignore[operator]
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    with app.test_request_context(), pool_of(app).connection() as conn:
        upload_id = save_upload(
            conn, customer_account.customer_id, FileStorage(io.BytesIO(png), "licznik zdjęcie.png")
        )
        for data, name in [
            (b"<html><script>", "a.png"),
            (png, "a.html"),
            (b"", "a.pdf"),
            (b"%PDF-" + b"x" * 2000, "big.pdf"),
        ]:
            with pytest.raises(UploadRejected):
                save_upload(
                    conn,
                    customer_account.customer_id,
                    FileStorage(io.BytesIO(data), name),
                    max_bytes=1000,
                )
        response = send_upload(conn, upload_id, customer_account.customer_id)
        assert response.headers["Content-Disposition"] == (
            'attachment; filename="licznik_zdjecie.png"'
        )
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.mimetype == "image/png" and response.get_data() == png
        from werkzeug.exceptions import NotFound

        with pytest.raises(NotFound):
            send_upload(conn, upload_id, other.customer_id)


def test_healthz_answers_ok_through_the_app_middleware(client: FlaskClient) -> None:
    answer = client.get("/healthz")
    assert answer.status_code == 200 and answer.get_data(as_text=True) == "ok"
    assert answer.mimetype == "text/plain"
    assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]
