"""Polish is the default language: every message in the code and templates has a Polish text.

A new ``_()`` string without a translation fails here; the fix is the extract/update step
described in portal/i18n.py and a Polish ``msgstr``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from flask import Flask
from flask.testing import FlaskClient

from tests.portal.helpers import Account, login, post_form

ROOT = Path(__file__).resolve().parents[2]
PO = ROOT / "portal" / "translations" / "pl" / "LC_MESSAGES" / "messages.po"
_PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")

MsgId = str | tuple[str, ...]


def _extracted() -> dict[MsgId, str]:
    """Every message id in portal/ (as pybabel extract sees it) -> where it is."""
    with open(ROOT / "portal" / "babel.cfg") as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)  # type: ignore[no-untyped-call]
    found: dict[MsgId, str] = {}
    keywords = {"_": None, "_l": None, "gettext": None, "ngettext": (1, 2)}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=keywords
    ):
        found.setdefault(message, f"{filename}:{lineno}")
    return found


def _texts(value: str | tuple[str, ...] | list[str] | None) -> tuple[str, ...]:
    """A message's id or string as a tuple (one item unless plural)."""
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


@pytest.fixture(scope="module")
def polish() -> Catalog:
    with open(PO, "rb") as po:
        return read_po(po, locale="pl")


def test_every_message_has_a_polish_translation(polish: Catalog) -> None:
    missing = []
    for msgid, where in _extracted().items():
        key = msgid if isinstance(msgid, str) else msgid[0]
        message = polish.get(key)
        texts = () if message is None else _texts(message.string)
        if message is None or message.fuzzy or not texts or not all(texts):
            missing.append(f"{where}: {msgid!r}")
    assert not missing, "messages without a Polish text:\n" + "\n".join(missing)


def test_plural_messages_have_the_three_polish_forms(polish: Catalog) -> None:
    assert polish.num_plurals == 3
    plurals = [m for m in polish if m.id and m.pluralizable]
    assert plurals, "the catalogue should carry at least one plural message"
    for message in plurals:
        texts = _texts(message.string)
        assert len(texts) == 3 and all(texts), message.id


def test_translations_keep_the_placeholders(polish: Catalog) -> None:
    for message in polish:
        if not message.id:
            continue
        wanted = set(_PLACEHOLDER.findall(" ".join(_texts(message.id))))
        for text in _texts(message.string):
            assert set(_PLACEHOLDER.findall(text)) == wanted, message.id


@pytest.mark.parametrize(
    "path",
    ["/ebok/", "/ebok/readings", "/ebok/consumption", "/ebok/invoices", "/ebok/complaints"],
)
def test_customer_pages_speak_polish_by_default_and_english_on_request(
    app: Flask, client: FlaskClient, customer_account: Account, path: str
) -> None:
    login(client, customer_account.email, customer_account.password)
    polish_page = client.get(path).get_data(as_text=True)
    assert 'lang="pl"' in polish_page and "Faktury i płatności" in polish_page
    assert "Invoices and payments" not in polish_page
    post_form(client, "/lang/en", {"next": path}, form_page=path)
    english_page = client.get(path).get_data(as_text=True)
    assert 'lang="en"' in english_page and "Invoices and payments" in english_page


def test_attachment_limit_is_said_with_the_polish_plural(app: Flask) -> None:
    from flask_babel import force_locale, ngettext

    with app.test_request_context(), force_locale("pl"):
        forms = [
            ngettext("Attach at most %(num)d file.", "Attach at most %(num)d files.", n)
            for n in (1, 3, 5, 22)
        ]
    assert forms == [
        "Możesz dołączyć najwyżej 1 plik.",
        "Możesz dołączyć najwyżej 3 pliki.",
        "Możesz dołączyć najwyżej 5 plików.",
        "Możesz dołączyć najwyżej 22 pliki.",
    ]


def test_volumes_are_written_the_way_each_language_writes_numbers(app: Flask) -> None:
    from decimal import Decimal

    from flask import render_template_string, session

    with app.test_request_context():
        assert render_template_string("{{ v|m3 }}", v=Decimal("1234.5")) == "1\u00a0234,500"
        session["lang"] = "en"
        assert render_template_string("{{ v|m3 }}", v=Decimal("1234.5")) == "1,234.500"
        assert render_template_string("{{ v|m3 }}", v=None) == ""
