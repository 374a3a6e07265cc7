"""The settlement report of a period: invoices and totals per tariff group (CSV or XLSX).

The totals are sums of the issued invoices' own amounts, so they reconcile to the invoices
by construction; ``reconcile`` checks it against the store independently.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from billing_engine.db import connect
from billing_engine.periods import period_for_label
from meterflow.errors import BillingError

MONEY = ["net_gr", "vat_gr", "gross_gr"]
VOLUMES = ["water_m3", "sewage_m3"]


def invoices_frame(conninfo: str, label: str) -> pd.DataFrame:
    """One row per issued invoice whose period starts in month ``label``."""
    start = period_for_label(label, "monthly").start
    with connect(conninfo) as conn, conn.cursor() as cur:
        cur.execute(_INVOICES, (start,))
        columns = [c.name for c in cur.description or ()]
        frame = pd.DataFrame(cur.fetchall(), columns=columns)
    for name in MONEY:
        frame[name] = frame[name].astype("int64")
    return frame


def group_totals(invoices: pd.DataFrame) -> pd.DataFrame:
    """Totals per tariff group plus a TOTAL row: invoice count, volumes, net, VAT, gross."""
    grouped = invoices.groupby("tariff_group", sort=True).agg(
        invoices=("invoice_no", "count"),
        **{name: (name, "sum") for name in VOLUMES + MONEY},
    )
    total = grouped.sum(numeric_only=False).to_frame("TOTAL").T
    totals = pd.concat([grouped, total])
    totals.index.name = "tariff_group"
    return totals.reset_index()


def write_report(conninfo: str, label: str, out: Path) -> pd.DataFrame:
    """Write the report of ``label`` to ``out`` (.csv: totals; .xlsx: totals and invoices).

    Raises BillingError if the file type is neither .csv nor .xlsx.
    """
    invoices = invoices_frame(conninfo, label)
    totals = group_totals(invoices)
    if out.suffix.lower() == ".csv":
        totals.to_csv(out, index=False)
    elif out.suffix.lower() == ".xlsx":
        with pd.ExcelWriter(out, engine="openpyxl") as writer:
            totals.to_excel(writer, sheet_name="totals", index=False)
            invoices.to_excel(writer, sheet_name="invoices", index=False)
    else:
        raise BillingError(f"report file {out} must end in .csv or .xlsx")
    return totals.iloc[:-1]


def reconcile(conninfo: str, label: str, totals: pd.DataFrame) -> None:
    """Check the report's gross per tariff group against the store's ledger charges.

    Raises BillingError if any group's gross differs from its booked charges.
    """
    start = period_for_label(label, "monthly").start
    with connect(conninfo) as conn:
        rows = conn.execute(_LEDGER, (start,)).fetchall()
    booked = {str(r[0]): int(r[1]) for r in rows}
    groups = totals["tariff_group"].astype(str).tolist()
    reported = dict(zip(groups, totals["gross_gr"].astype("int64").tolist(), strict=True))
    if booked != reported:
        raise BillingError(f"report {label} does not reconcile: {reported} vs ledger {booked}")


_INVOICES = """
SELECT i.invoice_no, i.kind, t.tariff_group, c.contract_no, cu.customer_no,
       i.period_start, i.period_end, i.issue_date, i.due_date, i.estimated,
       coalesce(sum(l.quantity) FILTER (WHERE l.kind = 'water'), 0) AS water_m3,
       coalesce(sum(l.quantity) FILTER (WHERE l.kind = 'sewage'), 0) AS sewage_m3,
       i.net_gr, i.vat_gr, i.gross_gr
FROM invoices i
JOIN contracts c USING (contract_id)
JOIN customers cu ON cu.customer_id = i.customer_id
JOIN tariffs t ON t.tariff_id = c.tariff_id
LEFT JOIN invoice_lines l ON l.invoice_id = i.invoice_id
WHERE i.status = 'issued' AND i.period_start = %s
GROUP BY i.invoice_id, t.tariff_group, c.contract_no, cu.customer_no
ORDER BY i.invoice_id
"""

_LEDGER = """
SELECT t.tariff_group, sum(e.amount_gr)
FROM ledger_entries e JOIN invoices i USING (invoice_id) JOIN contracts c USING (contract_id)
JOIN tariffs t ON t.tariff_id = c.tariff_id
WHERE i.period_start = %s GROUP BY t.tariff_group
"""
