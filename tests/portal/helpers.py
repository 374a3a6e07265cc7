"""Helpers of the portal tests: people made by the fixtures, CSRF tokens, login."""

from __future__ import annotations

import dataclasses
import re

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

_TOKEN = re.compile(
    r'name="csrf_token" type="hidden" value="([^"]+)"|'
    r'name="csrf_token" value="([^"]+)"'
)


@dataclasses.dataclass(frozen=True)
class Account:
    """A customer's e-office account made by a fixture."""

    email: str
    password: str
    account_id: int
    customer_id: int
    customer_no: str


@dataclasses.dataclass(frozen=True)
class StaffUser:
    """A staff user made by a fixture."""

    email: str
    password: str
    staff_id: int
    roles: tuple[str, ...]


def csrf(client: FlaskClient, path: str) -> str:
    """Return the CSRF token of the form on the page at ``path``."""
    page = client.get(path).get_data(as_text=True)
    match = _TOKEN.search(page)
    assert match, f"no CSRF token on {path}"
    return match.group(1) or match.group(2)


def post_form(
    client: FlaskClient,
    path: str,
    data: dict[str, str],
    form_page: str | None = None,
    **kwargs: object,
) -> TestResponse:
    """Post ``data`` with the CSRF token of the form at ``form_page`` (default ``path``)."""
    token = csrf(client, form_page or path)
    return client.post(path, data={"csrf_token": token, **data}, **kwargs)


def login(client: FlaskClient, email: str, password: str) -> TestResponse:
    """Log a customer in through the login form."""
    return post_form(client, "/login", {"email": email, "password": password})


def staff_login(client: FlaskClient, email: str, password: str) -> TestResponse:
    """Log a staff user in through the staff login form."""
    return post_form(client, "/staff/login", {"email": email, "password": password})


def outbox_payload(db: object, kind: str, account_id: int) -> dict[str, object]:
    """Return the payload of the newest ``kind`` notice queued for ``account_id``."""
    row = db.execute(  # type: ignore[attr-defined]
        "SELECT payload FROM outbox WHERE kind = %s AND account_id = %s"
        " ORDER BY outbox_id DESC LIMIT 1",
        (kind, account_id),
    ).fetchone()
    assert row is not None, f"no {kind} notice for account {account_id}"
    payload: dict[str, object] = row["payload"]
    return payload


def path_of(url: object) -> str:
    """The path of an absolute link from a notice."""
    from urllib.parse import urlsplit

    return urlsplit(str(url)).path


def session_cookie(client: FlaskClient) -> str | None:
    """The value of the session cookie the browser holds, or None."""
    cookie = client.get_cookie("mf_session")
    return None if cookie is None else cookie.value


def home(client: FlaskClient) -> str:
    """Where a customer lands after login (the customer pages' home, else /account)."""
    from portal.auth.views import home_url

    with client.application.test_request_context():
        return home_url()
