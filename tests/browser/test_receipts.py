"""Receipts as an office gives them: printed (the print stylesheet leaves the receipt alone
on the page), downloaded as a PDF, sent by text or email with the patient's contact filled
in from their record."""

from __future__ import annotations

import re
from typing import Any

from tests.browser.conftest import Browse
from tests.browser.test_find_anything import api_get, shots


def patient_payment(browse: Browse) -> dict[str, Any]:
    """An approved or settled payment of a patient with an email address and a phone."""
    for t in api_get(browse, "/v1/transactions", limit=100)["items"]:
        if t["patient_id"] and t["status"] in ("approved", "settled"):
            patient = api_get(browse, f"/v1/patients/{t['patient_id']}")
            if patient.get("email") and patient.get("phone"):
                return {**t, "patient": patient}
    raise AssertionError("the demo office has a payment of a patient with email and phone")


def test_the_receipt_prints_alone_and_downloads_as_a_pdf(browse: Browse) -> None:
    browse.sign_in()
    t = patient_payment(browse)
    browse.go(f"/payments/transactions/{t['id']}/receipt")
    assert browse.page.inner_text("#receipt-confirmation") == "Approved"
    browse.page.emulate_media(media="print")
    assert not browse.page.locator(".menu").is_visible()
    assert not browse.page.locator("#send-copy").is_visible()
    assert not browse.page.locator(".tabs").is_visible()
    assert browse.page.locator(".receipt-practice").is_visible()
    browse.shot("printed", full=True)
    browse.page.emulate_media(media="screen")

    with browse.page.expect_download() as info:
        browse.page.click("#receipt-pdf")
    saved = browse.shots / info.value.suggested_filename
    info.value.save_as(saved)
    data = saved.read_bytes()
    assert data.startswith(b"%PDF-")
    text = b" ".join(re.findall(rb"\((.*?)\) Tj", data)).decode("latin-1")
    assert "Receipt" in text and "Approved" in text
    assert f"${t['amount'] / 100:,.2f}" in text
    assert f"ending {t['card']['last4']}" in text
    assert str(t["transaction_id"]) in text
    shots(browse, "receipt", fits_phone="#receipt-panel")


def test_a_receipt_is_texted_to_the_number_on_the_patients_record(browse: Browse) -> None:
    browse.sign_in()
    t = patient_payment(browse)
    browse.go(f"/payments/transactions/{t['id']}/receipt")
    assert browse.page.input_value("#email") == t["patient"]["email"]
    assert browse.page.input_value("#confirm_email") == t["patient"]["email"]
    assert not browse.page.locator("#phone").is_visible()  # email is the default channel
    browse.page.check("#by-text")
    assert browse.page.input_value("#phone") == t["patient"]["phone"]
    assert not browse.page.locator("#email").is_visible()
    browse.shot("send-by-text")
    browse.page.click("#send-copy button:has-text('Confirm and send')")
    browse.page.wait_for_load_state()
    assert f"sent by text to {t['patient']['phone']}" in browse.page.inner_text("#notice")
    [latest, *_] = browse.sandbox_mailbox()
    assert latest["channel"] == "sms" or "receipt" in latest["body"]
    assert f"${t['amount'] / 100:,.2f}" in latest["body"]


def test_a_mistyped_number_is_asked_again(browse: Browse) -> None:
    browse.problems.expect("422")
    browse.sign_in()
    t = patient_payment(browse)
    browse.go(f"/payments/transactions/{t['id']}/receipt")
    browse.page.check("#by-text")
    browse.page.fill("#phone", "617 555 0101")
    browse.page.fill("#confirm_phone", "617 555 0199")
    browse.page.click("#send-copy button:has-text('Confirm and send')")
    browse.page.wait_for_load_state()
    assert "differ" in browse.page.inner_text("#form-error")
    assert browse.page.is_checked("#by-text")
    assert browse.page.input_value("#phone") == "617 555 0101"
