"""The Payment requests tab as an office admin uses it: send a request, the patient pays it on
the pay page, and it reads Completed; cancel one by hand; resend one; the CSV."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from tests.browser.conftest import Browse

PAY_LINK = re.compile(r"https?://[^\s\"'<>]+/pay/[A-Za-z0-9._~-]+")


def pay_link_sent_to(browse: Browse, recipient: str, timeout: float = 20) -> str:
    """The pay link in the newest message to `recipient` (the scheduler delivers it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in browse.sandbox_mailbox():
            if message["recipient"] == recipient:
                found = PAY_LINK.search(str(message["body"]))
                assert found, message["body"]
                return found.group(0)
        time.sleep(0.25)
    raise AssertionError(f"no message reached {recipient} within {timeout}s")


def send_request(browse: Browse, patient_index: int, amount: str, email: str) -> None:
    browse.page.click("summary:has-text('Collect payment')")
    browse.page.click("text=Payment request (text or email)")
    browse.page.select_option("#patient_id", index=patient_index)
    browse.page.fill("#amount", amount)
    browse.page.check("input[name=channel][value=email]")
    browse.page.fill("#destination", email)
    browse.page.check("input[name=override_snooze]")
    browse.page.click("button:has-text('Send request')")
    browse.page.wait_for_load_state()


def request_row(browse: Browse, amount: str) -> Any:
    return browse.page.locator("#requests tbody tr", has_text=amount).first


def test_a_request_paid_on_the_pay_page_reads_completed(browse: Browse) -> None:
    browse.sign_in()
    send_request(browse, 3, "61.23", "pay.link@browser.example")
    assert browse.page.url.endswith("/payments/requests")
    assert "A payment request for $61.23 was sent by email" in browse.page.inner_text("#notice")
    row = request_row(browse, "$61.23")
    assert "Requested" in row.inner_text()
    browse.shot("requested")

    link = pay_link_sent_to(browse, "pay.link@browser.example")
    browse.page.goto(link)
    assert "$61.23" in browse.page.inner_text("body")
    browse.page.fill("#card_number", "4242424242424242")
    browse.page.fill("#exp_month", "12")
    browse.page.fill("#exp_year", "2031")
    browse.page.fill("#cvc", "123")
    browse.page.click("button:has-text('Pay')")
    browse.page.wait_for_load_state()
    assert "was approved" in browse.page.inner_text("#result")
    browse.shot("paid")

    browse.go("/payments/requests")
    row = request_row(browse, "$61.23")
    cells = row.locator("td").all_inner_texts()
    assert "Completed" in cells[4]
    assert cells[3].strip().startswith("$61.23")  # paid in full
    assert cells[5].strip() == ""  # no cancel reason
    row.locator("summary:has-text('Actions')").click()
    row.get_by_role("link", name="History", exact=True).click()
    history = browse.page.inner_text("#request-history")
    assert "Sent $61.23 by email to pay.link@browser.example" in history
    assert "Paid $61.23" in history


def test_a_request_cancelled_by_hand_reads_cancelled_by_staff(browse: Browse) -> None:
    browse.problems.expect("410")  # the cancelled link, opened at the end, is gone
    browse.sign_in()
    send_request(browse, 4, "47.19", "cancel.me@browser.example")
    row = request_row(browse, "$47.19")
    row.locator("summary:has-text('Actions')").click()
    row.locator("a:has-text('Cancel request')").click()
    assert "will stop working" in browse.page.inner_text("#confirm-explainer")
    browse.shot("cancel-confirm")
    browse.page.click("button:has-text('Confirm cancel')")
    browse.page.wait_for_load_state()
    assert "is cancelled" in browse.page.inner_text("#notice")
    row = request_row(browse, "$47.19")
    cells = row.locator("td").all_inner_texts()
    assert "Cancelled" in cells[4]
    assert cells[5].strip() == "Staff"
    browse.go("/payments/requests?status=cancelled")
    assert "Staff" in request_row(browse, "$47.19").inner_text()
    browse.go("/payments/requests?status=requested")
    assert request_row(browse, "$47.19").count() == 0
    # the patient's link no longer takes a payment
    link = pay_link_sent_to(browse, "cancel.me@browser.example")
    browse.page.goto(link)
    assert browse.page.locator("#card_number").count() == 0


def test_a_resent_request_supersedes_the_old_one(browse: Browse) -> None:
    browse.sign_in()
    send_request(browse, 5, "33.71", "resend.me@browser.example")
    row = request_row(browse, "$33.71")
    row.locator("summary:has-text('Actions')").click()
    row.locator("a:has-text('Resend')").click()
    explainer = browse.page.inner_text("#confirm-explainer")
    assert "supersedes" in explainer and "resend.me@browser.example" in explainer
    browse.shot("resend-confirm")
    # another test on this server may have snoozed the family since the first request
    browse.page.check("input[name=override_snooze]")
    browse.page.click("button:has-text('Send new request')")
    browse.page.wait_for_load_state()
    notice = browse.page.inner_text("#notice")
    assert "A new payment request for $33.71" in notice and "superseded" in notice
    rows = browse.page.locator("#requests tbody tr", has_text="$33.71")
    assert rows.count() == 2
    newest, older = (
        rows.nth(0).locator("td").all_inner_texts(),
        rows.nth(1).locator("td").all_inner_texts(),
    )
    assert "Requested" in newest[4]
    assert "Cancelled" in older[4] and older[5].strip() == "Superseded"


def test_the_requests_csv_downloads_with_its_header(browse: Browse, tmp_path: Path) -> None:
    browse.sign_in()
    browse.go("/payments/requests")
    name, rows = browse.download_csv("#requests-csv")
    assert name.startswith("payment-requests-")
    assert rows[0][:3] == ["id", "date", "sent_at"]
    assert len(rows) > 1


def test_the_requests_list_fits_a_tablet(browse: Browse) -> None:
    browse.page.set_viewport_size({"width": 768, "height": 1024})
    browse.sign_in()
    browse.go("/payments/requests")
    assert browse.page.locator("#requests tbody tr").count() > 1
    width = browse.page.evaluate("document.documentElement.scrollWidth")
    assert width <= 768, f"the page scrolls sideways at tablet width ({width}px)"
    table = browse.page.evaluate("document.getElementById('requests').scrollWidth")
    wrap = browse.page.evaluate("document.getElementById('requests').parentElement.clientWidth")
    assert table <= wrap, f"the table is cut at tablet width ({table} > {wrap})"
    browse.shot("tablet", full=True)


def test_the_pay_button_follows_the_amount_typed_and_a_part_paid_link_says_what_is_owed(
    browse: Browse,
) -> None:
    browse.sign_in()
    send_request(browse, 2, "123.45", "part.payer@browser.example")
    link = pay_link_sent_to(browse, "part.payer@browser.example")
    browse.page.goto(link)
    button = browse.page.locator("#pay-button")
    assert button.inner_text() == "Pay $123.45"

    # The patient types 50: the button says what will be charged.
    browse.page.fill("#amount", "50")
    assert button.inner_text() == "Pay $50.00"
    browse.shot("pay-button-follows")
    browse.page.fill("#amount", "1,000")  # more than is owed: no amount on the button
    assert button.inner_text() == "Pay"
    browse.page.fill("#amount", "fifty")
    assert button.inner_text() == "Pay"
    browse.page.fill("#amount", "$50.5")
    assert button.inner_text() == "Pay $50.50"

    browse.page.fill("#amount", "50.00")
    browse.page.fill("#card_number", "4242424242424242")
    browse.page.fill("#exp_month", "12")
    browse.page.fill("#exp_year", "2031")
    browse.page.fill("#cvc", "123")
    button.click()
    browse.page.wait_for_load_state()
    assert "Your payment of $50.00 was approved" in browse.page.inner_text("#result")

    # The same link, opened again, asks for what is still owed.
    browse.page.goto(link)
    body = browse.page.inner_text("main")
    assert "Still owed on this payment request" in body
    assert "$73.45" in browse.page.inner_text(".amount")
    assert "$50.00 of $123.45 is paid." in body
    assert browse.page.input_value("#amount") == "73.45"
    assert button.inner_text() == "Pay $73.45"
    browse.shot("part-paid-link", full=True)

    # The office sees it still requested, with what is paid, and the part payment in
    # its history.
    browse.go("/payments/requests")
    row = request_row(browse, "$123.45")
    cells = row.locator("td").all_inner_texts()
    assert "Requested" in cells[4]
    assert cells[3].strip().startswith("$50.00")
    row.locator("summary:has-text('Actions')").click()
    row.get_by_role("link", name="History", exact=True).click()
    assert "Paid $50.00 of it" in browse.page.inner_text("#request-history")
