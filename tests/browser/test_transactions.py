"""The Transactions tab as an office admin uses it: collect, void, refund, receipts."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.browser.conftest import Browse


def badge(browse: Browse) -> int:
    text = browse.page.locator("#badge-slot").inner_text().strip()
    return int(text) if text else 0


def collect_by_card(browse: Browse, amount: str, card: str = "4242 4242 4242 4242") -> None:
    browse.page.click("summary:has-text('Collect payment')")
    browse.page.click("text=Virtual terminal (key in a card)")
    browse.page.fill("#amount", amount)
    browse.page.fill("#card_number", card)
    browse.page.fill("#exp_month", "12")
    browse.page.fill("#exp_year", "2031")
    browse.page.fill("#cvc", "123")
    browse.page.click("button:has-text('Charge card')")
    browse.page.wait_for_load_state()


def test_a_virtual_terminal_payment_appears_with_the_badge_incremented(browse: Browse) -> None:
    browse.sign_in()
    before = badge(browse)
    collect_by_card(browse, "123.45")
    assert "Payment of $123.45 approved on visa ending 4242" in browse.page.inner_text("#notice")
    first = browse.page.locator("#transactions tbody tr").first
    assert "$123.45" in first.inner_text()
    assert "Needs posting" in first.inner_text()  # no patient: someone posts it by hand
    assert badge(browse) == before + 1
    browse.shot("collected")


def test_a_declined_card_says_so_and_takes_nothing(browse: Browse) -> None:
    browse.problems.expect("402")
    browse.sign_in()
    collect_by_card(browse, "20.00", card="4000000000000002")
    assert "declined" in browse.page.inner_text("#form-error").lower()
    assert browse.page.input_value("#amount") == "20.00"
    assert browse.page.input_value("#card_number") == ""  # a card number is never echoed


def test_a_same_day_payment_is_voided_through_actions(browse: Browse) -> None:
    browse.sign_in()
    collect_by_card(browse, "88.10")
    row = browse.page.locator("#transactions tbody tr", has_text="$88.10").first
    row.locator("summary:has-text('Actions')").click()
    row.locator("a:has-text('Refund')").click()
    explainer = browse.page.inner_text("#refund-explainer")
    assert "voided" in explainer and "no money is taken" in explainer
    browse.shot("void-confirm")
    browse.page.select_option("#reason", "duplicate")
    browse.page.click("button:has-text('Confirm void')")
    browse.page.wait_for_load_state()
    assert "Voided $88.10" in browse.page.inner_text("#notice")
    row = browse.page.locator("#transactions tbody tr", has_text="$88.10").first
    assert "Voided" in row.inner_text()


def settled_unrefunded(browse: Browse) -> Any:
    """The row of a settled payment with nothing refunded yet, on the settled list."""
    browse.go("/payments/transactions?status=settled")
    rows = browse.page.locator("#transactions tbody tr")
    for i in range(rows.count()):
        text = rows.nth(i).inner_text()
        if "Settled" in text and "$" in text:
            cells = rows.nth(i).locator("td")
            if not cells.nth(5).inner_text().strip():  # nothing refunded yet
                return rows.nth(i)
    raise AssertionError("the demo office has a settled payment without refunds")


def test_a_settled_payment_is_refunded_in_part(browse: Browse) -> None:
    browse.sign_in()
    target = settled_unrefunded(browse)
    amount = target.locator("td").nth(4).inner_text().strip()
    target.locator("summary:has-text('Actions')").click()
    target.locator("a:has-text('Refund')").click()
    assert "refunded" in browse.page.inner_text("#refund-explainer")
    assert browse.page.input_value("#amount") == amount.lstrip("$").replace(",", "")
    browse.page.fill("#amount", "10.00")
    browse.page.select_option("#reason", "overcharge")
    browse.shot("refund-confirm")
    browse.page.click("button:has-text('Confirm refund')")
    browse.page.wait_for_load_state()
    assert re.search(r"Refunded \$10\.00 on \w+ ending \d{4}", browse.page.inner_text("#notice"))


def test_a_refund_beyond_what_remains_is_refused_on_the_page(browse: Browse) -> None:
    browse.problems.expect("422")
    browse.sign_in()
    browse.go("/payments/transactions?status=settled")
    row = browse.page.locator("#transactions tbody tr").first
    row.locator("summary:has-text('Actions')").click()
    row.locator("a:has-text('Refund')").click()
    browse.page.fill("#amount", "999999.00")
    browse.page.select_option("#reason", "patient_request")
    browse.page.click("button:has-text('Confirm refund')")
    browse.page.wait_for_load_state()
    assert browse.page.locator("#form-error").is_visible()


def test_a_receipt_is_read_and_a_copy_sent(browse: Browse) -> None:
    browse.sign_in()
    row = browse.page.locator("#transactions tbody tr", has_text="Approved").first
    row.locator("summary:has-text('Receipt')").click()
    receipt = row.locator(".popover-body")
    text = receipt.inner_text()
    for label in ("Completed", "Amount", "Confirmation", "Transaction id", "Card"):
        assert label in text
    browse.shot("receipt-popover")
    receipt.locator("a:has-text('Open, print or send')").click()
    browse.page.fill("#email", "patient.copy@example.com")
    browse.page.fill("#confirm_email", "patient.copy@example.com")
    browse.page.click("button:has-text('Confirm and send')")
    browse.page.wait_for_load_state()
    assert "patient.copy@example.com" in browse.page.inner_text("#notice")
    assert any(m.get("recipient") == "patient.copy@example.com" for m in browse.sandbox_mailbox())


def test_mismatched_confirmation_email_is_refused(browse: Browse) -> None:
    browse.problems.expect("422")
    browse.sign_in()
    row = browse.page.locator("#transactions tbody tr", has_text="Approved").first
    browse.go(f"/payments/transactions/{row.get_attribute('data-id')}/receipt")
    browse.page.fill("#email", "one@example.com")
    browse.page.fill("#confirm_email", "two@example.com")
    browse.page.click("button:has-text('Confirm and send')")
    assert "differ" in browse.page.inner_text("#form-error")


def test_post_to_ledger_then_mark_as_associated(browse: Browse) -> None:
    browse.sign_in()
    collect_by_card(browse, "41.20")
    before = badge(browse)
    row = browse.page.locator("#transactions tbody tr", has_text="$41.20").first
    row.locator("summary:has-text('Actions')").click()
    row.locator("a:has-text('Post to Ledger')").click()
    entry = browse.page.inner_text("#ledger-entry")
    assert "41.20" in entry and "Payment number" in entry
    browse.page.fill("#pms_reference", "PN-7781")
    browse.page.click("#post-panel form.stack button:has-text('Mark as associated')")
    browse.page.wait_for_load_state()
    assert "marked as associated" in browse.page.inner_text("#notice")
    browse.go("/payments/transactions")
    row = browse.page.locator("#transactions tbody tr", has_text="$41.20").first
    assert "PN-7781" in row.inner_text()
    assert badge(browse) == before - 1


def test_the_list_and_badge_refresh_by_themselves(browse: Browse) -> None:
    browse.sign_in()
    before = badge(browse)
    response = httpx.post(
        browse.server.url + "/v1/payments",
        headers={"Authorization": f"Bearer {browse.server.admin_token}"},
        json={
            "method": "virtual_terminal",
            "amount": 7777,
            "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2031, "cvc": "123"},
        },
    )
    assert response.status_code == 201, response.text
    browse.page.wait_for_selector("#transactions tbody tr:has-text('$77.77')", timeout=15000)
    browse.page.wait_for_function(
        f"() => Number(document.querySelector('#badge-slot').innerText || 0) === {before + 1}",
        timeout=15000,
    )


def test_the_page_fits_a_tablet_and_is_keyboard_reachable(browse: Browse) -> None:
    browse.sign_in()
    browse.page.set_viewport_size({"width": 768, "height": 1024})
    browse.go("/payments/transactions")
    overflow = browse.page.evaluate(
        "() => document.documentElement.scrollWidth - window.innerWidth"
    )
    assert overflow <= 0, f"the page is {overflow}px wider than a tablet"
    browse.shot("tablet")
    # Tab from the top reaches the skip link, then the menu, then Collect payment.
    browse.page.keyboard.press("Tab")
    assert browse.page.evaluate("() => document.activeElement.textContent.trim()") == (
        "Skip to content"
    )
    for _ in range(12):
        browse.page.keyboard.press("Tab")
        if "Collect payment" in browse.page.evaluate("() => document.activeElement.textContent"):
            break
    else:
        raise AssertionError("Collect payment is not reachable with the keyboard")
    browse.page.keyboard.press("Enter")
    assert browse.page.locator("#collect-menu .dropdown-menu").is_visible()


def test_the_badge_shows_on_every_tab(browse: Browse) -> None:
    browse.sign_in()
    count = badge(browse)
    assert count > 0  # the demo office has payments to post
    for path in ("/payments/deposits", "/payments/requests", "/payments/ar"):
        browse.go(path)
        browse.page.wait_for_selector("#unassociated-badge", timeout=5000)
        assert badge(browse) == count
