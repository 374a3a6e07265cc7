"""Consumption analysis page (SVG charts) and its CSV download."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from flask import Response, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from markupsafe import Markup
from psycopg.rows import DictRow

from billing_engine.periods import warsaw_day
from portal.auth import current_customer_id, login_required
from portal.charts import Bar, bar_chart
from portal.customer import bp, consumption, data
from portal.customer.readings import owned_meter
from portal.db import get_conn
from portal.uploads import safe_filename

MONTHS = 12
DAYS = 31


def _chosen_meter() -> DictRow | None:
    meter_id = request.args.get("meter", "")
    if meter_id:
        return owned_meter(meter_id)
    meters = data.meters(get_conn(), current_customer_id())
    return meters[0] if meters else None


def _year_ago(day: date) -> date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:
        return day.replace(year=day.year - 1, day=28)


@bp.get("/consumption", endpoint="consumption")
@login_required
def consumption_page() -> ResponseReturnValue:
    """Daily and monthly use with last year, similar households and the leak warning."""
    conn = get_conn()
    meter = _chosen_meter()
    if meter is None:
        return render_template("customer/consumption.html", meter=None, meters=[])
    now = datetime.now(UTC)
    today = warsaw_day(now)
    months = consumption.month_starts(today, MONTHS)
    days = consumption.daily_use(conn, meter["meter_id"], months[0], today)
    by_month = consumption.monthly_use(days)
    last_year = consumption.monthly_use(
        consumption.daily_use(conn, meter["meter_id"], _year_ago(months[0]), _year_ago(today))
    )
    medians = consumption.group_medians(conn, int(meter["tariff_id"]), months)
    return render_template(
        "customer/consumption.html",
        meter=meter,
        meters=data.meters(conn, current_customer_id()),
        monthly_chart=_monthly_chart(months, by_month, medians),
        daily_chart=_daily_chart([d for d in days if d.day > today - timedelta(days=DAYS)]),
        months=by_month,
        last_year={m.month.replace(year=m.month.year + 1): m for m in last_year},
        medians=medians,
        average=consumption.average_per_day(days),
        leak=consumption.night_flow_never_stops(
            consumption.night_readings(conn, meter["meter_id"], now), now
        ),
    )


def _monthly_chart(
    months: list[date], used: list[consumption.MonthUse], medians: dict[date, Decimal]
) -> Markup:
    found = {m.month: m for m in used}
    bars = [
        Bar(
            f"{m:%m.%y}",
            found[m].per_day_m3 if m in found else Decimal(0),
            _("%(month)s: %(value)s m³ per day", month=f"{m:%m.%Y}", value=found[m].per_day_m3)
            if m in found
            else "",
        )
        for m in months
    ]
    compare = [medians.get(m) for m in months]
    return bar_chart(
        bars,
        unit=_("m³/day"),
        title=_("Average use per day in each month"),
        compare=compare,
        compare_label=_("similar households (median)"),
    )


def _daily_chart(days: list[consumption.DayUse]) -> Markup:
    bars = [
        Bar(f"{d.day:%d.%m}", max(d.used_m3, Decimal(0)), f"{d.day:%d.%m.%Y}: {d.used_m3} m³")
        for d in days
    ]
    return bar_chart(bars, unit="m³", title=_("Use per day in the last 31 days"))


@bp.get("/consumption.csv")
@login_required
def consumption_csv() -> ResponseReturnValue:
    """The daily use of the chosen meter over the last year as CSV (semicolons, UTF-8)."""
    meter = _chosen_meter()
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";")
    writer.writerow(["meter_id", "day", "used_m3", "reading_m3"])
    if meter is not None:
        today = warsaw_day(datetime.now(UTC))
        first = consumption.month_starts(today, MONTHS)[0]
        for d in consumption.daily_use(get_conn(), meter["meter_id"], first, today):
            writer.writerow([meter["meter_id"], d.day.isoformat(), d.used_m3, d.value_m3])
    name = safe_filename(f"zuzycie-{meter['meter_id'] if meter else 'brak'}.csv")
    return Response(
        "\ufeff" + out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
