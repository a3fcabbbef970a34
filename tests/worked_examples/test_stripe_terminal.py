"""Worked examples: a card reader at Elm Dental's front desk (Stripe Terminal, the fake).

The reader is registered with the code it shows, named, and then takes a payment in
Stripe's server-driven flow: the service hands the PaymentIntent to the reader and the
payment completes on the reader's result.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import stripe

from adapters.processor.stripe import StripeProcessor
from tests.conftest import Api, PinnedClock
from tests.fakes.stripe import FakeStripe
from tests.stripe_fixtures import served_fake_stripe, stripe_api  # noqa: F401

DAY = 24 * 3600


def register(api: Api, label: str = "Front desk") -> dict[str, Any]:
    answer = api.post(
        "/v1/terminal/readers", {"registration_code": "simulated-wpe", "label": label}
    )
    assert answer.status_code == 201, answer.text
    reader: dict[str, Any] = answer.json()
    return reader


def present_card_when_asked(
    fake: FakeStripe, account: str, reader_id: str, number: str = "4242424242424242"
) -> threading.Thread:
    """What the patient does at the reader: present a card once it asks for one."""
    client = stripe.StripeClient(fake.secret_key, base_addresses={"api": fake.base_url})
    options: Any = {"stripe_account": account}

    def present() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            action = client.v1.terminal.readers.retrieve(reader_id, {}, options).action
            if action is not None and action.status == "in_progress":
                client.v1.test_helpers.terminal.readers.present_payment_method(
                    reader_id, {"card_present": {"number": number}}, options
                )
                return
            time.sleep(0.05)

    thread = threading.Thread(target=present, daemon=True)
    thread.start()
    return thread


def test_a_reader_is_registered_named_and_listed_for_its_practice_only(
    api_for: Callable[..., Api], clock: PinnedClock, fake_stripe: FakeStripe
) -> None:
    api, _ = stripe_api(api_for, clock, fake_stripe)
    reader = register(api)
    assert reader["label"] == "Front desk"
    assert reader["device_type"] == "simulated_wisepos_e"
    renamed = api.client.patch(
        f"/v1/terminal/readers/{reader['id']}", json={"label": "Op 2"}, headers=api.admin
    )
    assert renamed.status_code == 200, renamed.text
    assert [r["label"] for r in api.get("/v1/terminal/readers").json()["items"]] == ["Op 2"]

    bad = api.post("/v1/terminal/readers", {"registration_code": "hello-world"})
    assert bad.status_code == 422
    assert bad.json()["field"] == "registration_code"

    other, _ = stripe_api(api_for, clock, fake_stripe)
    assert other.get("/v1/terminal/readers").json()["items"] == []
    stolen = other.post(
        "/v1/payments", {"method": "terminal", "terminal_id": reader["id"], "amount": 5000}
    )
    assert stolen.status_code == 422
    assert stolen.json()["field"] == "terminal_id"


def test_a_payment_at_the_reader_completes_on_its_result_and_is_captured_at_the_cut_off(
    api_for: Callable[..., Api], clock: PinnedClock, fake_stripe: FakeStripe
) -> None:
    api, account = stripe_api(api_for, clock, fake_stripe)
    reader = register(api)
    patient = present_card_when_asked(fake_stripe, account, reader["id"])
    answer = api.post(
        "/v1/payments", {"method": "terminal", "terminal_id": reader["id"], "amount": 18000}
    )
    patient.join(timeout=10)
    assert answer.status_code == 201, answer.text
    payment = answer.json()
    assert payment["status"] == "approved"
    assert payment["card"] == {"brand": "visa", "last4": "4242"}
    intent = next(i for i in fake_stripe.intents(account) if i["id"] == payment["transaction_id"])
    assert (intent["status"], intent["payment_method_types"]) == (
        "requires_capture",
        ["card_present"],
    )
    api.advance(DAY)
    assert api.get(f"/v1/payments/{payment['id']}").json()["status"] == "settled"
    assert fake_stripe.captures[payment["transaction_id"]] == 1


def test_a_card_declined_at_the_reader_is_recorded_as_declined(
    api_for: Callable[..., Api], clock: PinnedClock, fake_stripe: FakeStripe
) -> None:
    api, account = stripe_api(api_for, clock, fake_stripe)
    reader = register(api)
    patient = present_card_when_asked(fake_stripe, account, reader["id"], "4000000000000002")
    answer = api.post(
        "/v1/payments", {"method": "terminal", "terminal_id": reader["id"], "amount": 7000}
    )
    patient.join(timeout=10)
    assert answer.status_code == 201, answer.text
    assert (answer.json()["status"], answer.json()["decline_reason"]) == (
        "declined",
        "card declined",
    )


def test_a_card_never_presented_ends_the_wait_and_cancels_the_intent(
    fake_stripe: FakeStripe,
) -> None:
    account = fake_stripe.add_account()
    processor = StripeProcessor(
        fake_stripe.secret_key, api_base=fake_stripe.base_url, reader_timeout=0.5, reader_poll=0.1
    )
    reader = processor.register_reader(account, code="simulated-wpe", label=None, key="r1")
    result = processor.charge(
        reference=uuid.uuid4(), amount=5000, terminal_id=reader["id"], account=account
    )
    assert not result.approved
    assert result.decline_reason == "no card was presented at the reader in time"
    assert [i["status"] for i in fake_stripe.intents(account)] == ["canceled"]


def test_readers_need_stripe(api_for: Callable[..., Api], clock: PinnedClock) -> None:
    api = api_for("sqlite", clock).setup()
    answer = api.get("/v1/terminal/readers")
    assert answer.status_code == 409
    assert "sandbox" in answer.json()["detail"]
