"""Bank statements: MT940 and CSV parsing, matching by virtual account, unmatched, re-import."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from billing_engine.bank import csvfile, mt940
from billing_engine.bank.iban import virtual_iban
from billing_engine.bank.importer import (
    assign,
    ensure_virtual_accounts,
    import_statements,
    read_statements,
    unmatched,
)
from billing_engine.db import Conn
from meterflow.cli import main
from meterflow.errors import BillingError, DecodeError
from tests.payments.helpers import allocations_of, payments_of

MakeInvoice = Callable[[int, int, date], tuple[int, int]]
SORT_CODE = "10901014"
PREFIX = "7000"
OUR_ACCOUNT = "PL61109010140000071219812874"
STRANGER = "PL27114020040000300201355387"


def mt940_text(virtual: str, reference: str) -> str:
    """A statement in the style of a Polish bank: a matched credit, an unmatched one, a debit."""
    return (
        "{1:F01BREXPLPWAXXX0000000000}{2:O9401200BREXPLPWAXXX00000000002602021200N}{4:\r\n"
        f":20:{reference}\r\n"
        f":25:/{OUR_ACCOUNT}\r\n"
        ":28C:00033/00001\r\n"
        ":60F:C260201PLN1000,00\r\n"
        ":61:2602020202C150,75N240NONREF//BR26020212345\r\n"
        ":86:240^00PRZELEW PRZYCHODZĄCY^20Zapłata za FV/1/20\r\n"
        f"26^30{STRANGER[4:12]}^31{STRANGER[12:]}^32JAN KOWALSKI^38{virtual}\r\n"
        ":61:2602020202C99,00N240NONREF//BR26020212346\r\n"
        ":86:240^00PRZELEW^20za wodę^32NIEZNANY PŁATNIK^38PL10105000997603123456789123\r\n"
        ":61:260202D20,00NTRFNONREF\r\n"
        ":86:Opłata za prowadzenie rachunku\r\n"
        ":62F:C260202PLN1229,75\r\n"
        "-}"
    )


def csv_text(virtual: str, statement: str) -> str:
    """The documented CSV layout: ``;`` separated, decimal comma, Polish dates allowed."""
    return (
        "statement;account;entry_no;booking_date;amount;currency;virtual_account;"
        "counterparty_account;counterparty_name;title\n"
        f"{statement};{OUR_ACCOUNT};1;2026-02-03;80,25;PLN;{virtual};{STRANGER};"
        "Ewa Nowak;FV/2/2026\n"
        f"{statement};{OUR_ACCOUNT};2;03.02.2026;12,00;PLN;;{STRANGER};Ktoś;bez konta\n"
        f"{statement};{OUR_ACCOUNT};3;2026-02-03;-5,00;PLN;;;Bank;opłata\n"
    )


def test_mt940_fields_and_polish_subfields() -> None:
    [statement] = mt940.parse(mt940_text("PL00", "ST260202/1"))
    assert statement.account == OUR_ACCOUNT
    assert statement.reference == "ST260202/1/00033/00001"
    first, second, fee = statement.items
    assert (first.booked_on, first.amount_gr, first.currency) == (date(2026, 2, 2), 15075, "PLN")
    assert first.title == "Zapłata za FV/1/2026"
    assert first.counterparty_name == "JAN KOWALSKI"
    assert first.counterparty_account == STRANGER  # the payer's, not the virtual account in ^38
    assert second.counterparty_account == "PL10105000997603123456789123"
    assert first.bank_reference == "BR26020212345"
    assert second.accounts == ("PL10105000997603123456789123",)
    assert (fee.amount_gr, fee.title) == (-2000, "Opłata za prowadzenie rachunku")


@pytest.mark.parametrize("separator", ["~", "<", "+", "?"])
def test_mt940_subfield_separators_of_other_banks(separator: str) -> None:
    details = mt940.subfields(f"240{separator}00PRZELEW{separator}20tytuł{separator}32Jan")
    assert details == {"00": "PRZELEW", "20": "tytuł", "32": "Jan"}


def test_mt940_without_a_statement_is_refused() -> None:
    with pytest.raises(DecodeError):
        mt940.parse("nothing here")
    with pytest.raises(DecodeError):
        mt940.parse(":20:X\n:25:PL1\n:61:garbage\n")


def test_csv_layout_and_bad_values() -> None:
    [statement] = csvfile.parse(csv_text("PL00", "CSV-1"))
    assert [i.amount_gr for i in statement.items] == [8025, 1200, -500]
    assert statement.items[1].booked_on == date(2026, 2, 3)
    with pytest.raises(DecodeError, match="two decimals"):
        csvfile.parse("statement;account;booking_date;amount\nS;A;2026-01-01;1,234\n")
    with pytest.raises(DecodeError, match="booking_date"):
        csvfile.parse("statement;account;booking_date;amount\nS;A;yesterday;1\n")
    with pytest.raises(DecodeError, match="column"):
        csvfile.parse("date;amount\n2026-01-01;1\n")


@pytest.mark.parametrize("fmt", ["mt940", "csv"])
def test_import_matches_books_lists_unmatched_and_reimport_books_nothing(
    conn: Conn,
    make_customer: Callable[[], int],
    make_invoice: MakeInvoice,
    tmp_path: Path,
    fmt: str,
) -> None:
    customer = make_customer()
    _, charge = make_invoice(customer, 50000, date(2026, 2, 20))
    ensure_virtual_accounts(conn, SORT_CODE, PREFIX)
    virtual = virtual_iban(SORT_CODE, PREFIX, customer)
    reference = f"REF-{fmt}-{customer}"
    path = tmp_path / f"statement.{fmt}"
    text = mt940_text(virtual, reference) if fmt == "mt940" else csv_text(virtual, reference)
    path.write_text(text, encoding="utf-8")
    statements = read_statements(path)
    assert statements[0].format == fmt
    expected_gr = 15075 if fmt == "mt940" else 8025

    first = import_statements(conn, statements, SORT_CODE, PREFIX, source=path.name)
    assert (first.booked, first.unmatched, first.ignored, first.duplicates) == (1, 1, 1, 0)
    assert [amount for amount, _ in payments_of(conn, customer)] == [-expected_gr]
    assert allocations_of(conn, charge) == expected_gr
    waiting = [i for i in unmatched(conn) if i.title in ("za wodę", "bez konta")]
    assert len(waiting) == 1

    again = import_statements(conn, read_statements(path, fmt), SORT_CODE, PREFIX)
    assert (again.booked, again.unmatched, again.ignored, again.duplicates) == (0, 0, 0, 3)
    assert len(payments_of(conn, customer)) == 1

    booked = assign(conn, waiting[0].item_id, customer, "test")
    assert booked.amount_gr == waiting[0].amount_gr
    assert allocations_of(conn, charge) == expected_gr + waiting[0].amount_gr
    with pytest.raises(BillingError, match="assigned"):
        assign(conn, waiting[0].item_id, customer, "test")


def test_cli_import_unmatched_assign(
    conn: Conn,
    make_customer: Callable[[], int],
    payments_db: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("METERFLOW_DATABASE_URL", payments_db)
    customer = make_customer()
    path = tmp_path / "cli.csv"
    path.write_text(csv_text("", f"CLI-{customer}"), encoding="utf-8")
    assert main(["payments", "accounts"]) == 0
    assert main(["payments", "import", str(path), "--format", "csv"]) == 0
    assert "0 booked, 2 unmatched, 1 debits ignored" in capsys.readouterr().out
    assert main(["payments", "unmatched"]) == 0
    listed = [line for line in capsys.readouterr().out.splitlines() if "Ewa Nowak" in line]
    item = listed[-1].split("\t")[0]
    number = conn.execute(
        "SELECT customer_no FROM customers WHERE customer_id = %s", (customer,)
    ).fetchone()
    assert number is not None
    assert main(["payments", "assign", item, str(number[0])]) == 0
    assert payments_of(conn, customer) == [(-8025, payments_of(conn, customer)[0][1])]
    assert main(["payments", "assign", item, str(number[0])]) == 1
