"""Refunds and voids carry a reason from a short list and a note (needed for Other): the
form asks for them, the payment's page and the refund's receipt show them, the history
keeps them on the events."""

from __future__ import annotations

from typing import Any

from tests.browser.conftest import Browse
from tests.browser.test_find_anything import api_get, shots
from tests.browser.test_transactions import collect_by_card, settled_unrefunded


def open_refund(browse: Browse, row: Any) -> None:
    row.locator("summary:has-text('Actions')").click()
    row.locator("a:has-text('Refund')").click()
    browse.page.wait_for_load_state()


def test_a_void_says_why_and_other_needs_a_note(browse: Browse) -> None:
    browse.problems.expect("422")
    browse.sign_in()
    collect_by_card(browse, "57.30")
    open_refund(browse, browse.page.locator("#transactions tbody tr", has_text="$57.30").first)
    reasons = browse.page.locator("#reason option")
    assert [reasons.nth(i).inner_text() for i in range(1, reasons.count())] == [
        "Patient request",
        "Duplicate payment",
        "Overcharge",
        "Treatment changed",
        "Other (say why in the note)",
    ]
    browse.page.select_option("#reason", "other")
    browse.page.click("button:has-text('Confirm void')")
    browse.page.wait_for_load_state()
    assert "Say why in the note when the reason is Other" in browse.page.inner_text("#form-error")
    assert browse.page.input_value("#reason") == "other"  # what was chosen stays
    browse.page.fill("#note", "Card of the wrong family member")
    browse.page.click("button:has-text('Confirm void')")
    browse.page.wait_for_load_state()
    assert "Voided $57.30" in browse.page.inner_text("#notice")

    row = browse.page.locator("#transactions tbody tr", has_text="$57.30").first
    payment_id = row.get_attribute("data-id")
    browse.go(f"/payments/transactions/{payment_id}")
    assert "Other — Card of the wrong family member" in browse.page.inner_text("#void-reason")
    history = api_get(browse, f"/v1/history/{payment_id}")["items"]
    [asked] = [e for e in history if e["type"] == "PaymentVoidRequested"]
    assert asked["data"]["reason"] == "other"
    assert asked["data"]["note"] == "Card of the wrong family member"


def test_a_refund_receipt_shows_its_reason(browse: Browse) -> None:
    browse.sign_in()
    target = settled_unrefunded(browse)
    payment_id = target.get_attribute("data-id")
    open_refund(browse, target)
    browse.page.fill("#amount", "5.00")
    browse.page.select_option("#reason", "treatment_changed")
    browse.page.fill("#note", "Crown became a filling")
    shots(browse, "refund-form", fits_phone="#refund-panel")
    browse.page.click("button:has-text('Confirm refund')")
    browse.page.wait_for_load_state()
    payment = api_get(browse, f"/v1/payments/{payment_id}")
    [refund] = [r for r in payment["refunds"] if r["amount"] == 500]
    assert (refund["reason"], refund["note"]) == ("treatment_changed", "Crown became a filling")

    browse.go(f"/payments/transactions/{payment_id}")
    assert "Treatment changed" in browse.page.inner_text(".refund-reason")
    browse.go(f"/payments/transactions/{payment_id}/receipt?refund_id={refund['id']}")
    assert browse.page.inner_text("#receipt-reason") == "Treatment changed — Crown became a filling"
    shots(browse, "refund-receipt", fits_phone="#receipt-panel")
