"""Staff console: search, meters and masked keys, held readings, complaints inbox,
announcements, tariffs, settlement runs; every change audit-logged; bad input refused."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask.testing import FlaskClient

from tests.portal.customer_rows import Db, Supply, supply
from tests.portal.helpers import Account, StaffUser, post_form, staff_login

KEY = bytes(range(16))


@pytest.fixture
def console(
    client: FlaskClient,
    db: Db,
    make_staff: Callable[..., StaffUser],
    make_customer_account: Callable[..., Account],
) -> tuple[FlaskClient, Supply, Account]:
    """A logged-in admin and a customer with a meter."""
    account = make_customer_account()
    s = supply(db, account.customer_id)
    staff = make_staff(["admin"])
    assert staff_login(client, staff.email, staff.password).status_code == 302
    return client, s, account


def _audited(db: Db, action: str, target: object) -> bool:
    row = db.execute(
        "SELECT 1 FROM audit_log WHERE action = %s AND target_id = %s", (action, str(target))
    ).fetchone()
    return row is not None


def test_every_console_page_renders(console: tuple[FlaskClient, Supply, Account]) -> None:
    client, s, account = console
    for path in (
        "/staff/",
        f"/staff/customers?q={s.meter_id}",
        f"/staff/customers/{account.customer_id}",
        f"/staff/meters/{s.meter_id}",
        "/staff/held",
        "/staff/complaints",
        "/staff/announcements",
        "/staff/tariffs",
        "/staff/runs",
    ):
        assert client.get(path).status_code == 200, path
    assert account.customer_no in client.get(f"/staff/customers?q={s.meter_id}").get_data(
        as_text=True
    )


def test_staff_home_links_the_console_pages_of_the_staff_roles(
    client: FlaskClient, make_staff: Callable[..., StaffUser]
) -> None:
    billing = make_staff(["billing"])
    assert staff_login(client, billing.email, billing.password).status_code == 302
    home = client.get("/staff/").get_data(as_text=True)
    for path in ("/staff/customers", "/staff/held", "/staff/tariffs", "/staff/runs"):
        assert f'href="{path}"' in home, path
        assert client.get(path).status_code == 200, path
    for path in ("/staff/complaints", "/staff/announcements", "/staff/approvals"):
        assert f'href="{path}"' not in home, path
    console = client.get("/staff/console")
    assert console.status_code == 302 and console.headers["Location"].endswith("/staff/")


def test_meter_key_is_masked_and_only_replaced(
    console: tuple[FlaskClient, Supply, Account], db: Db
) -> None:
    client, s, _ = console
    page = client.get(f"/staff/meters/{s.meter_id}").get_data(as_text=True)
    assert KEY.hex() not in page.lower() and KEY[:8].hex() not in page.lower()
    assert KEY[-2:].hex().upper() in page
    path = f"/staff/meters/{s.meter_id}"
    new = "00112233445566778899AABBCCDDEEFF"
    assert post_form(client, f"{path}/key", {"key_hex": new}, form_page=path).status_code == 302
    row = db.execute("SELECT aes_key FROM meters WHERE meter_id = %s", (s.meter_id,)).fetchone()
    assert row is not None and bytes(row["aes_key"]) == bytes.fromhex(new)
    assert _audited(db, "meter.key_replaced", s.meter_id)
    details = db.execute(
        "SELECT details::text AS d FROM audit_log WHERE target_id = %s", (s.meter_id,)
    ).fetchone()
    assert details is not None and new.lower() not in details["d"].lower()


@pytest.mark.parametrize("bad", ["", "XYZ", "0011", "00112233445566778899AABBCCDDEEFF00"])
def test_bad_meter_key_is_refused(
    console: tuple[FlaskClient, Supply, Account], db: Db, bad: str
) -> None:
    client, s, _ = console
    path = f"/staff/meters/{s.meter_id}"
    assert post_form(client, f"{path}/key", {"key_hex": bad}, form_page=path).status_code == 303
    row = db.execute("SELECT aes_key FROM meters WHERE meter_id = %s", (s.meter_id,)).fetchone()
    assert row is not None and bytes(row["aes_key"]) == KEY


def test_complaint_is_answered_and_bad_answers_refused(
    console: tuple[FlaskClient, Supply, Account], db: Db
) -> None:
    client, _, account = console
    row = db.execute(
        "INSERT INTO complaints (customer_id, kind, subject, description, due_on)"
        " VALUES (%s, 'low_pressure', 'Słabe ciśnienie', 'Od rana', current_date - 1)"
        " RETURNING complaint_id",
        (account.customer_id,),
    ).fetchone()
    assert row is not None
    path = f"/staff/complaints/{row['complaint_id']}"
    assert "badge late" in client.get("/staff/complaints").get_data(as_text=True)
    empty = post_form(client, path, {"status": "answered", "answer": ""})
    assert empty.status_code == 400
    assert post_form(client, path, {"status": "bogus", "answer": "x"}).status_code == 400
    done = post_form(client, path, {"status": "answered", "answer": "Usunęliśmy awarię."})
    assert done.status_code == 302
    answered = db.execute(
        "SELECT status, answer, answered_at FROM complaints WHERE complaint_id = %s",
        (row["complaint_id"],),
    ).fetchone()
    assert answered is not None and answered["status"] == "answered"
    assert answered["answered_at"] is not None
    assert _audited(db, "complaint.answered", row["complaint_id"])


def test_announcement_for_streets_and_bad_dates(
    console: tuple[FlaskClient, Supply, Account], db: Db
) -> None:
    client, _, _ = console
    fields = {
        "kind": "outage",
        "title": "Przerwa w dostawie wody",
        "body": "Wymiana zasuwy.",
        "starts_at": "2030-05-01T08:00",
        "ends_at": "2030-05-01T14:00",
        "streets": "ul. Wodna\nul. Polna\n",
    }
    assert post_form(client, "/staff/announcements", fields).status_code == 302
    streets = db.execute(
        "SELECT street FROM announcement_streets s JOIN announcements a USING (announcement_id)"
        " WHERE a.title = 'Przerwa w dostawie wody' ORDER BY street"
    ).fetchall()
    assert [r["street"] for r in streets] == ["ul. Polna", "ul. Wodna"]
    backwards = {**fields, "title": "Wstecz", "ends_at": "2030-04-01T08:00"}
    assert post_form(client, "/staff/announcements", backwards).status_code == 400
    assert post_form(client, "/staff/announcements", {**fields, "title": ""}).status_code == 400


def test_held_reading_is_resolved(console: tuple[FlaskClient, Supply, Account], db: Db) -> None:
    client, s, _ = console
    row = db.execute(
        "INSERT INTO held_readings (contract_id, meter_id, period_start, period_end, reason)"
        " VALUES (%s, %s, '2026-01-01', '2026-01-31', 'jump') RETURNING held_id",
        (s.contract_id, s.meter_id),
    ).fetchone()
    assert row is not None
    path = f"/staff/held/{row['held_id']}/resolve"
    assert post_form(client, path, {"resolution": ""}, form_page="/staff/held").status_code == 303
    ok = post_form(client, path, {"resolution": "Odczyt inkasenta potwierdza"}, "/staff/held")
    assert ok.status_code == 302
    assert _audited(db, "held.resolved", row["held_id"])


def test_tariff_version_goes_through_billing_rules(
    console: tuple[FlaskClient, Supply, Account], db: Db
) -> None:
    client, s, _ = console
    path = f"/staff/tariffs/{s.tariff_id}/versions"
    fields = {
        "valid_from": "2031-01-01",
        "water_price": "6,10",
        "sewage_price": "8.00",
        "subscription": "5,20",
    }
    assert post_form(client, path, fields, form_page="/staff/tariffs").status_code == 302
    versions = db.execute(
        "SELECT valid_from::text, valid_to::text, subscription_gr_per_month FROM tariff_versions"
        " WHERE tariff_id = %s ORDER BY valid_from",
        (s.tariff_id,),
    ).fetchall()
    assert versions[-1]["subscription_gr_per_month"] == 520
    assert versions[-2]["valid_to"] == "2030-12-31"
    assert _audited(db, "tariff.version_added", s.tariff_id)
    negative = {**fields, "valid_from": "2032-01-01", "water_price": "-1"}
    assert post_form(client, path, negative, form_page="/staff/tariffs").status_code == 400
    assert (
        post_form(client, path, {**fields, "valid_from": "x"}, "/staff/tariffs").status_code == 400
    )


def test_settlement_run_bad_period_and_report(
    console: tuple[FlaskClient, Supply, Account],
) -> None:
    client, _, _ = console
    assert post_form(client, "/staff/runs", {"label": "2026-13", "mode": "dry"}).status_code == 400
    dry = post_form(client, "/staff/runs", {"label": "2020-01", "mode": "dry"})
    assert dry.status_code in (302, 400)
    report = client.get("/staff/runs/2020-01/report.csv")
    assert report.status_code == 200
    assert report.get_data(as_text=True).startswith("tariff_group,")
    assert client.get("/staff/runs/garbage/report.csv").status_code == 404


def test_roles_separate_customer_service_from_billing(
    client: FlaskClient, make_staff: Callable[..., StaffUser]
) -> None:
    staff = make_staff(["customer_service"])
    staff_login(client, staff.email, staff.password)
    assert client.get("/staff/complaints").status_code == 200
    for path in ("/staff/tariffs", "/staff/runs", "/staff/held"):
        assert client.get(path).status_code == 403, path
