"""What a person sees while something runs and when a form is wrong: a bar at the top and a
busy button that cannot be pressed twice; every field's mistake beside its field, all at
once, with what was typed kept."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from tests.browser.conftest import Browse
from tests.browser.test_requests import pay_link_sent_to, send_request


def field_message(browse: Browse, field: str) -> str:
    """The message beside a field, found the way a screen reader finds it."""
    page = browse.page
    assert page.get_attribute(f"#{field}", "aria-invalid") == "true", field
    described = page.get_attribute(f"#{field}", "aria-describedby") or ""
    ids = described.split()
    assert ids, f"{field} names no message"
    message = page.locator(f"#{ids[0]}")
    assert message.is_visible(), field
    # beside its field: the message is the field's next element or inside its cell
    beside = page.evaluate(
        """([f, m]) => {
          const field = document.getElementById(f), msg = document.getElementById(m);
          return field.nextElementSibling === msg || field.parentElement.contains(msg);
        }""",
        [field, ids[0]],
    )
    assert beside, f"the message of {field} is not beside it"
    return str(message.inner_text())


def fill(browse: Browse, **fields: str) -> None:
    for name, value in fields.items():
        browse.page.fill(f"#{name}", value)


def test_every_mistake_in_the_virtual_terminal_shows_beside_its_field(browse: Browse) -> None:
    browse.problems.expect("422")
    browse.sign_in()
    browse.go("/payments/collect/virtual")
    fill(browse, amount="12.345", card_number="4242 4242 4242 4241", exp_month="13")
    fill(browse, exp_year="2031", cvc="12")
    browse.page.click("button:has-text('Charge card')")
    browse.page.wait_for_load_state()
    assert "dollars and cents" in field_message(browse, "amount")
    assert "valid card number" in field_message(browse, "card_number")
    assert "1 to 12" in field_message(browse, "exp_month")
    assert "3 or 4 digits" in field_message(browse, "cvc")
    assert browse.page.get_attribute("#exp_year", "aria-invalid") is None  # 2031 is right
    summary = browse.page.inner_text("#form-error")
    assert summary.startswith("4 entries need fixing"), summary
    # what was typed stays, except the card's number and code, which are never echoed
    assert browse.page.input_value("#amount") == "12.345"
    assert browse.page.input_value("#exp_month") == "13"
    assert browse.page.input_value("#card_number") == ""
    browse.shot("virtual-terminal-mistakes", full=True)
    browse.page.set_viewport_size({"width": 390, "height": 844})
    assert browse.page.evaluate("document.documentElement.scrollWidth") <= 390
    browse.shot("virtual-terminal-mistakes-phone", full=True)


def test_a_request_without_patient_or_amount_says_both(browse: Browse) -> None:
    browse.problems.expect("422")
    browse.sign_in()
    browse.go("/payments/collect/request")
    browse.page.fill("#destination", "someone@browser.example")
    browse.page.click("button:has-text('Send request')")
    browse.page.wait_for_load_state()
    assert "patient" in field_message(browse, "patient_id").lower()
    assert "amount" in field_message(browse, "amount").lower()
    assert browse.page.input_value("#destination") == "someone@browser.example"


def test_adding_a_person_with_several_mistakes_says_each(browse: Browse) -> None:
    browse.problems.expect("422")
    browse.sign_in()
    browse.go("/settings")
    browse.page.fill("#invite-name", "Pat New")
    browse.page.fill("#invite-email", "")
    browse.page.fill("#invite-password", "short")
    browse.page.click("#invite-form button[type=submit]")
    browse.page.wait_for_load_state()
    assert "email" in field_message(browse, "invite-email").lower()
    assert field_message(browse, "invite-password")
    assert browse.page.get_attribute("#invite-name", "aria-invalid") is None
    assert browse.page.input_value("#invite-name") == "Pat New"
    browse.shot("invite-mistakes", full=True)


def test_the_pay_page_says_every_mistake_at_once(browse: Browse) -> None:
    browse.problems.expect("422")
    browse.sign_in()
    send_request(browse, 1, "30.00", "mistakes@browser.example")
    link = pay_link_sent_to(browse, "mistakes@browser.example")
    browse.page.goto(link)
    fill(browse, amount="abc", card_number="1234", exp_month="12", exp_year="2031", cvc="")
    browse.page.click("#pay-button")
    browse.page.wait_for_load_state()
    assert "dollars and cents" in field_message(browse, "amount")
    assert "card number" in field_message(browse, "card_number").lower()
    assert "cvc" in field_message(browse, "cvc").lower()
    assert browse.page.input_value("#amount") == "abc"
    assert "3 entries" in browse.page.inner_text("#error")
    browse.page.set_viewport_size({"width": 390, "height": 844})
    assert browse.page.evaluate("document.documentElement.scrollWidth") <= 390
    browse.shot("pay-page-mistakes-phone", full=True)


@dataclass
class Held:
    """Requests to `pattern` held unanswered (as on a slow connection) until let go."""

    browse: Browse
    pattern: str
    routes: list[Any] = field(default_factory=list)

    def hold(self, route: Any) -> None:
        self.routes.append(route)

    def let_go(self) -> None:
        deadline = time.monotonic() + 10
        while not self.routes and time.monotonic() < deadline:
            self.browse.page.wait_for_timeout(50)
        assert self.routes, f"no request to {self.pattern} was made"
        for route in self.routes:
            route.continue_()
        self.routes.clear()
        self.browse.page.unroute(self.pattern, self.hold)


def hold_requests(browse: Browse, pattern: str) -> Held:
    held = Held(browse, pattern)
    browse.page.route(pattern, held.hold)
    return held


def stall(browse: Browse, pattern: str) -> list[str]:
    """Answer the forms sent to `pattern` with 204 No Content: the browser stays on the
    page as it does while an answer is slow to come, and the test reads the page then.
    The list fills with each request that was sent."""
    sent: list[str] = []

    def answer(route: Any) -> None:
        sent.append(route.request.url)
        route.fulfill(status=204)

    browse.page.route(pattern, answer)
    return sent


def test_a_pressed_button_is_busy_and_cannot_send_twice(browse: Browse) -> None:
    browse.sign_in()
    browse.go("/payments/collect/terminal")
    browse.page.fill("#amount", "17.25")
    sent = stall(browse, "**/payments/collect/terminal")
    browse.page.click("button:has-text('Charge on terminal')")
    button = "#collect-form button[type=submit]"
    browse.page.wait_for_function(f"document.querySelector('{button}').disabled")
    assert browse.page.get_attribute(button, "aria-busy") == "true"
    assert browse.page.is_visible("#busy"), "the bar at the top shows while the form is sent"
    browse.shot("busy-button")
    # a second press (Enter in a field) sends nothing
    browse.page.evaluate("document.getElementById('collect-form').requestSubmit()")
    browse.page.wait_for_timeout(300)
    assert len(sent) == 1, sent
    # the page kept by the browser, shown again with Back, may be sent again
    browse.page.unroute("**/payments/collect/terminal")
    browse.go("/payments/collect/terminal")
    browse.page.fill("#amount", "17.25")
    browse.page.click("button:has-text('Charge on terminal')")
    browse.page.wait_for_url("**/payments/transactions")
    assert "Payment of $17.25 approved" in browse.page.inner_text("#notice")
    assert not browse.page.is_visible("#busy")


def test_a_deposit_opened_with_htmx_shows_the_bar_and_a_busy_button(browse: Browse) -> None:
    browse.sign_in()
    browse.go("/payments/deposits")
    pattern = "**/payments/deposits/*/row*"
    held = hold_requests(browse, pattern)
    browse.page.locator("#deposits .expander").first.click(no_wait_after=True)
    browse.page.wait_for_selector("#busy:not([hidden])")
    # an htmx button stays focusable (the keyboard keeps its place) but is marked
    # disabled, and a second press while it is busy sends nothing
    busy = browse.page.evaluate(
        "Array.from(document.querySelectorAll('#deposits .expander')).some("
        "b => b.getAttribute('aria-disabled') === 'true' && b.getAttribute('aria-busy') === 'true')"
    )
    assert busy, "the pressed arrow shows busy and is disabled while its request runs"
    sent: list[str] = []
    browse.page.on("request", lambda r: sent.append(r.url) if "/row" in r.url else None)
    browse.page.locator("#deposits .expander").first.click(no_wait_after=True, force=True)
    browse.page.wait_for_timeout(300)
    assert sent == [], "a second press of a busy button sent its request again"
    held.let_go()
    browse.page.wait_for_selector("#busy", state="hidden")
    assert browse.page.locator("#deposits tr.deposit-items").count() >= 1
    assert browse.page.locator("#deposits .expander[aria-busy]").count() == 0


def working(browse: Browse, button: str, words: str, pattern: str) -> None:
    """Press a long action's button: while its answer is on the way the button says
    `words` and cannot be pressed, and the bar shows."""
    sent = stall(browse, pattern)
    browse.page.click(button)
    browse.page.wait_for_function(
        "([s, w]) => { const b = document.querySelector(s);"
        " return b && b.disabled && b.textContent.includes(w); }",
        arg=[button, words],
    )
    assert browse.page.is_visible("#busy")
    assert len(sent) == 1, sent
    browse.shot(words.split()[0].lower())
    browse.page.unroute(pattern)


def test_long_actions_say_working(browse: Browse) -> None:
    """Moving the sandbox clock, a PMS sync and a bulk send each say they are working."""
    browse.page.on("dialog", lambda dialog: dialog.accept())
    browse.sign_in()
    browse.go("/payments/status")
    first = browse.page.get_attribute("button[id^=advance-]", "id")
    working(browse, f"#{first}", "Moving the clock", "**/payments/status/clock")
    browse.go("/payments/ar")
    working(browse, "#ar-sync-now button", "Syncing with the PMS", "**/payments/ar/sync")
    browse.go("/payments/ar?bulk=1")
    working(browse, "#bulk-send-button", "Sending requests", "**/payments/ar/bulk")
