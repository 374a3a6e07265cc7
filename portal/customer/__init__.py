"""The customer e-office pages: dashboard, readings, consumption, invoices and payments,
complaints, contact data and notices, documents and information.

Every object a customer names by id (meter, invoice, complaint, attachment, reading
request) is fetched by a query that also filters on the logged-in customer, so another
customer's id is a 404 (see ``portal.auth.one_owned_or_404``).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from flask import Blueprint
from flask.blueprints import BlueprintSetupState

from billing_engine.money import format_pln
from portal.i18n import current_language

WARSAW = ZoneInfo("Europe/Warsaw")
bp = Blueprint("customer", __name__, url_prefix="/ebok", static_folder="static")
bp.add_app_template_global(format_pln, "format_pln")


@bp.app_template_filter("localtime")
def localtime(at: datetime | None) -> str:
    """An instant as Warsaw wall-clock time, e.g. ``21.11.2026 10:00``."""
    return at.astimezone(WARSAW).strftime("%d.%m.%Y %H:%M") if at else ""


@bp.app_template_filter("m3")
def m3(value: Decimal | None) -> str:
    """A volume with three decimals (litres) as the page's language writes it: ``1 234,500``
    in Polish, ``1,234.500`` in English; empty for None."""
    return m3_text(value, current_language())


def m3_text(value: Decimal | None, language: str) -> str:
    """The ``m3`` filter for a known language (for tables formatted in one pass)."""
    if value is None:
        return ""
    text = f"{value:,.3f}"
    if language == "pl":
        text = text.replace(",", "\u00a0").replace(".", ",")
    return text


@bp.record_once
def _make_home(state: BlueprintSetupState) -> None:
    # Customers land on the dashboard after login unless the app was told otherwise.
    if not state.app.config.get("CUSTOMER_HOME"):
        state.app.config["CUSTOMER_HOME"] = "customer.dashboard"


from portal.customer import (  # noqa: E402,F401  (routes register on bp)
    complaints,
    consumption_views,
    info,
    money,
    profile,
    readings,
    views,
)
