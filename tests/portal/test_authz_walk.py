"""Authorisation walk over ``app.url_map``: every customer route called with another
customer's ids, every staff route called with a customer session: all refused.

A route added later without a known way to fill its arguments fails this test, so the walk
keeps covering the whole app.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from tests.portal.customer_rows import Db, invoice, remote_readings, supply
from tests.portal.helpers import Account, csrf, login

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 16
# Routes a visitor may reach without an account (login, registration, public information).
PUBLIC = {
    "static",
    "customer.static",
    "customer.information",
    "customer.form_pdf",
    "customer.terms",
    "customer.privacy",
    "i18n.switch_language",
    "staff.login",
    "healthz",
    # E-mailed links: the token itself is the credential; a wrong one gets a "link invalid"
    # page (tested with P1's auth tests), never anybody's data.
    "auth.verify",
    "auth.reset",
    "auth.confirm_email",
}
# Routes of one's own account that take no object id (the victim's data cannot be named).
OWN = {"auth", "customer"}


def _victim_objects(db: Db, victim: Account) -> dict[str, Any]:
    s = supply(db, victim.customer_id)
    remote_readings(
        db, s.meter_id, datetime.now(UTC) - timedelta(days=2), 2, timedelta(days=1), Decimal(1)
    )
    invoice_id = invoice(db, s)
    complaint = db.execute(
        "INSERT INTO complaints (customer_id, kind, subject, description, due_on)"
        " VALUES (%s, 'other', 'Cudza sprawa', 'Tajne', current_date + 14) RETURNING complaint_id",
        (victim.customer_id,),
    ).fetchone()
    upload = db.execute(
        "INSERT INTO portal_uploads (customer_id, filename, content_type, size_bytes, sha256,"
        " content) VALUES (%s, 'cudze.png', 'image/png', %s, sha256(%s), %s)"
        " RETURNING upload_id",
        (victim.customer_id, len(PNG), PNG, PNG),
    ).fetchone()
    assert complaint is not None and upload is not None
    db.execute(
        "INSERT INTO complaint_attachments (complaint_id, upload_id) VALUES (%s, %s)",
        (complaint["complaint_id"], upload["upload_id"]),
    )
    credit = db.execute(
        "WITH s AS (INSERT INTO bank_statements (format, account, reference)"
        " VALUES ('csv', 'PL61109010140000071219812874', gen_random_uuid()::text)"
        " RETURNING statement_id)"
        " INSERT INTO statement_items (statement_id, dedup_key, booked_on, amount_gr, title,"
        " state) SELECT statement_id, gen_random_uuid()::text, current_date, 4200,"
        " 'Cudza sprawa', 'unmatched' FROM s RETURNING item_id"
    ).fetchone()
    assert credit is not None
    return {
        "meter_id": s.meter_id,
        "invoice_id": invoice_id,
        "complaint_id": complaint["complaint_id"],
        "upload_id": upload["upload_id"],
        "customer_id": victim.customer_id,
        "account_id": victim.account_id,
        "held_id": 1,
        "item_id": credit["item_id"],
        "tariff_id": s.tariff_id,
        "label": "2026-01",
        "slug": "x",
        "code": "en",
        "token": "x" * 43,
        "filename": "portal.css",
        "session_id": "x" * 32,
    }


def _refused(status: int, location: str) -> bool:
    return status in (400, 403, 404, 405) or (status in (302, 303) and "login" in location)


def test_customer_cannot_reach_another_customers_objects_or_staff_pages(
    app: Flask,
    client: FlaskClient,
    db: Db,
    make_customer_account: Callable[..., Account],
) -> None:
    victim = make_customer_account()
    values = _victim_objects(db, victim)
    attacker = make_customer_account()
    supply(db, attacker.customer_id)
    login(client, attacker.email, attacker.password)
    token = csrf(client, "/ebok/readings")
    leaks: list[str] = []
    walked = 0
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC:
            continue
        blueprint = rule.endpoint.split(".", 1)[0]
        if not rule.arguments and blueprint in OWN:
            continue  # the attacker's own pages: nothing of the victim's is named
        missing = rule.arguments - values.keys()
        assert not missing, f"{rule.rule}: teach the walk the argument(s) {missing}"
        url = rule.build(values, append_unknown=False)
        assert url is not None
        path = url[1]
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            response = client.open(path, method=method, data={"csrf_token": token})
            walked += 1
            body = response.get_data()
            location = response.headers.get("Location", "")
            if not _refused(response.status_code, location) or b"Cudza sprawa" in body:
                leaks.append(f"{method} {path} -> {response.status_code} {location}")
    assert walked > 30
    assert leaks == [], "\n".join(leaks)
    # The walk must not have changed the victim's data either.
    row = db.execute(
        "SELECT count(*) AS n FROM customer_readings WHERE meter_id = %s", (values["meter_id"],)
    ).fetchone()
    assert row == {"n": 0}
    assert db.execute(
        "SELECT blocked_at FROM portal_accounts WHERE account_id = %s", (victim.account_id,)
    ).fetchone() == {"blocked_at": None}
    assert db.execute(
        "SELECT state FROM statement_items WHERE item_id = %s", (values["item_id"],)
    ).fetchone() == {"state": "unmatched"}


def test_own_objects_are_reachable_so_the_walk_is_meaningful(
    client: FlaskClient, db: Db, make_customer_account: Callable[..., Account]
) -> None:
    owner = make_customer_account()
    values = _victim_objects(db, owner)
    login(client, owner.email, owner.password)
    for path in (
        f"/ebok/meters/{values['meter_id']}",
        f"/ebok/invoices/{values['invoice_id']}",
        f"/ebok/invoices/{values['invoice_id']}.pdf",
        f"/ebok/complaints/{values['complaint_id']}",
        f"/ebok/complaints/{values['complaint_id']}/files/{values['upload_id']}",
    ):
        assert client.get(path).status_code == 200, path
