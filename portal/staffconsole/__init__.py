"""The staff console's work pages on top of ``portal.staff``: customer search, meters and
their keys, the review queue of held readings, the complaints inbox, announcements,
tariffs, settlement runs and unmatched bank credits. Every change is audit-logged with
``portal.staff.audit``.
"""

from __future__ import annotations

from flask import Blueprint, redirect, url_for
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString
from werkzeug.wrappers import Response

from portal.staff import current_staff, has_role, staff_required

bp = Blueprint("staffconsole", __name__, url_prefix="/staff")

# (endpoint, label, roles that may open it): the console's pages in the order staff see them.
PAGES: tuple[tuple[str, LazyString, tuple[str, ...]], ...] = (
    ("staffconsole.customers", _l("Customers"), ("customer_service", "billing")),
    ("staffconsole.complaints", _l("Complaints inbox"), ("customer_service",)),
    ("staffconsole.held", _l("Held readings"), ("billing",)),
    ("staffconsole.announcements", _l("Announcements"), ("customer_service",)),
    ("staffconsole.tariffs", _l("Tariffs"), ("billing",)),
    ("staffconsole.runs", _l("Settlement runs"), ("billing",)),
    ("staffconsole.unmatched_credits", _l("Unmatched payments"), ("billing",)),
    ("staff.approvals", _l("Approvals"), ("customer_service",)),
    ("staff.account_list", _l("Accounts"), ("customer_service",)),
)


def console_pages() -> list[tuple[str, str]]:
    """The (endpoint, label) of every console page the logged-in staff user may open."""
    staff = current_staff()
    if staff is None:
        return []
    return [
        (endpoint, str(label))
        for endpoint, label, roles in PAGES
        if any(has_role(staff, role) for role in roles)
    ]


@bp.app_context_processor
def _inject_console_pages() -> dict[str, object]:
    return {"console_pages": console_pages}


@bp.get("/console")
@staff_required()
def index() -> Response:
    """The console's pages are listed on the staff home."""
    return redirect(url_for("staff.home"))


from portal.staffconsole import (  # noqa: E402,F401  (routes on bp)
    billing,
    customers,
    inbox,
    payments,
)
