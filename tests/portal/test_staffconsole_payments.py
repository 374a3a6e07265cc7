"""Staff console: unmatched bank credits listed newest first, booked to a customer once
(name and balance shown before confirming), ignored with a note; bad input books nothing,
and what billing refused is said in Polish (the English reason goes to the log)."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import date

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient

from billing_engine.bank import csvfile
from billing_engine.bank.importer import import_statements
from meterflow.settings import Settings
from tests.portal.customer_rows import Db
from tests.portal.helpers import Account, StaffUser, csrf, login, post_form, staff_login

OUR_ACCOUNT = "PL61109010140000071219812874"
SENDER = "PL27114020040000300201355387"
NBSP = "\u00a0"
MakeCredit = Callable[..., int]


@pytest.fixture
def make_credit(portal_settings: Settings) -> Iterator[MakeCredit]:
    """Factory: import a one-line CSV statement whose credit no virtual account claims;
    returns the ``statement_items`` id of the unmatched credit."""
    assert portal_settings.database_url is not None
    with psycopg.connect(portal_settings.database_url, autocommit=True) as conn:

        def make(
            amount: str = "123,45",
            title: str = "za wodę",
            name: str = "Jan Nadawca",
            on: str = "2026-03-02",
            currency: str = "PLN",
            sender: str = SENDER,
        ) -> int:
            statement = f"ST-{uuid.uuid4().hex[:12]}"
            text = (
                "statement;account;entry_no;booking_date;amount;currency;counterparty_account;"
                f"counterparty_name;title\n{statement};{OUR_ACCOUNT};1;{on};{amount};{currency};"
                f"{sender};{name};{title}\n"
            )
            result = import_statements(
                conn,
                csvfile.parse(text),
                portal_settings.bank_sort_code,
                portal_settings.bank_account_prefix,
                source="wyciag.csv",
            )
            assert result.unmatched == 1
            row = conn.execute(
                "SELECT item_id FROM statement_items WHERE dedup_key LIKE %s", (f"%/{statement}/%",)
            ).fetchone()
            assert row is not None
            return int(row[0])

        yield make


@pytest.fixture
def billing_clerk(client: FlaskClient, make_staff: Callable[..., StaffUser]) -> StaffUser:
    """A logged-in staff user of the billing department."""
    clerk = make_staff(["billing"])
    assert staff_login(client, clerk.email, clerk.password).status_code == 302
    return clerk


def _charge(db: Db, customer_id: int, amount_gr: int, due: date) -> int:
    row = db.execute(
        "INSERT INTO ledger_entries (customer_id, kind, amount_gr, booked_on, due_date)"
        " VALUES (%s, 'charge', %s, %s, %s) RETURNING entry_id",
        (customer_id, amount_gr, due.replace(day=1), due),
    ).fetchone()
    assert row is not None
    return int(row["entry_id"])


def _item(db: Db, item_id: int) -> dict[str, object]:
    row = db.execute(
        "SELECT state, customer_id, entry_id, assigned_by, note FROM statement_items"
        " WHERE item_id = %s",
        (item_id,),
    ).fetchone()
    assert row is not None
    return dict(row)


def _payments(db: Db, customer_id: int) -> list[int]:
    rows = db.execute(
        "SELECT amount_gr FROM ledger_entries WHERE customer_id = %s AND kind = 'payment'",
        (customer_id,),
    ).fetchall()
    return [int(r["amount_gr"]) for r in rows]


def _audited(db: Db, action: str, item_id: int) -> dict[str, object] | None:
    row = db.execute(
        "SELECT staff_email, details FROM audit_log WHERE action = %s"
        " AND target_kind = 'statement_item' AND target_id = %s",
        (action, str(item_id)),
    ).fetchone()
    return None if row is None else dict(row)


def _page(item_id: int) -> str:
    return f"/staff/payments/unmatched/{item_id}"


def test_list_shows_credits_newest_first_with_count_in_polish(
    client: FlaskClient, billing_clerk: StaffUser, db: Db, make_credit: MakeCredit
) -> None:
    older = make_credit("1234,56", title=f"starsza {uuid.uuid4().hex[:6]}", on="2026-03-01")
    newer = make_credit("7,05", title=f"nowsza {uuid.uuid4().hex[:6]}", on="2026-03-09")
    home = client.get("/staff/").get_data(as_text=True)
    assert 'href="/staff/payments/unmatched"' in home and "Nierozpoznane wpłaty" in home
    page = client.get("/staff/payments/unmatched").get_data(as_text=True)
    total = db.execute("SELECT count(*) AS n FROM statement_items WHERE state = 'unmatched'")
    row = total.fetchone()
    assert row is not None and f"{row['n']} " in page and "czeka" in page
    assert f"1{NBSP}234,56{NBSP}zł" in page and f"7,05{NBSP}zł" in page
    assert page.index(_page(newer) + '"') < page.index(_page(older) + '"')
    assert "09.03.2026" in page and "Jan Nadawca" in page and SENDER in page


def test_list_is_paged_and_a_page_past_the_end_shows_the_last(
    client: FlaskClient, billing_clerk: StaffUser, make_credit: MakeCredit
) -> None:
    oldest = make_credit(title=f"najstarsza {uuid.uuid4().hex[:6]}", on="1999-01-01")
    for day in range(2, 53):
        make_credit(on=f"1999-02-{day % 28 + 1:02d}")
    first = client.get("/staff/payments/unmatched").get_data(as_text=True)
    assert _page(oldest) + '"' not in first and "strona 1 z " in first
    last = client.get("/staff/payments/unmatched?page=9999").get_data(as_text=True)
    assert _page(oldest) + '"' in last
    assert client.get("/staff/payments/unmatched?page=x").status_code == 200


def test_customer_is_shown_with_balance_then_the_credit_is_booked_once_oldest_due_first(
    client: FlaskClient,
    billing_clerk: StaffUser,
    db: Db,
    bare_customer: tuple[int, str],
    make_credit: MakeCredit,
) -> None:
    customer_id, customer_no = bare_customer
    first = _charge(db, customer_id, 5000, date(2026, 1, 15))
    second = _charge(db, customer_id, 5000, date(2026, 2, 15))
    item = make_credit("70,00")
    page = client.get(f"{_page(item)}?q={customer_no}").get_data(as_text=True)
    assert "Anna Test" in page and f"100,00{NBSP}zł do zapłaty" in page
    assert (
        f"30,00{NBSP}zł do zapłaty" in page and f"Zaksięguj 70,00{NBSP}zł na {customer_no}" in page
    )
    booked = post_form(client, f"{_page(item)}/assign", {"customer_no": customer_no}, _page(item))
    assert booked.status_code == 302
    assert booked.headers["Location"].endswith("/staff/payments/unmatched")
    state = _item(db, item)
    assert state["state"] == "assigned" and state["customer_id"] == customer_id
    assert state["assigned_by"] == f"staff:{billing_clerk.email}"
    assert _payments(db, customer_id) == [-7000]
    settled = db.execute(
        "SELECT charge_id, amount_gr FROM payment_allocations WHERE payment_id = %s"
        " ORDER BY charge_id",
        (state["entry_id"],),
    ).fetchall()
    assert [(r["charge_id"], r["amount_gr"]) for r in settled] == [(first, 5000), (second, 2000)]
    audit = _audited(db, "payment.assigned", item)
    assert audit is not None and audit["staff_email"] == billing_clerk.email
    assert audit["details"] == {
        "customer_id": customer_id,
        "customer_no": customer_no,
        "amount_gr": 7000,
        "entry_id": state["entry_id"],
    }
    # The same form sent again (a double click, the back button): refused, nothing booked.
    again = post_form(client, f"{_page(item)}/assign", {"customer_no": customer_no}, "/staff/")
    assert again.status_code == 409
    text = again.get_data(as_text=True)
    assert "Nic nie zrobiono" in text and billing_clerk.email in text and customer_no in text
    assert _payments(db, customer_id) == [-7000]


def test_unknown_customer_number_is_said_on_the_form_and_books_nothing(
    client: FlaskClient, billing_clerk: StaffUser, db: Db, make_credit: MakeCredit
) -> None:
    item = make_credit()
    answer = post_form(client, f"{_page(item)}/assign", {"customer_no": "K-nikt"}, _page(item))
    assert answer.status_code == 400
    assert "Nie ma klienta o numerze K-nikt" in answer.get_data(as_text=True)
    empty = post_form(client, f"{_page(item)}/assign", {"customer_no": " "}, _page(item))
    assert empty.status_code == 400 and "Podaj numer klienta" in empty.get_data(as_text=True)
    assert _item(db, item)["state"] == "unmatched"
    assert _audited(db, "payment.assigned", item) is None


def test_form_without_csrf_token_is_refused(
    client: FlaskClient,
    billing_clerk: StaffUser,
    db: Db,
    bare_customer: tuple[int, str],
    make_credit: MakeCredit,
) -> None:
    item = make_credit()
    answer = client.post(f"{_page(item)}/assign", data={"customer_no": bare_customer[1]})
    assert answer.status_code == 400
    note = client.post(f"{_page(item)}/ignore", data={"note": "Zwrot do nadawcy"})
    assert note.status_code == 400
    assert _item(db, item)["state"] == "unmatched"


def test_credit_is_ignored_only_with_a_note_and_then_cannot_be_booked(
    client: FlaskClient,
    billing_clerk: StaffUser,
    db: Db,
    bare_customer: tuple[int, str],
    make_credit: MakeCredit,
) -> None:
    item = make_credit(title=f"pomyłka {uuid.uuid4().hex[:6]}")
    for note in ("", "   ", "ok"):
        refused = post_form(client, f"{_page(item)}/ignore", {"note": note}, _page(item))
        assert refused.status_code == 400, note
    assert _item(db, item)["state"] == "unmatched"
    note = "Przelew na złe konto, do zwrotu nadawcy"
    done = post_form(client, f"{_page(item)}/ignore", {"note": f"  {note} "}, _page(item))
    assert done.status_code == 302
    state = _item(db, item)
    assert state["state"] == "ignored" and state["note"] == note
    assert state["assigned_by"] == f"staff:{billing_clerk.email}"
    audit = _audited(db, "payment.ignored", item)
    assert audit is not None and audit["details"] == {"note": note}
    listing = client.get("/staff/payments/unmatched").get_data(as_text=True)
    assert f'{_page(item)}"' in listing.split("Ostatnie decyzje")[1] and note in listing
    late = post_form(client, f"{_page(item)}/assign", {"customer_no": bare_customer[1]}, "/staff/")
    assert late.status_code == 409 and _payments(db, bare_customer[0]) == []
    again = post_form(client, f"{_page(item)}/ignore", {"note": "jeszcze raz"}, "/staff/")
    assert again.status_code == 409 and _item(db, item)["note"] == note


def test_two_clerks_submitting_at_once_book_the_credit_once(
    app: Flask,
    db: Db,
    make_staff: Callable[..., StaffUser],
    bare_customer: tuple[int, str],
    make_credit: MakeCredit,
    portal_settings: Settings,
) -> None:
    item = make_credit("50,00")
    clients = []
    for _ in range(2):
        browser = app.test_client()
        clerk = make_staff(["billing"])
        staff_login(browser, clerk.email, clerk.password)
        clients.append((browser, csrf(browser, _page(item))))
    statuses: list[int] = []

    def submit(browser: FlaskClient, token: str) -> None:
        answer = browser.post(
            f"{_page(item)}/assign", data={"csrf_token": token, "customer_no": bare_customer[1]}
        )
        statuses.append(answer.status_code)

    assert portal_settings.database_url is not None
    # Both requests reach the item's row lock while the test holds it, then go one by one.
    with psycopg.connect(portal_settings.database_url) as holder:
        holder.execute("SELECT 1 FROM statement_items WHERE item_id = %s FOR UPDATE", (item,))
        threads = [threading.Thread(target=submit, args=pair) for pair in clients]
        for thread in threads:
            thread.start()
        waiting = 0
        for _ in range(100):
            row = db.execute(
                "SELECT count(*) AS n FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
                " WHERE NOT l.granted AND a.query LIKE '%statement_items%FOR UPDATE%'"
            ).fetchone()
            waiting = int(row["n"]) if row else 0
            if waiting >= 2:
                break
            threading.Event().wait(0.05)
        assert waiting >= 2
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(statuses) == [302, 409]
    assert _payments(db, bare_customer[0]) == [-5000]


def test_credit_in_another_currency_cannot_be_booked_said_in_polish(
    client: FlaskClient,
    billing_clerk: StaffUser,
    db: Db,
    bare_customer: tuple[int, str],
    make_credit: MakeCredit,
    caplog: pytest.LogCaptureFixture,
) -> None:
    item = make_credit("20,00", currency="EUR")
    page = client.get(f"{_page(item)}?q={bare_customer[1]}").get_data(as_text=True)
    assert f"20,00{NBSP}EUR" in page and "tylko wpłaty w PLN" in page
    assert "/assign" not in page and "/ignore" in page
    with caplog.at_level(logging.WARNING, logger="portal.staffconsole.payments"):
        answer = post_form(
            client, f"{_page(item)}/assign", {"customer_no": bare_customer[1]}, _page(item)
        )
    text = answer.get_data(as_text=True)
    assert answer.status_code == 400 and "Nic nie zaksięgowano: wpłata nie jest w złotych" in text
    assert "not PLN" not in text and "System rozliczeń odmówił:" not in text
    assert f"statement item {item} is in EUR, not PLN" in caplog.text
    assert _item(db, item)["state"] == "unmatched" and _payments(db, bare_customer[0]) == []


def test_credit_whose_reference_is_in_the_ledger_is_not_booked_again_said_in_polish(
    client: FlaskClient,
    billing_clerk: StaffUser,
    db: Db,
    bare_customer: tuple[int, str],
    make_credit: MakeCredit,
    caplog: pytest.LogCaptureFixture,
) -> None:
    customer_id, customer_no = bare_customer
    item = make_credit("30,00")
    # Booked by hand outside the console, under the reference the importer would use.
    db.execute(
        "INSERT INTO ledger_entries (customer_id, kind, amount_gr, booked_on, reference)"
        " SELECT %s, 'payment', -3000, booked_on, 'bank:' || dedup_key FROM statement_items"
        " WHERE item_id = %s",
        (customer_id, item),
    )
    with caplog.at_level(logging.WARNING, logger="portal.staffconsole.payments"):
        answer = post_form(
            client, f"{_page(item)}/assign", {"customer_no": customer_no}, _page(item)
        )
    text = answer.get_data(as_text=True)
    assert answer.status_code == 400 and "Ta wpłata jest już zaksięgowana" in text
    assert "booked already" not in text and f"statement item {item} was booked" in caplog.text
    assert _item(db, item)["state"] == "unmatched" and _payments(db, customer_id) == [-3000]


def test_title_and_an_earlier_sender_point_at_the_customer(
    client: FlaskClient,
    billing_clerk: StaffUser,
    db: Db,
    bare_customer: tuple[int, str],
    make_credit: MakeCredit,
) -> None:
    customer_id, customer_no = bare_customer
    named = make_credit(title=f"oplata {customer_no} za marzec", sender="")
    page = client.get(_page(named)).get_data(as_text=True)
    assert f"customer_id={customer_id}" in page and "tytuł podaje numer klienta" in page
    sender = "PL" + str(uuid.uuid4().int)[:26]
    earlier = make_credit(sender=sender, title="woda")
    post_form(client, f"{_page(earlier)}/assign", {"customer_no": customer_no}, _page(earlier))
    later = make_credit(sender=sender, title="woda")
    page = client.get(_page(later)).get_data(as_text=True)
    assert f"customer_id={customer_id}" in page and "z tego rachunku" in page
    chosen = client.get(f"{_page(later)}?customer_id={customer_id}").get_data(as_text=True)
    assert f"Zaksięguj 123,45{NBSP}zł na {customer_no}" in chosen


def test_only_billing_staff_reach_the_page(
    client: FlaskClient,
    make_staff: Callable[..., StaffUser],
    customer_account: Account,
    make_credit: MakeCredit,
    db: Db,
) -> None:
    item = make_credit()
    anonymous = client.get("/staff/payments/unmatched")
    assert anonymous.status_code == 302 and "/staff/login" in anonymous.headers["Location"]
    login(client, customer_account.email, customer_account.password)
    token = csrf(client, "/ebok/readings")
    for path in ("/staff/payments/unmatched", _page(item)):
        assert client.get(path).status_code == 404, path
    for action, field in (("assign", "customer_no"), ("ignore", "note")):
        answer = client.post(
            f"{_page(item)}/{action}",
            data={"csrf_token": token, field: customer_account.customer_no},
        )
        assert answer.status_code == 404, action
    other = make_staff(["customer_service"])
    desk = client.application.test_client()
    staff_login(desk, other.email, other.password)
    assert desk.get("/staff/payments/unmatched").status_code == 403
    assert 'href="/staff/payments/unmatched"' not in desk.get("/staff/").get_data(as_text=True)
    assert _item(db, item)["state"] == "unmatched"


def test_unknown_item_is_not_found(client: FlaskClient, billing_clerk: StaffUser) -> None:
    assert client.get(_page(999_999_999)).status_code == 404
    token = csrf(client, "/staff/payments/unmatched")
    answer = client.post(
        f"{_page(999_999_999)}/ignore", data={"csrf_token": token, "note": "x" * 9}
    )
    assert answer.status_code == 404
