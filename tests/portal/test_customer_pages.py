"""Customer pages: dashboard, readings, consumption, invoices, documents, profile."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from flask.testing import FlaskClient

from tests.portal.customer_rows import Db, Supply, invoice, remote_readings, supply
from tests.portal.helpers import Account, csrf, login, post_form


@pytest.fixture
def home(
    client: FlaskClient, db: Db, make_customer_account: Callable[..., Account]
) -> tuple[FlaskClient, Account, Supply]:
    """A logged-in customer with a meter read hourly for 40 days and one invoice."""
    account = make_customer_account()
    s = supply(db, account.customer_id)
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=40)
    remote_readings(db, s.meter_id, start, 40 * 24, timedelta(hours=1), Decimal("0.010"))
    invoice(db, s, gross_gr=12_345)
    assert login(client, account.email, account.password).status_code == 302
    return client, account, s


def test_login_lands_on_the_dashboard(
    client: FlaskClient, make_customer_account: Callable[..., Account]
) -> None:
    account = make_customer_account()
    response = login(client, account.email, account.password)
    assert response.headers["Location"].endswith("/ebok/")


def test_dashboard_shows_balance_last_reading_and_due_date(
    home: tuple[FlaskClient, Account, Supply],
) -> None:
    client, _, s = home
    page = client.get("/ebok/").get_data(as_text=True)
    assert "123,45\u00a0zł" in page
    assert s.meter_id in page
    assert "zdalny" in page or "remote" in page


def test_money_due_offers_online_payment_on_dashboard_and_invoices(
    home: tuple[FlaskClient, Account, Supply],
) -> None:
    client, _, _ = home
    for page in ("/ebok/", "/ebok/invoices"):
        assert 'href="/payments/pay"' in client.get(page).get_data(as_text=True), page


def test_dashboard_shows_only_announcements_for_the_customer_street(
    home: tuple[FlaskClient, Account, Supply], db: Db
) -> None:
    client, _, s = home
    street = s.address.rsplit(" ", 1)[0]
    for title, where in (("Awaria u nas", street), ("Awaria gdzie indziej", "ul. Inna")):
        row = db.execute(
            "INSERT INTO announcements (kind, title, body, starts_at, ends_at)"
            " VALUES ('outage', %s, 'Brak wody', now(), now() + interval '1 day')"
            " RETURNING announcement_id",
            (title,),
        ).fetchone()
        assert row is not None
        db.execute(
            "INSERT INTO announcement_streets (announcement_id, street) VALUES (%s, %s)",
            (row["announcement_id"], where),
        )
    page = client.get("/ebok/").get_data(as_text=True)
    assert "Awaria u nas" in page
    assert "Awaria gdzie indziej" not in page


def test_anonymous_visitor_is_sent_to_login(client: FlaskClient) -> None:
    response = client.get("/ebok/invoices")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_meter_history_lists_daily_readings_with_use(
    home: tuple[FlaskClient, Account, Supply],
) -> None:
    client, _, s = home
    page = client.get(f"/ebok/meters/{s.meter_id}").get_data(as_text=True)
    assert "0,240" in page  # 24 hours of 10 litres, with a Polish decimal comma


def test_consumption_page_draws_charts_and_offers_csv(
    home: tuple[FlaskClient, Account, Supply],
) -> None:
    client, _, s = home
    page = client.get("/ebok/consumption").get_data(as_text=True)
    assert page.count("<svg") == 2
    assert 'role="alert"' in page  # hourly use never stops at night: the leak warning
    csv = client.get(f"/ebok/consumption.csv?meter={s.meter_id}")
    assert csv.headers["Content-Disposition"].startswith("attachment")
    lines = csv.get_data(as_text=True).splitlines()
    assert lines[0].lstrip("\ufeff") == "meter_id;day;used_m3;reading_m3"
    assert any(line.endswith(";0.240;" + line.rsplit(";", 1)[1]) for line in lines[2:])


def test_invoice_list_detail_and_pdf(home: tuple[FlaskClient, Account, Supply], db: Db) -> None:
    client, account, _ = home
    row = db.execute(
        "SELECT invoice_id, invoice_no FROM invoices WHERE customer_id = %s",
        (account.customer_id,),
    ).fetchone()
    assert row is not None
    assert row["invoice_no"] in client.get("/ebok/invoices").get_data(as_text=True)
    assert "Dostawa wody" in client.get(f"/ebok/invoices/{row['invoice_id']}").get_data(
        as_text=True
    )
    pdf = client.get(f"/ebok/invoices/{row['invoice_id']}.pdf")
    assert pdf.status_code == 200
    assert pdf.data.startswith(b"%PDF-")
    assert pdf.headers["Content-Disposition"].startswith("attachment")


def test_payments_demands_and_interest_notes_are_listed(
    home: tuple[FlaskClient, Account, Supply], db: Db
) -> None:
    client, account, _ = home
    db.execute(
        "INSERT INTO ledger_entries (customer_id, kind, amount_gr, booked_on, reference)"
        " VALUES (%s, 'payment', -5000, current_date, %s)",
        (account.customer_id, f"P24-{account.customer_id}"),
    )
    db.execute(
        "INSERT INTO interest_notes (customer_id, month, issued_on, amount_gr)"
        " VALUES (%s, '2026-01-01', '2026-02-03', 321)",
        (account.customer_id,),
    )
    page = client.get("/ebok/invoices").get_data(as_text=True)
    assert f"P24-{account.customer_id}" in page
    assert "3,21\u00a0zł" in page


def test_information_pages_are_public_and_forms_are_pdfs(client: FlaskClient, db: Db) -> None:
    db.execute("INSERT INTO water_points (name, address) VALUES ('Beczkowóz', 'pl. Wolności 1')")
    page = client.get("/ebok/info").get_data(as_text=True)
    assert "Beczkowóz" in page
    assert "wniosek-zawarcie-umowy" in page
    pdf = client.get("/ebok/info/forms/wniosek-zawarcie-umowy.pdf")
    assert pdf.data.startswith(b"%PDF-")
    assert client.get("/ebok/info/forms/nie-ma.pdf").status_code == 404
    assert "Regulamin" in client.get("/ebok/info/terms").get_data(as_text=True)
    assert "RODO" in client.get("/ebok/info/privacy").get_data(as_text=True)


def test_contact_data_and_notice_preferences_are_saved(
    home: tuple[FlaskClient, Account, Supply], db: Db
) -> None:
    client, account, _ = home
    response = post_form(
        client,
        "/ebok/profile/contact",
        {"email": "Nowy@Example.com", "phone": "+48 600 700 800"},
        form_page="/ebok/profile",
    )
    assert response.status_code == 302
    response = post_form(
        client,
        "/ebok/profile/notices",
        {"invoice_issued-by_sms": "y", "announcement-by_email": "y"},
        form_page="/ebok/profile",
    )
    assert response.status_code == 302
    row = db.execute(
        "SELECT email, phone FROM customers WHERE customer_id = %s", (account.customer_id,)
    ).fetchone()
    assert row == {"email": "nowy@example.com", "phone": "+48 600 700 800"}
    prefs = db.execute(
        "SELECT kind, by_email, by_sms FROM notification_preferences WHERE customer_id = %s"
        " ORDER BY kind",
        (account.customer_id,),
    ).fetchall()
    assert {p["kind"]: (p["by_email"], p["by_sms"]) for p in prefs}["invoice_issued"] == (
        False,
        True,
    )


def test_bad_contact_data_is_refused_with_reasons(
    home: tuple[FlaskClient, Account, Supply],
) -> None:
    client, _, _ = home
    response = post_form(
        client,
        "/ebok/profile/contact",
        {"email": "not-an-address", "phone": "call me"},
        form_page="/ebok/profile",
    )
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert page.count('class="error"') == 2


def test_forms_without_csrf_token_are_refused(home: tuple[FlaskClient, Account, Supply]) -> None:
    client, _, _ = home
    for path in ("/ebok/profile/contact", "/ebok/profile/notices", "/ebok/readings"):
        assert client.post(path, data={"email": "a@b.pl"}).status_code == 400
    assert csrf(client, "/ebok/readings")


def test_dashboard_finds_a_remote_reading_older_than_the_recent_weeks(
    client: FlaskClient, db: Db, make_customer_account: Callable[..., Account]
) -> None:
    account = make_customer_account()
    s = supply(db, account.customer_id)
    start = datetime.now(UTC) - timedelta(days=90)
    remote_readings(db, s.meter_id, start, 3, timedelta(days=1), Decimal("1.5"), Decimal("321"))
    assert login(client, account.email, account.password).status_code == 302
    page = client.get("/ebok/").get_data(as_text=True)
    assert "324,000" in page
