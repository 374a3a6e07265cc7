"""Notice templates: one Jinja2 file per kind and language (``templates/<lang>/<kind>.j2``)
setting ``subject``, ``text``, ``html`` and ``sms``, wrapped in the language's ``_layout.j2``.

A template sees ``p`` (the outbox payload), ``customer`` (``name``, ``customer_no``; empty
for a notice to an account only), ``attached`` (an invoice PDF goes with the mail) and
``unsubscribe_url`` (None for notices that cannot be unsubscribed). Filters: ``pln``
(grosze), ``day`` (ISO date), ``month`` (ISO date, month and year), ``when`` (ISO instant,
shown in Europe/Warsaw). The HTML part is rendered with autoescaping, the others without.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from markupsafe import Markup

from billing_engine.money import format_pln
from billing_engine.notify.channels import DeliveryError

TEMPLATES = Path(__file__).parent / "templates"
LANGUAGES = ("pl", "en")
WARSAW = ZoneInfo("Europe/Warsaw")
# Line breaks and runs of spaces, not the no-break spaces of amounts ("1 234,56 zł").
ONE_LINE = re.compile(r"[ \t\r\n]+")


@dataclass(frozen=True, slots=True)
class Rendered:
    """A notice's parts: e-mail subject, plain text, HTML, and the SMS text."""

    subject: str
    text: str
    html: str
    sms: str


def _pln(grosze: object) -> str:
    return format_pln(int(str(grosze)))


def _day(value: object) -> str:
    return _day_of(str(value)[:10])


def _month(value: object) -> str:
    return _month_of(str(value)[:10])


# A batch of notices shows the same few due dates over and over.
@lru_cache(maxsize=1024)
def _day_of(iso: str) -> str:
    return date.fromisoformat(iso).strftime("%d.%m.%Y")


@lru_cache(maxsize=1024)
def _month_of(iso: str) -> str:
    return date.fromisoformat(iso).strftime("%m.%Y")


def _when(value: object) -> str:
    instant = datetime.fromisoformat(str(value))
    if instant.tzinfo is None:
        raise ValueError(f"instant without a time zone: {value!r}")
    return instant.astimezone(WARSAW).strftime("%d.%m.%Y %H:%M")


def _sms_text(text: str) -> str:
    # Plain spaces only: a no-break space is outside GSM-7 and doubles the SMS cost.
    return " ".join(text.split())


def _context(
    language: str,
    payload: Mapping[str, Any],
    customer: Mapping[str, Any] | None,
    unsubscribe_url: str | None = None,
    attached: bool = False,
) -> tuple[str, dict[str, Any]]:
    """The template language (Polish unless ``language`` has templates) and context."""
    lang = language if language in LANGUAGES else "pl"
    return lang, {
        "p": payload,
        "customer": customer or {"name": "", "customer_no": ""},
        "attached": attached,
        "unsubscribe_url": unsubscribe_url,
    }


def _part(module: jinja2.environment.TemplateModule, name: str) -> str:
    """A part a template sets; Markup (already escaped) in the HTML environment."""
    return str(getattr(module, name))


def _environment(autoescape: bool) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=False,
        # The templates ship with the code: no stat() of the file at every notice.
        auto_reload=False,
    )
    env.filters.update(pln=_pln, day=_day, month=_month, when=_when)
    # The templates call no global (range, namespace, ...); without them a notice's context
    # is built without copying Jinja's default globals every time (a third of a render).
    env.globals.clear()
    return env


class Renderer:
    """Renders notices; templates are compiled once and cached."""

    def __init__(self) -> None:
        self._plain = _environment(autoescape=False)
        self._html = _environment(autoescape=True)

    def kinds(self, language: str = "pl") -> list[str]:
        """Every kind with a template in ``language``."""
        return sorted(p.stem for p in (TEMPLATES / language).glob("[a-z]*.j2"))

    def render_sms(
        self,
        kind: str,
        language: str,
        payload: Mapping[str, Any],
        customer: Mapping[str, Any] | None = None,
    ) -> tuple[str, str]:
        """The subject and the SMS text of notice ``kind``, without the e-mail parts.

        Raises DeliveryError (permanent) as ``render`` does.
        """
        lang, context = _context(language, payload, customer)
        try:
            plain = self._plain.get_template(f"{lang}/{kind}.j2").make_module(context)
            subject = ONE_LINE.sub(" ", _part(plain, "subject")).strip()
            return subject, _sms_text(_part(plain, "sms"))
        except (jinja2.TemplateError, ValueError, KeyError, TypeError) as exc:
            raise DeliveryError(f"cannot render {kind} in {lang}: {exc}", permanent=True) from exc

    def render(
        self,
        kind: str,
        language: str,
        payload: Mapping[str, Any],
        customer: Mapping[str, Any] | None = None,
        unsubscribe_url: str | None = None,
        attached: bool = False,
    ) -> Rendered:
        """Render notice ``kind`` in ``language``.

        Raises DeliveryError (permanent) if there is no template or the payload lacks a
        field the template needs.
        """
        lang, context = _context(language, payload, customer, unsubscribe_url, attached)
        try:
            plain = self._plain.get_template(f"{lang}/{kind}.j2").make_module(context)
            html = self._html.get_template(f"{lang}/{kind}.j2").make_module(context)
            subject = ONE_LINE.sub(" ", _part(plain, "subject")).strip()
            layout = {
                "subject": subject,
                "unsubscribe_url": unsubscribe_url,
                "body_text": _part(plain, "text").strip(),
                "body_html": Markup(_part(html, "html")),
            }
            text_page = self._plain.get_template(f"{lang}/_layout.j2").make_module(layout)
            html_page = self._html.get_template(f"{lang}/_layout.j2").make_module(layout)
        except (jinja2.TemplateError, ValueError, KeyError, TypeError) as exc:
            raise DeliveryError(f"cannot render {kind} in {lang}: {exc}", permanent=True) from exc
        return Rendered(
            subject=subject,
            text=_part(text_page, "text").strip() + "\n",
            html=_part(html_page, "html").strip() + "\n",
            sms=_sms_text(_part(plain, "sms")),
        )
