"""A receipt as a one-page PDF (fpdf2, pure Python): what the receipt page shows, in the
same words, for the patient to keep or the office to print."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

from fpdf import FPDF

from services import wording


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


def payment_receipt_pdf(
    receipt: Mapping[str, Any], refund_id: str | None, timezone: str
) -> tuple[bytes, str] | None:
    """The PDF of a payment's receipt (the receipt answer, services/app/answers.py
    `receipt_out`), or of one of its refunds (`refund_id`), with its file name; None when
    the payment has no such refund. The dashboard's download and the API's answer both."""
    refund = next((r for r in receipt["refunds"] if r["refund_id"] == refund_id), None)
    if refund_id and refund is None:
        return None
    local = wording.LocalTime(timezone)
    part = refund or receipt
    facts = [
        ("Completed", local.datetime(part["completed_at"])),
        ("Amount", wording.money(part["amount"])),
        ("Confirmation", str(part["confirmation"]).capitalize()),
    ]
    if refund is None and receipt["decline_reason"] and receipt["confirmation"] == "declined":
        facts.append(("Reason", receipt["decline_reason"]))
    why, note = (
        (refund["reason"], refund["note"])
        if refund
        else (receipt["void_reason"], receipt["void_note"])
    )
    if why:
        facts.append(("Reason", wording.label(why) + (f": {note}" if note else "")))
    facts += [
        ("Transaction id", part["transaction_id"] or "none (no money moved)"),
        ("Card", f"{receipt['card']['brand'].capitalize()} ending {receipt['card']['last4']}"),
    ]
    title = "Refund receipt" if refund else "Receipt"
    pdf = receipt_pdf(title, receipt["practice_name"], facts, "Thank you.")
    return pdf, f"receipt-{(refund_id or receipt['payment_id'])[:8]}.pdf"


def pdf_headers(name: str) -> dict[str, str]:
    """A receipt's PDF is a download, never kept by a cache (it names a patient's payment)."""
    return {"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"}
