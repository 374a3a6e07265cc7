"""Every notice kind renders in Polish and English (subject, text, HTML, SMS); HTML escapes
what customers typed; a payload missing a field is a permanent error, not a blank."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from billing_engine.notify.channels import DeliveryError
from billing_engine.notify.render import LANGUAGES, Renderer

URL = "https://ibok.example/x?a=1&b=2"
AT = "2026-11-21T10:15:00+00:00"
# One payload per kind: what the writers of the outbox put in it.
PAYLOADS: dict[str, dict[str, Any]] = {
    "invoice_issued": {
        "invoice_id": 1,
        "invoice_no": "FV/12/2026",
        "kind": "regular",
        "gross_gr": 123456,
        "due_date": "2026-12-01",
        "period_start": "2026-10-01",
        "period_end": "2026-10-31",
        "estimated": True,
    },
    "payment_reminder": {"invoice_no": "FV/12/2026", "amount_gr": 5000, "due_date": "2026-12-01"},
    "overdue_reminder": {"invoice_no": "FV/12/2026", "overdue_gr": 5000, "due_date": "2026-11-01"},
    "payment_demand": {"overdue_gr": 5000, "pay_by": "2026-12-08"},
    "interest_note": {"amount_gr": 321, "month": "2026-10-01"},
    "contract_ending": {"contract_no": "U/1/2020", "valid_to": "2026-12-31", "renewal": True},
    "announcement": {
        "announcement_kind": "outage",
        "title": "Awaria <sieci>",
        "body": "Beczkowozy & punkty poboru",
        "starts_at": AT,
        "ends_at": "2026-11-21T18:00:00+00:00",
    },
    "remote_reading_result": {"meter_id": "KAM-12345678", "value_m3": "123.456", "read_at": AT},
    "new_login": {"at": AT, "ip": "203.0.113.9", "device": "Firefox <Linux>"},
    "portal_verify_email": {"url": URL},
    "portal_password_reset": {"url": URL},
    "portal_initial_password": {"login": "jan@example.pl", "password": "Ab<1>&x", "login_url": URL},
    "portal_account_exists": {"login_url": URL},
    "portal_new_email": {"url": URL},
    "portal_account_activated": {"login_url": URL},
}
renderer = Renderer()


def test_every_kind_of_the_store_has_templates_in_both_languages(notify_db: str) -> None:
    with psycopg.connect(notify_db) as conn:
        kinds = sorted(k for (k,) in conn.execute("SELECT kind FROM notice_kinds").fetchall())
    assert kinds == sorted(PAYLOADS)
    for language in LANGUAGES:
        assert renderer.kinds(language) == kinds


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", sorted(PAYLOADS))
def test_kind_renders_all_parts(kind: str, language: str) -> None:
    customer = {"name": "Jan <Kowalski> & syn", "customer_no": "K1"}
    notice = renderer.render(kind, language, PAYLOADS[kind], customer, URL + "&u=1", True)
    assert notice.subject and "\n" not in notice.subject
    assert notice.sms and len(notice.sms) <= 320
    assert "&lt;" not in notice.text and "&amp;" not in notice.text
    assert "<Kowalski>" not in notice.html and "<sieci>" not in notice.html
    assert "<Linux>" not in notice.html and "Ab<1>" not in notice.html
    assert notice.html.startswith("<!DOCTYPE html>") and f'lang="{language}"' in notice.html
    assert (URL + "&u=1") in notice.text


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", sorted(PAYLOADS))
def test_the_sms_alone_renders_as_in_the_whole_notice(kind: str, language: str) -> None:
    customer = {"name": "Jan <Kowalski> & syn", "customer_no": "K1"}
    notice = renderer.render(kind, language, PAYLOADS[kind], customer, URL)
    sms = renderer.render_sms(kind, language, PAYLOADS[kind], customer)
    assert sms == (notice.subject, notice.sms)


def test_money_dates_and_instants_are_shown_the_polish_way() -> None:
    notice = renderer.render("invoice_issued", "pl", PAYLOADS["invoice_issued"])
    assert notice.subject == "e-faktura FV/12/2026: 1\u00a0234,56\u00a0zł do 01.12.2026"
    login = renderer.render("new_login", "pl", PAYLOADS["new_login"])
    assert "21.11.2026 11:15" in login.text  # 10:15 UTC is 11:15 in Warsaw in November


def test_a_missing_field_is_a_permanent_error() -> None:
    with pytest.raises(DeliveryError, match="invoice_no") as failed:
        renderer.render("payment_reminder", "en", {"amount_gr": 1, "due_date": "2026-12-01"})
    assert failed.value.permanent
