"""The Patients tab and a patient's page as an office admin uses them: find a patient by
name, add one, keep a card on file while collecting a payment (with the patient's consent),
charge it from the patient's page, make a payment plan that the scheduler charges, and
cancel it. Screenshots at 1280x800, 768x1024 and 390x844; nothing of these pages reaches
past the screen's width."""

from __future__ import annotations

import time
from typing import Any

from tests.browser.conftest import Browse

SIZES = {"desktop": (1280, 800), "tablet": (768, 1024), "phone": (390, 844)}


def shots_at_every_size(browse: Browse, name: str) -> None:
    """A screenshot at each size, and no sideways scrolling at any of them."""
    for size, (width, height) in SIZES.items():
        browse.page.set_viewport_size({"width": width, "height": height})
        browse.shot(f"{name}-{size}", full=True)
        assert not too_wide(browse, width), f"{name} at {width}px: {too_wide(browse, width)}"
    browse.page.set_viewport_size({"width": 1280, "height": 800})


def too_wide(browse: Browse, width: int) -> list[str]:
    """The innermost elements of these pages that reach past the page's width (the
    Payments header and tabs, shared by every tab, are left to their own checks)."""
    found: list[str] = browse.page.evaluate(
        """(width) => [...document.querySelectorAll('main *')]
        .filter(e => !e.closest('.page-head, nav.tabs') && e.checkVisibility())
        .filter(e => e.getBoundingClientRect().right > width + 1)
        .filter(e => ![...e.children].some(c => c.getBoundingClientRect().right > width + 1))
        .slice(0, 5).map(e => e.tagName + '#' + e.id + '.' + e.className)""",
        width,
    )
    return found


def add_patient(browse: Browse, pms_number: str, first: str, last: str) -> None:
    browse.go("/payments/patients")
    browse.page.click("#add-patient summary")
    browse.page.fill("#pms_patient_id", pms_number)
    browse.page.fill("#first_name", first)
    browse.page.fill("#last_name", last)
    browse.page.fill("#email", f"{first.lower()}@browser.example")
    browse.page.click("button:has-text('Add patient')")
    browse.page.wait_for_load_state()
    assert f"{first} {last} was added" in browse.page.inner_text("#notice")


def collect_keeping_card(browse: Browse, amount: str, number: str = "4242424242424242") -> None:
    """From the patient's page: Collect payment, keyed in, keeping the card on file."""
    browse.page.click("#patient-collect")
    browse.page.wait_for_load_state()
    browse.page.fill("#amount", amount)
    browse.page.fill("#card_number", number)
    browse.page.fill("#exp_month", "12")
    browse.page.fill("#exp_year", "2031")
    browse.page.fill("#cvc", "123")
    browse.page.check("#keep_card")
    browse.page.click("button:has-text('Charge card')")
    browse.page.wait_for_load_state()


def reload_until(browse: Browse, selector: str, text: str, timeout: float = 20) -> Any:
    """Reload until `selector` shows `text` (the scheduler runs the due work)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = browse.page.locator(selector).first
        if text in found.inner_text():
            return found
        time.sleep(0.5)
        browse.page.reload()
    raise AssertionError(f"{selector} never showed {text!r}: {found.inner_text()}")


def test_find_a_patient_by_name_and_add_one(browse: Browse) -> None:
    browse.sign_in()
    browse.go("/payments/transactions")
    browse.page.click("nav.tabs >> text=Patients")
    browse.page.fill("#q", "cohen")
    browse.page.click("button:has-text('Search')")
    rows = browse.page.locator("#patients tbody tr")
    assert rows.count() >= 1 and "Cohen" in rows.first.inner_text()
    shots_at_every_size(browse, "patients-search")

    rows.first.locator("a.patient-link").click()
    browse.page.wait_for_load_state()
    assert "Cohen" in browse.page.inner_text("#patient-head")
    assert "Snoozed" in browse.page.inner_text("#balance")  # the demo snoozed this family
    assert "0 to 30 days" in browse.page.inner_text("#balance")
    assert browse.page.get_attribute("#patient-request", "href").endswith(
        browse.page.url.rsplit("/", 1)[1]
    )
    shots_at_every_size(browse, "patient-page")

    # The add form refuses what the API refuses, in the form's words, and keeps what was typed.
    browse.go("/payments/patients")
    browse.page.click("#add-patient summary")
    browse.page.fill("#pms_patient_id", "B-100")
    browse.page.fill("#first_name", "Paula")
    browse.page.fill("#last_name", "Ames")
    browse.page.fill("#phone", "call me")
    browse.problems.expect("status of 422")
    browse.page.click("button:has-text('Add patient')")
    problem = browse.page.inner_text("#form-error")
    assert "phone" in problem.lower() and "body." not in problem
    assert browse.page.input_value("#first_name") == "Paula"
    browse.page.fill("#phone", "+1 617 555 0199")
    browse.page.click("button:has-text('Add patient')")
    browse.page.wait_for_load_state()
    assert "Paula Ames was added" in browse.page.inner_text("#notice")
    assert "No card on file" in browse.page.inner_text("#cards")

    # Names in the other tabs lead to the patient's page.
    browse.go("/payments/ar")
    browse.page.locator("#ar-actions a.patient-link").first.click()
    browse.page.wait_for_load_state()
    assert "/payments/patients/" in browse.page.url


def test_a_card_kept_on_collect_is_charged_from_the_patients_page(browse: Browse) -> None:
    browse.sign_in()
    add_patient(browse, "B-200", "Carla", "Keeps")
    collect_keeping_card(browse, "25.00")
    assert "/payments/patients/" in browse.page.url
    notice = browse.page.inner_text("#notice")
    assert "Payment of $25.00 approved" in notice and "ending 4242 is on file" in notice
    cards = browse.page.inner_text("#cards")
    assert "Visa •••• 4242" in cards and "On file" in cards and "Consent given" in cards
    shots_at_every_size(browse, "card-on-file")

    browse.page.fill("#cards input[name=amount]", "40.00")
    browse.page.click("#cards button:has-text('Charge card')")
    browse.page.wait_for_load_state()
    assert "Payment of $40.00 approved" in browse.page.inner_text("#notice")
    payments = browse.page.inner_text("#patient-payments")
    assert "$40.00" in payments and "Card on file" in payments and "$25.00" in payments

    # It is in Transactions like any payment, with the patient's name linking back.
    browse.go("/payments/transactions")
    row = browse.page.locator("#transaction-rows tr", has_text="$40.00").first
    assert "Carla Keeps" in row.inner_text()

    # Removed, it can no longer be charged.
    browse.go("/payments/patients")
    browse.page.fill("#q", "Keeps")
    browse.page.click("button:has-text('Search')")
    browse.page.click("a.patient-link:has-text('Keeps')")
    browse.page.click("#cards button:has-text('Remove')")
    browse.page.wait_for_load_state()
    assert "was removed" in browse.page.inner_text("#notice")
    assert "Removed" in browse.page.inner_text("#cards")
    assert browse.page.locator("#cards input[name=amount]").count() == 0


def test_a_payment_plan_is_charged_on_schedule_and_cancelled(browse: Browse) -> None:
    browse.sign_in()
    add_patient(browse, "B-300", "Pat", "Planner")
    assert "keep a card first" in browse.page.inner_text("#plans")
    collect_keeping_card(browse, "10.00")

    browse.page.click("#new-plan summary")
    browse.page.fill("#plan-amount", "100.00")
    browse.page.fill("#plan-total", "300.00")
    browse.page.fill("#plan-every", "1")
    browse.page.select_option("#plan-unit", "months")
    browse.page.click("button:has-text('Make plan')")
    browse.page.wait_for_load_state()
    assert "Payment plan made: $100.00 every month until $300.00" in browse.page.inner_text(
        "#notice"
    )

    # The first charge is due today: the scheduler charges it through the processor.
    plan = reload_until(browse, "article.plan", "Paid $100.00 of $300.00")
    lines = plan.locator(".plan-schedule tbody tr")
    assert lines.count() == 3
    assert "Paid" in lines.nth(0).inner_text() and "Scheduled" in lines.nth(1).inner_text()
    assert "Plan" in browse.page.inner_text("#patient-payments")
    shots_at_every_size(browse, "plan-active")

    plan.locator("summary:has-text('Cancel plan')").click()
    plan.locator("input[name=reason]").fill("paid the rest in cash")
    plan.locator("button:has-text('Cancel plan')").click()
    browse.page.wait_for_load_state()
    assert "The payment plan was cancelled" in browse.page.inner_text("#notice")
    ended = browse.page.inner_text("article.plan")
    assert "Cancelled" in ended and "by Robin Front: paid the rest in cash" in ended
    assert "Not charged" in ended
    shots_at_every_size(browse, "plan-cancelled")

    # Its charge is in Transactions, marked as a plan's charge.
    browse.go("/payments/transactions")
    row = browse.page.locator("#transaction-rows tr", has_text="Pat Planner").first
    assert "Payment plan" in row.inner_text() and "$100.00" in row.inner_text()
