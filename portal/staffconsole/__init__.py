"""The staff console's work pages on top of ``portal.staff``: customer search, meters and
their keys, the review queue of held readings, the complaints inbox, announcements,
tariffs and settlement runs. Every change is audit-logged with ``portal.staff.audit``.
"""

from __future__ import annotations

from flask import Blueprint, render_template
from flask.typing import ResponseReturnValue

from portal.staff import staff_required

bp = Blueprint("staffconsole", __name__, url_prefix="/staff")


@bp.get("/console")
@staff_required()
def index() -> ResponseReturnValue:
    """The console's work pages."""
    return render_template("staffconsole/index.html")


from portal.staffconsole import billing, customers, inbox  # noqa: E402,F401  (routes on bp)
