"""Staff decisions on unmatched credits in the importer: the queue newest first and paged,
``ignore`` with a note (also from the command line), no booking of a credit in another
currency; each refusal carries a reason code."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import psycopg
import pytest

from billing_engine.bank import csvfile
from billing_engine.bank.importer import (
    DecisionRefused,
    Refusal,
    assign,
    count_unmatched,
    ignore,
    import_statements,
    unmatched,
)
from billing_engine.db import Conn
from meterflow.cli import main
from meterflow.errors import BillingError
from tests.payments.helpers import payments_of
from tests.payments.test_statements import OUR_ACCOUNT, PREFIX, SORT_CODE, STRANGER


def _credits(conn: Conn, *lines: tuple[str, str, str]) -> list[int]:
    """Import a statement of unmatched credits (day, amount, currency); their item ids."""
    statement = f"U-{uuid.uuid4().hex[:10]}"
    text = (
        "statement;account;entry_no;booking_date;amount;currency;counterparty_account\n"
        + "".join(
            f"{statement};{OUR_ACCOUNT};{n};{day};{amount};{currency};{STRANGER}\n"
            for n, (day, amount, currency) in enumerate(lines, 1)
        )
    )
    result = import_statements(conn, csvfile.parse(text), SORT_CODE, PREFIX)
    assert result.unmatched == len(lines)
    rows = conn.execute(
        "SELECT item_id FROM statement_items WHERE dedup_key LIKE %s ORDER BY item_id",
        (f"%/{statement}/%",),
    ).fetchall()
    return [int(r[0]) for r in rows]


def test_queue_newest_first_in_pages_with_its_count(conn: Conn) -> None:
    before = count_unmatched(conn)
    ids = _credits(conn, ("2031-05-02", "1,00", "PLN"), ("2031-05-09", "2,00", "PLN"))
    ids += _credits(conn, ("2031-05-09", "3,00", "PLN"))
    assert count_unmatched(conn) == before + 3
    newest = unmatched(conn, 2, newest_first=True)
    assert [i.item_id for i in newest] == [ids[2], ids[1]]
    assert unmatched(conn, 1, offset=2, newest_first=True)[0].item_id == ids[0]
    assert [i.item_id for i in unmatched(conn, 10_000)][-3:] == ids


def test_ignored_credit_keeps_its_note_and_is_decided_once(conn: Conn) -> None:
    [item] = _credits(conn, ("2031-06-01", "40,00", "PLN"))
    with pytest.raises(BillingError, match="say why"):
        ignore(conn, item, "  ", "staff:a@example")
    ignore(conn, item, " do zwrotu nadawcy ", "staff:a@example")
    row = conn.execute(
        "SELECT state, note, assigned_by, assigned_at IS NOT NULL, entry_id FROM statement_items"
        " WHERE item_id = %s",
        (item,),
    ).fetchone()
    assert row == ("ignored", "do zwrotu nadawcy", "staff:a@example", True, None)
    assert item not in [i.item_id for i in unmatched(conn, 10_000)]
    with pytest.raises(BillingError, match="is ignored"):
        ignore(conn, item, "again", "staff:b@example")
    with pytest.raises(BillingError, match="is ignored"):
        assign(conn, item, 1, "staff:b@example")
    with pytest.raises(BillingError, match="missing"):
        ignore(conn, 10**12, "note", "staff:b@example")


def test_credit_ignored_without_a_note_is_refused_by_the_schema(conn: Conn) -> None:
    [item] = _credits(conn, ("2031-06-02", "5,00", "PLN"))
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("UPDATE statement_items SET state = 'ignored' WHERE item_id = %s", (item,))


def test_credit_in_another_currency_is_not_booked(
    conn: Conn, make_customer: Callable[[], int]
) -> None:
    customer = make_customer()
    [item] = _credits(conn, ("2031-06-03", "10,00", "EUR"))
    with pytest.raises(BillingError, match="EUR, not PLN"):
        assign(conn, item, customer, "staff:a@example")
    assert payments_of(conn, customer) == []
    ignore(conn, item, "EUR: zwrot do nadawcy", "staff:a@example")


def test_each_refusal_says_its_reason(conn: Conn, make_customer: Callable[[], int]) -> None:
    customer = make_customer()
    [euro, pln] = _credits(conn, ("2031-06-03", "9,00", "EUR"), ("2031-06-03", "9,00", "PLN"))
    refusals = []
    for decide in (
        lambda: assign(conn, euro, customer, "staff:a@example"),
        lambda: ignore(conn, pln, "", "staff:a@example"),
        lambda: assign(conn, 10**12, customer, "staff:a@example"),
    ):
        with pytest.raises(DecisionRefused) as refused:
            decide()
        refusals.append(refused.value.reason)
    assert refusals == [Refusal.NOT_PLN, Refusal.NO_NOTE, Refusal.MISSING]
    ignore(conn, pln, "zwrot", "staff:a@example")
    with pytest.raises(DecisionRefused, match="by staff:a@example at ") as decided:
        assign(conn, pln, customer, "staff:b@example")
    assert decided.value.reason is Refusal.DECIDED and decided.value.item_id == pln


def test_cli_ignores_a_credit_with_a_note_once(
    conn: Conn,
    payments_db: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("METERFLOW_DATABASE_URL", payments_db)
    [item] = _credits(conn, ("2031-06-04", "15,00", "PLN"))
    assert main(["payments", "ignore", str(item), "--note", " ", "--by", "ewa"]) == 1
    assert "say why" in capsys.readouterr().err
    assert main(["payments", "ignore", str(item), "--note", "do zwrotu", "--by", "ewa"]) == 0
    assert f"item {item} ignored" in capsys.readouterr().out
    row = conn.execute(
        "SELECT state, note, assigned_by FROM statement_items WHERE item_id = %s", (item,)
    ).fetchone()
    assert row == ("ignored", "do zwrotu", "cli:ewa")
    assert main(["payments", "ignore", str(item), "--note", "znowu"]) == 1
    assert "is ignored by cli:ewa" in capsys.readouterr().err
    assert main(["payments", "ignore", "999999999999", "--note", "x"]) == 1
    assert "999999999999 is missing" in capsys.readouterr().err
