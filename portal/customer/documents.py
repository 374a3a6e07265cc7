"""Application and contract forms as small PDFs, written once from Polish text with fpdf2
and the Roboto font billing already uses (so Polish letters render)."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from fpdf import FPDF

from billing_engine.pdf import FONT_DIR, SELLER


@dataclass(frozen=True)
class FormDocument:
    """A downloadable form: file name, title and its fields (label, lines to fill in)."""

    slug: str
    title: str
    intro: str
    fields: tuple[tuple[str, int], ...]


_APPLICANT = (
    ("Imię i nazwisko / nazwa wnioskodawcy", 1),
    ("Adres zamieszkania / siedziby", 1),
    ("PESEL / NIP", 1),
    ("Telefon, e-mail", 1),
)
FORMS: tuple[FormDocument, ...] = (
    FormDocument(
        "wniosek-warunki-przylaczenia",
        "Wniosek o wydanie warunków przyłączenia do sieci wodociągowej i kanalizacyjnej",
        "Proszę o określenie warunków przyłączenia nieruchomości do sieci.",
        _APPLICANT
        + (
            ("Adres i numer działki nieruchomości", 1),
            ("Przeznaczenie nieruchomości i liczba lokali", 1),
            ("Zapotrzebowanie na wodę [m³/dobę]", 1),
            ("Ilość odprowadzanych ścieków [m³/dobę]", 1),
            ("Uwagi", 3),
        ),
    ),
    FormDocument(
        "wniosek-zawarcie-umowy",
        "Wniosek o zawarcie umowy o zaopatrzenie w wodę i odprowadzanie ścieków",
        "Proszę o zawarcie umowy dla wskazanej nieruchomości.",
        _APPLICANT
        + (
            ("Adres nieruchomości (punktu poboru)", 1),
            ("Tytuł prawny do nieruchomości", 1),
            ("Stan wodomierza głównego przy przejęciu [m³]", 1),
            ("Zakres usług: woda / ścieki", 1),
            ("Adres do korespondencji (jeśli inny)", 2),
        ),
    ),
    FormDocument(
        "umowa-zaopatrzenie-w-wode",
        "Umowa o zaopatrzenie w wodę i odprowadzanie ścieków (wzór)",
        "Umowa zawarta pomiędzy Przedsiębiorstwem a Odbiorcą usług. Przedsiębiorstwo "
        "zobowiązuje się dostarczać wodę o jakości przeznaczonej do spożycia przez ludzi i "
        "odbierać ścieki; Odbiorca zobowiązuje się terminowo regulować należności według "
        "taryfy. Rozliczenia odbywają się na podstawie wskazań wodomierza głównego.",
        _APPLICANT
        + (
            ("Adres nieruchomości", 1),
            ("Numer wodomierza głównego", 1),
            ("Okres rozliczeniowy", 1),
            ("Data i podpisy stron", 2),
        ),
    ),
)


def by_slug(slug: str) -> FormDocument | None:
    """The form named ``slug``, or None."""
    return next((f for f in FORMS if f.slug == slug), None)


def render(form: FormDocument) -> bytes:
    """The PDF of ``form``: header, title, introduction and lined fields to fill in."""
    pdf = FPDF(format="A4")
    pdf.add_font("Roboto", "", str(FONT_DIR / "Roboto-Regular.ttf"))
    pdf.add_font("Roboto", "B", str(FONT_DIR / "Roboto-Bold.ttf"))
    pdf.set_title(form.title)
    pdf.add_page()
    pdf.set_font("Roboto", "", 9)
    pdf.multi_cell(0, 5, "\n".join(SELLER), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    pdf.set_font("Roboto", "B", 14)
    pdf.multi_cell(0, 8, form.title, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.set_font("Roboto", "", 10)
    pdf.multi_cell(0, 6, form.intro, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    for label, lines in form.fields:
        pdf.set_font("Roboto", "B", 10)
        pdf.cell(0, 7, label + ":", new_x="LMARGIN", new_y="NEXT")
        for _ in range(lines):
            pdf.cell(0, 8, "", border="B", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2)
    pdf.ln(10)
    pdf.set_font("Roboto", "", 10)
    pdf.cell(0, 6, "Miejscowość, data: ....................        Podpis: ....................")
    return bytes(pdf.output())


def cached(form: FormDocument, directory: Path) -> bytes:
    """The PDF of ``form``, written to ``directory`` on first use (atomically)."""
    path = directory / f"{form.slug}.pdf"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    content = render(form)
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
    with os.fdopen(fd, "wb") as out:
        out.write(content)
    os.replace(tmp, path)
    return content
