"""Invoice PDF (fpdf2) with the Roboto TrueType font of the ``font-roboto`` package, so
Polish letters (ą ć ę ł ń ó ś ź ż) render from a font the project installs itself."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

import font_roboto
from fpdf import FPDF

from billing_engine.db import connect
from billing_engine.money import format_pln
from meterflow.errors import BillingError

FONT_DIR = Path(font_roboto.font_directory)
SELLER = (
    "Miejskie Przedsiębiorstwo Wodociągów i Kanalizacji Sp. z o.o.",
    "ul. Główna 20, 42-500 Będzin",
    "NIP 6250000000",
)


@dataclass(frozen=True)
class InvoiceDocument:
    """What an invoice PDF shows."""

    invoice_no: str
    kind: str
    issue_date: date
    due_date: date
    period_start: date
    period_end: date
    buyer: tuple[str, str, str | None]
    lines: tuple[tuple[str, Decimal, str, Decimal, int, Decimal], ...]
    net_grosze: int
    vat_grosze: int
    gross_grosze: int
    estimated: bool


def load_document(conninfo: str, invoice_id: int) -> InvoiceDocument:
    """The issued invoice ``invoice_id`` as a document.

    Raises BillingError if there is no issued invoice with that id.
    """
    with connect(conninfo) as conn:
        head = conn.execute(_HEAD, (invoice_id,)).fetchone()
        if head is None:
            raise BillingError(f"no issued invoice with id {invoice_id}")
        lines = conn.execute(_LINES, (invoice_id,)).fetchall()
    return InvoiceDocument(
        head[0],
        head[1],
        head[2],
        head[3],
        head[4],
        head[5],
        (head[6], head[7], head[8]),
        tuple((r[0], r[1], r[2], r[3], int(r[4]), r[5]) for r in lines),
        int(head[9]),
        int(head[10]),
        int(head[11]),
        bool(head[12]),
    )


def render(doc: InvoiceDocument) -> bytes:
    """The PDF of ``doc``."""
    logging.getLogger("fontTools").setLevel(logging.WARNING)
    pdf = FPDF(format="A4")
    pdf.add_font("Roboto", "", str(FONT_DIR / "Roboto-Regular.ttf"))
    pdf.add_font("Roboto", "B", str(FONT_DIR / "Roboto-Bold.ttf"))
    pdf.add_page()
    title = "Faktura korygująca" if doc.kind == "correction" else "Faktura VAT"
    pdf.set_font("Roboto", "B", 16)
    pdf.cell(0, 10, f"{title} nr {doc.invoice_no}", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Roboto", "", 10)
    for text in (
        f"Data wystawienia: {doc.issue_date:%d.%m.%Y}    Termin płatności: {doc.due_date:%d.%m.%Y}",
        f"Okres rozliczeniowy: {doc.period_start:%d.%m.%Y} – {doc.period_end:%d.%m.%Y}",
        "",
        "Sprzedawca: " + ", ".join(SELLER),
        "Nabywca: " + ", ".join(p for p in doc.buyer if p),
    ):
        pdf.multi_cell(0, 6, text, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    _table(pdf, doc)
    pdf.ln(4)
    pdf.set_font("Roboto", "B", 12)
    pdf.cell(0, 8, f"Do zapłaty: {format_pln(doc.gross_grosze)}", new_x="LMARGIN", new_y="NEXT")
    if doc.estimated:
        pdf.set_font("Roboto", "", 9)
        pdf.multi_cell(0, 5, "Zużycie częściowo szacunkowe; zostanie skorygowane po odczycie.")
    return bytes(pdf.output())


def _table(pdf: FPDF, doc: InvoiceDocument) -> None:
    widths = (78, 20, 14, 24, 26, 14)
    head = ("Pozycja", "Ilość", "J.m.", "Cena netto", "Wartość netto", "VAT")
    pdf.set_font("Roboto", "B", 9)
    for width, text in zip(widths, head, strict=True):
        pdf.cell(width, 7, text, border=1)
    pdf.ln()
    pdf.set_font("Roboto", "", 9)
    for description, quantity, unit, price, net, vat in doc.lines:
        cells = (
            description,
            f"{quantity:f}",
            unit,
            f"{price:f}",
            format_pln(net),
            f"{vat * 100:.0f}%",
        )
        for width, text in zip(widths, cells, strict=True):
            pdf.cell(width, 7, text, border=1)
        pdf.ln()
    pdf.set_font("Roboto", "B", 9)
    summary = (
        f"Razem netto {format_pln(doc.net_grosze)}, VAT {format_pln(doc.vat_grosze)}"
        f", brutto {format_pln(doc.gross_grosze)}"
    )
    pdf.cell(sum(widths), 7, summary, border=1)
    pdf.ln()


def write_invoice_pdf(conninfo: str, invoice_id: int, out: Path) -> None:
    """Write the PDF of issued invoice ``invoice_id`` to ``out``.

    Raises BillingError if there is no issued invoice with that id.
    """
    out.write_bytes(render(load_document(conninfo, invoice_id)))


_HEAD = """
SELECT i.invoice_no, i.kind, i.issue_date, i.due_date, i.period_start, i.period_end,
       c.name, c.address, CASE WHEN c.nip IS NULL THEN NULL ELSE 'NIP ' || c.nip END,
       i.net_gr, i.vat_gr, i.gross_gr, i.estimated
FROM invoices i JOIN customers c USING (customer_id)
WHERE i.invoice_id = %s AND i.status = 'issued'
"""
_LINES = """
SELECT description, quantity, unit, unit_price, net_gr, vat_rate
FROM invoice_lines WHERE invoice_id = %s ORDER BY line_no
"""
