"""Worked examples: Stripe's webhooks, verified and applied once.

Elm Dental processes its cards on Stripe; Stripe signs each webhook with the
endpoint's secret (`Stripe-Signature`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from tests.conftest import Api, PinnedClock
from tests.fakes.stripe import FakeStripe, sign
from tests.stripe_fixtures import served_fake_stripe, stripe_api  # noqa: F401

DAY = 24 * 3600
SECRET = "whsec_test_payledger"


def deliver(api: Api, event: dict[str, Any], secret: str = SECRET, **sign_at: int) -> Any:
    payload = json.dumps(event).encode()
    return api.client.post(
        "/webhooks/stripe",
        content=payload,
        headers={"Stripe-Signature": sign(payload, secret, **sign_at)},
    )


def pay(api: Api, amount: int) -> dict[str, Any]:
    body = {"method": "virtual_terminal", "amount": amount, "payment_method": "pm_card_visa"}
    answer = api.post("/v1/payments", body)
    assert answer.status_code == 201, answer.text
    paid: dict[str, Any] = answer.json()
    return paid


def test_an_authorisation_cancelled_at_stripe_takes_the_payment_out_of_the_batch_once(
    api_for: Callable[..., Api], clock: PinnedClock, fake_stripe: FakeStripe
) -> None:
    api, account = stripe_api(api_for, clock, fake_stripe)
    payment = pay(api, 6000)
    # Someone cancels the authorisation in Stripe's dashboard; Stripe says so.
    fake_stripe.expire_authorization(payment["transaction_id"])
    intent = next(i for i in fake_stripe.intents(account) if i["id"] == payment["transaction_id"])
    event = fake_stripe.event("payment_intent.canceled", intent, account)
    first = deliver(api, event)
    assert first.status_code == 200, first.text
    assert first.json() == {"received": True, "id": event["id"], "replayed": False}
    after = api.get(f"/v1/payments/{payment['id']}").json()
    assert after["status"] == "voided"
    assert "cancelled at Stripe" in after["capture_failure"]

    # Stripe delivers it again: nothing changes.
    history = len(api.get(f"/v1/payments/{payment['id']}").json()["history"])
    again = deliver(api, event)
    assert again.json()["replayed"] is True
    assert len(api.get(f"/v1/payments/{payment['id']}").json()["history"]) == history

    # At the cut-off nothing of it is captured.
    api.advance(DAY)
    assert fake_stripe.captures[payment["transaction_id"]] == 0


def test_a_forged_or_stale_webhook_is_refused_and_nothing_recorded(
    api_for: Callable[..., Api], clock: PinnedClock, fake_stripe: FakeStripe
) -> None:
    api, account = stripe_api(api_for, clock, fake_stripe)
    payment = pay(api, 6000)
    fake_stripe.expire_authorization(payment["transaction_id"])
    intent = next(i for i in fake_stripe.intents(account) if i["id"] == payment["transaction_id"])
    event = fake_stripe.event("payment_intent.canceled", intent, account)

    forged = deliver(api, event, secret="whsec_someone_else")
    assert forged.status_code == 422
    assert forged.json()["type"] == "/problems/webhook-signature-invalid"
    stale = deliver(api, event, timestamp=int(time.time()) - 301)
    assert stale.status_code == 422
    unsigned = api.client.post("/webhooks/stripe", content=json.dumps(event).encode())
    assert unsigned.status_code == 422
    assert api.get(f"/v1/payments/{payment['id']}").json()["status"] == "approved"

    # The genuine one is still taken (its id was never recorded).
    assert deliver(api, event).json()["replayed"] is False


def test_an_unknown_event_type_is_acknowledged_and_ignored(
    api_for: Callable[..., Api], clock: PinnedClock, fake_stripe: FakeStripe
) -> None:
    api, account = stripe_api(api_for, clock, fake_stripe)
    event = fake_stripe.event("customer.created", {"id": "cus_1", "object": "customer"}, account)
    answer = deliver(api, event)
    assert answer.status_code == 200
    assert answer.json()["replayed"] is False


def test_webhooks_are_off_without_stripe(api_for: Callable[..., Api], clock: PinnedClock) -> None:
    api = api_for("sqlite", clock).setup()
    payload = b'{"id": "evt_1", "type": "payout.paid"}'
    answer = api.client.post(
        "/webhooks/stripe", content=payload, headers={"Stripe-Signature": sign(payload, SECRET)}
    )
    assert answer.status_code == 404
