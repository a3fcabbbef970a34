"""Worked examples: with Stripe, the pay page and the virtual terminal take the card in
Stripe's Payment Element and post only the PaymentMethod id it gives (`payment_method`).

Stripe.js cannot run here; these post the form as Stripe.js would
(`payment_method=pm_card_visa`), against the Stripe fake.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from services.web.security import CONTENT_SECURITY_POLICY
from tests.conftest import Api, ComponentsFactory, PinnedClock
from tests.e2e.test_secrets_scan import sign_in
from tests.fakes.stripe import FakeStripe
from tests.stripe_fixtures import served_fake_stripe, stripe_api  # noqa: F401
from tests.worked_examples.test_payment_requests import new_patient, pay_path, send

PUBLISHABLE = "pk_test_payledger_element"


def element_api(
    api_for: Callable[..., Api], clock: PinnedClock, fake: FakeStripe
) -> tuple[Api, str]:
    def with_key(*args: Any, **settings: Any) -> Api:
        return api_for(*args, stripe_publishable_key=PUBLISHABLE, **settings)

    return stripe_api(with_key, clock, fake)


def check_element_page(answer: Any, account: str) -> None:
    assert answer.status_code == 200, answer.text
    policy = answer.headers["content-security-policy"]
    assert "script-src 'self' https://js.stripe.com" in policy
    assert "frame-src https://js.stripe.com" in policy
    assert "connect-src 'self' https://api.stripe.com" in policy
    assert 'id="payment-element"' in answer.text
    assert f'data-key="{PUBLISHABLE}"' in answer.text
    assert f'data-account="{account}"' in answer.text
    assert '<script src="https://js.stripe.com/v3/" defer></script>' in answer.text
    assert '<script src="/static/stripe-element.js" defer></script>' in answer.text
    assert 'name="card_number"' not in answer.text
    assert 'name="cvc"' not in answer.text
    assert "<script>" not in answer.text  # no inline script


def test_the_pay_page_posts_the_payment_method_from_stripes_element(
    api_for: Callable[..., Api], clock: PinnedClock, fake_stripe: FakeStripe
) -> None:
    api, account = element_api(api_for, clock, fake_stripe)
    request = send(api, new_patient(api), 8000)
    page = api.client.get(pay_path(request))
    check_element_page(page, account)
    attempt = re.search(r'name="attempt" value="([^"]+)"', page.text)
    assert attempt is not None

    # Posted without the element's answer (Stripe.js never ran): a sentence, nothing taken.
    empty = api.client.post(
        pay_path(request), data={"attempt": attempt.group(1), "amount": "80.00"}
    )
    assert empty.status_code == 422
    assert "The card form did not send the card" in empty.text
    assert fake_stripe.intents(account) == []

    paid = api.client.post(
        pay_path(request),
        data={"attempt": attempt.group(1), "amount": "80.00", "payment_method": "pm_card_visa"},
    )
    assert paid.status_code == 200, paid.text
    assert "Your payment of $80.00 was approved" in paid.text
    (intent,) = fake_stripe.intents(account)
    assert (intent["payment_method"], intent["amount"], intent["status"]) == (
        "pm_card_visa",
        8000,
        "requires_capture",
    )
    done = api.get(f"/v1/payment-requests/{request['id']}").json()
    assert done["status"] == "completed"


def test_the_virtual_terminal_posts_the_payment_method_from_stripes_element(
    api_for: Callable[..., Api],
    clock: PinnedClock,
    fake_stripe: FakeStripe,
    make_components: ComponentsFactory,
) -> None:
    api, account = element_api(api_for, clock, fake_stripe)
    web, _ = sign_in(api, make_components.made[-1])
    form = web.get("/payments/collect/virtual")
    check_element_page(form, account)
    terminal = web.get("/payments/collect/terminal")
    assert terminal.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    key = re.search(r'name="idempotency_key" value="([^"]+)"', form.text)
    assert csrf is not None and key is not None
    fields = {"csrf_token": csrf.group(1), "idempotency_key": key.group(1), "amount": "42.50"}
    declined = web.post(
        "/payments/collect/virtual",
        data={**fields, "payment_method": "pm_card_chargeDeclined"},
        follow_redirects=True,
    )
    assert "declined (card declined)" in declined.text
    key2 = re.search(r'name="idempotency_key" value="([^"]+)"', declined.text)
    assert key2 is not None
    approved = web.post(
        "/payments/collect/virtual",
        data={**fields, "idempotency_key": key2.group(1), "payment_method": "pm_card_visa"},
        follow_redirects=True,
    )
    assert approved.status_code == 200, approved.text
    assert "Payment of $42.50 approved on visa ending 4242" in approved.text
    methods = sorted(i["payment_method"] or "" for i in fake_stripe.intents(account))
    assert methods == ["", "pm_card_visa"]  # the declined intent keeps no method


def test_the_sandbox_keeps_the_card_fields_and_the_strict_policy(api: Api) -> None:
    request = send(api, new_patient(api), 8000)
    page = api.client.get(pay_path(request))
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "js.stripe.com" not in page.text
    assert 'name="card_number"' in page.text


def test_the_patient_keeps_their_card_on_the_pay_page_with_stripe(
    api_for: Callable[..., Api], clock: PinnedClock, fake_stripe: FakeStripe
) -> None:
    """The consent box is on the pay page with Stripe: the card is kept for the patient's
    Customer first (a SetupIntent), then charged as the card on file."""
    api, account = element_api(api_for, clock, fake_stripe)
    patient = new_patient(api)
    request = send(api, patient, 8000)
    page = api.client.get(pay_path(request))
    assert 'name="keep_card"' in page.text and "Keep my card on file" in page.text
    attempt = re.search(r'name="attempt" value="([^"]+)"', page.text)
    assert attempt is not None
    paid = api.client.post(
        pay_path(request),
        data={
            "attempt": attempt.group(1),
            "amount": "80.00",
            "payment_method": "pm_card_visa",
            "keep_card": "yes",
        },
    )
    assert paid.status_code == 200, paid.text
    assert "Your payment of $80.00 was approved" in paid.text
    assert "Your card ending 4242 is kept on file" in paid.text
    (card,) = api.get(f"/v1/patients/{patient['id']}/cards").json()["items"]
    assert (card["state"], card["source"], card["last4"]) == ("saved", "pay_link", "4242")
    (customer,) = fake_stripe.customers(account)
    (method,) = fake_stripe.methods_of(customer["id"])
    (intent,) = fake_stripe.intents(account)
    assert (intent["customer"], intent["payment_method"], intent["amount"]) == (
        customer["id"],
        method["id"],
        8000,
    )
    assert api.get(f"/v1/payment-requests/{request['id']}").json()["status"] == "completed"


def test_the_virtual_terminal_keeps_the_card_with_stripe(
    api_for: Callable[..., Api],
    clock: PinnedClock,
    fake_stripe: FakeStripe,
    make_components: ComponentsFactory,
) -> None:
    api, account = element_api(api_for, clock, fake_stripe)
    patient = new_patient(api)
    web, _ = sign_in(api, make_components.made[-1])
    form = web.get("/payments/collect/virtual")
    assert 'name="keep_card"' in form.text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    key = re.search(r'name="idempotency_key" value="([^"]+)"', form.text)
    assert csrf is not None and key is not None
    fields = {
        "csrf_token": csrf.group(1),
        "idempotency_key": key.group(1),
        "amount": "42.50",
        "patient_id": patient["id"],
        "keep_card": "yes",
    }
    refused = web.post(
        "/payments/collect/virtual",
        data={**fields, "payment_method": "pm_card_chargeDeclined"},
        follow_redirects=True,
    )
    assert "declined (card declined)" in refused.text  # not kept, and not paid
    key2 = re.search(r'name="idempotency_key" value="([^"]+)"', refused.text)
    assert key2 is not None
    approved = web.post(
        "/payments/collect/virtual",
        data={**fields, "idempotency_key": key2.group(1), "payment_method": "pm_card_visa"},
        follow_redirects=True,
    )
    assert approved.status_code == 200, approved.text
    assert "Payment of $42.50 approved on visa ending 4242" in approved.text
    assert "The card ending 4242 is on file" in approved.text
    cards = api.get(f"/v1/patients/{patient['id']}/cards").json()["items"]
    # both consented at the same (pinned) time: in either order
    assert sorted((c["state"], c["last4"] or "") for c in cards) == [
        ("refused", ""),
        ("saved", "4242"),
    ]
    (customer,) = fake_stripe.customers(account)
    (method,) = fake_stripe.methods_of(customer["id"])
    kept = [i for i in fake_stripe.intents(account) if i["customer"] == customer["id"]]
    assert [(i["payment_method"], i["status"]) for i in kept] == [
        (method["id"], "requires_capture")
    ]
