"""A receipt as a one-page PDF (fpdf2, pure Python): what the receipt page shows, in the
same words, for the patient to keep or the office to print."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

from fpdf import FPDF


def latin(text: str) -> str:
    """The PDF's core font holds Latin-1: accents stay, anything else becomes '?'."""
    return unicodedata.normalize("NFC", text).encode("latin-1", "replace").decode("latin-1")


def receipt_pdf(title: str, practice: str, facts: Sequence[tuple[str, str]], footer: str) -> bytes:
    """A page with the practice's name, the title ("Receipt", "Refund receipt") and each
    fact as a labelled line. Uncompressed: small, and its text can be read back as is."""
    pdf = FPDF(format="Letter")
    pdf.set_compression(False)
    pdf.set_title(latin(f"{title} - {practice}"))
    pdf.set_creator("payledger")
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, latin(practice), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 13)
    pdf.cell(0, 9, latin(title), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    for label, value in facts:
        pdf.set_font("Helvetica", "", 10)
        pdf.set_text_color(90, 100, 115)
        pdf.cell(45, 8, latin(label))
        pdf.set_font("Helvetica", "", 11)
        pdf.set_text_color(20, 30, 45)
        pdf.multi_cell(0, 8, latin(value), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    pdf.set_font("Helvetica", "", 9)
    pdf.set_text_color(90, 100, 115)
    pdf.multi_cell(0, 5, latin(footer), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
