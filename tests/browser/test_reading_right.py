"""Pages that must read right to an office: a payment's history, AR's figures, the
settings of each PMS, the links staff see, the sandbox clock and the receipts' copies."""

from __future__ import annotations

from tests.browser.conftest import Browse
from tests.browser.test_transactions import collect_by_card


def test_details_and_history_lists_the_payment_events(browse: Browse) -> None:
    browse.sign_in()
    collect_by_card(browse, "61.25")
    row = browse.page.locator("#transactions tbody tr", has_text="$61.25").first
    row.locator("summary:has-text('Actions')").click()
    row.locator("a:has-text('Details and history')").click()
    browse.page.wait_for_load_state()
    history = browse.page.inner_text("ol.history")
    assert "No history recorded" not in history
    assert "$61.25" in history
    assert "Robin Front" in history
    browse.shot("payment-history")
