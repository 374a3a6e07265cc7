"""The unsubscribe link of notices: a signed token names a customer, a notice kind and a
channel. GET shows a confirmation (mail scanners open links, so GET changes nothing); POST
turns that kind off on that channel, and is also the RFC 8058 one-click target
(``List-Unsubscribe-Post``), so it needs no session and no CSRF token: the signature is the
authority. Texts are in Polish and English here, outside the portal's catalogues."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template
from flask.blueprints import BlueprintSetupState
from flask.typing import ResponseReturnValue

from billing_engine.notify.preferences import read_unsubscribe_token, set_consent
from meterflow.errors import AuthError, BillingError
from portal.db import get_conn
from portal.i18n import current_language

bp = Blueprint("unsubscribe", __name__, url_prefix="/unsubscribe")

TEXTS = {
    "pl": {
        "title": "Rezygnacja z powiadomień",
        "ask": "Czy na pewno nie chcesz otrzymywać powiadomień „{kind}” ({channel})?",
        "button": "Tak, wypisz mnie",
        "done": "Nie będziesz już otrzymywać powiadomień „{kind}” ({channel}). Zmienisz to "
        "w ustawieniach powiadomień w iBOK.",
        "invalid": "Link jest nieprawidłowy.",
        "required": "Tego powiadomienia nie można wyłączyć: wymagają go przepisy.",
        "email": "e-mail",
        "sms": "SMS",
    },
    "en": {
        "title": "Unsubscribe",
        "ask": "Do you really want to stop receiving “{kind}” notices ({channel})?",
        "button": "Yes, unsubscribe me",
        "done": "You will no longer receive “{kind}” notices ({channel}). You can change "
        "this in the notification settings of the e-office.",
        "invalid": "The link is invalid.",
        "required": "This notice cannot be turned off: the law requires it.",
        "email": "e-mail",
        "sms": "SMS",
    },
}
KIND_NAMES = {
    "pl": {
        "invoice_issued": "e-faktura",
        "payment_reminder": "e-monit (zbliżający się termin płatności)",
        "overdue_reminder": "przypomnienie o zaległej płatności",
        "contract_ending": "e-powiadomienie UMOWA",
        "announcement": "e-komunikat",
        "remote_reading_result": "wynik zdalnego odczytu",
    },
    "en": {
        "invoice_issued": "e-invoice",
        "payment_reminder": "payment due soon",
        "overdue_reminder": "overdue payment reminder",
        "contract_ending": "contract ending",
        "announcement": "announcements",
        "remote_reading_result": "remote reading result",
    },
}


@bp.record_once
def _exempt_from_csrf(state: BlueprintSetupState) -> None:
    state.app.extensions["csrf"].exempt(bp)


@bp.get("/<token>")
def confirm(token: str) -> ResponseReturnValue:
    """Ask before turning the notices off."""
    texts = TEXTS[current_language()]
    try:
        choice = read_unsubscribe_token(str(current_app.config["SECRET_KEY"]), token)
    except AuthError:
        return _page(texts["invalid"], status=404)
    question = texts["ask"].format(kind=_kind_name(choice.kind), channel=texts[choice.channel])
    return render_template(
        "notify/unsubscribe.html", title=texts["title"], message=question, button=texts["button"]
    )


@bp.post("/<token>")
def unsubscribe(token: str) -> ResponseReturnValue:
    """Turn the notices off (from the confirmation page or a mail client's one-click)."""
    texts = TEXTS[current_language()]
    try:
        choice = read_unsubscribe_token(str(current_app.config["SECRET_KEY"]), token)
    except AuthError:
        return _page(texts["invalid"], status=404)
    try:
        set_consent(get_conn(), choice.customer_id, choice.kind, choice.channel, False)
    except BillingError:
        return _page(texts["required"], status=400)
    done = texts["done"].format(kind=_kind_name(choice.kind), channel=texts[choice.channel])
    return _page(done)


def _kind_name(kind: str) -> str:
    return KIND_NAMES[current_language()].get(kind, kind)


def _page(message: str, status: int = 200) -> ResponseReturnValue:
    title = TEXTS[current_language()]["title"]
    return render_template("notify/unsubscribe.html", title=title, message=message), status
