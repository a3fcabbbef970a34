"""Every message of the patient's pay page reads as a sentence: a capital letter, a full
stop, no stray or unbalanced brackets, no API field names."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import BACKENDS, NO_RATE_LIMITS, Api, PinnedClock
from tests.worked_examples.test_payment_requests import DAY, new_patient, pay, pay_path, send

MESSAGE = re.compile(r'id="(?:result|error)">(.*?)</p>', re.S)


@pytest.fixture(params=BACKENDS)
def api(api_for: Callable[..., Api], clock: PinnedClock, request: pytest.FixtureRequest) -> Api:
    """The suite's API, without the request-rate limits: these pages are sent to one
    link many times a second here (the limits have tests of their own; the pay page's
    failed-attempt limit, which these test, stays)."""
    return api_for(str(request.param), clock, rate_limits=NO_RATE_LIMITS).setup()


def message(response: Any) -> str:
    found = MESSAGE.search(response.text)
    assert found, response.text
    return html.unescape(found.group(1)).strip()


def assert_sentence(text: str) -> None:
    assert text[0].isupper(), text
    assert text.endswith((".", "!", "?")), text
    assert " )" not in text and "( " not in text and " ." not in text, text
    assert text.count("(") == text.count(")"), text
    assert not re.search(r"\b(card|request)\.[a-z_]+", text), text  # no field names


def test_an_expired_link_says_when_it_expired_in_a_sentence(api: Api) -> None:
    request = send(api, new_patient(api), 9900)
    api.advance(14 * DAY)  # the expiry job cancels it as expired
    page = api.client.get(pay_path(request))
    assert page.status_code == 410
    assert message(page) == "This payment link expired on March 18, 2026."
    assert message(pay(api, request)) == "This payment link expired on March 18, 2026."


def test_an_expired_link_reads_the_same_before_the_expiry_job_ran(
    api: Api, clock: PinnedClock
) -> None:
    request = send(api, new_patient(api), 9900)
    clock.move(days=14, seconds=1)  # real time passes; the expiry job has not run
    page = api.client.get(pay_path(request))
    assert page.status_code == 410
    assert message(page) == "This payment link expired on March 18, 2026."


def test_every_pay_page_message_is_a_sentence(api: Api) -> None:
    patient = new_patient(api)
    first = send(api, patient, 5000)
    second = send(api, patient, 5000)  # supersedes the first
    messages = [message(pay(api, first))]
    for form in (
        {"amount": "50.01"},
        {"amount": "abc"},
        {"amount": "0"},
        {"card_number": "1234"},
        {"card_number": "4242424242424241"},
        {"exp_month": "13"},
        {"exp_month": "x"},
        {"exp_year": "1999"},
        {"exp_year": "2020"},
        {"cvc": "1"},
        {"card_number": "4000000000000002"},
        {"card_number": "4000000000009995"},
    ):
        request = send(api, new_patient(api, str(600 + len(messages))), 5000)
        refused = pay(api, request, **form)
        assert refused.status_code in (402, 422), (form, refused.status_code)
        messages.append(message(refused))
    for _ in range(5):
        pay(api, second, card_number="4000000000000002")
    limited = pay(api, second)
    assert limited.status_code == 429
    messages.append(message(limited))
    cancelled = send(api, new_patient(api, "502"), 4000)
    api.post(f"/v1/payment-requests/{cancelled['id']}/cancel")
    messages.append(message(pay(api, cancelled)))
    paid = send(api, new_patient(api, "503"), 4000)
    received = pay(api, paid)
    assert received.status_code == 200
    assert "Visa ending in 4242" in received.text  # the brand as the patient knows it
    messages.append(message(received))
    messages.append(message(pay(api, paid)))
    messages.append(message(api.client.get("/pay/not-a-token")))
    for text in messages:
        assert_sentence(text)
    assert "The card number must be 12 to 19 digits." in messages
    assert "The expiry month must be 1 to 12." in messages
    assert "The CVC must be 3 or 4 digits." in messages


def test_a_part_paid_link_says_what_is_still_owed(api: Api) -> None:
    request = send(api, new_patient(api), 12000)
    assert pay(api, request, amount="50").status_code == 200

    # Not "already paid": the link asks for the $70.00 still owed, and says what is paid.
    page = api.client.get(pay_path(request))
    assert page.status_code == 200
    assert "already paid" not in page.text
    assert 'aria-label="Amount due">$70.00</p>' in page.text
    assert "$50.00 of $120.00 is paid." in page.text
    assert "You may pay up to $70.00." in page.text
    assert ">Pay $70.00</button>" in page.text

    too_much = pay(api, request, amount="70.01")
    assert too_much.status_code == 422
    assert message(too_much) == (
        "The amount may be at most the $70.00 still owed ($50.00 of $120.00 is paid), not $70.01."
    )
    assert_sentence(message(too_much))

    assert pay(api, request, amount="70").status_code == 200
    done = api.client.get(pay_path(request))
    assert message(done) == "This request has already been paid. Thank you."
