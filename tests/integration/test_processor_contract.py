"""One ledger, three processors: the same scenarios on the sandbox, on Stripe and on
Clearent (the fakes).

The ledger's rules do not depend on the processor: a payment is approved or declined
when collected, voided in full before its batch's cut-off, settled at the cut-off and
refunded after it, never beyond what remains. On Stripe each step is also checked at
the processor: an authorised PaymentIntent, cancelled by a void, captured once at the
cut-off, refunded by a Refund; every call on the practice's connected account. On
Clearent: an AUTH carrying the payment's id as its order id, voided by a VOID, captured
once by a CAPTURE into Clearent's open batch, refunded by REFUNDs against the AUTH, every
call under the practice's own API key and every request valid against Clearent's
published description (the fixture checks it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from services.app.settlement import capture_reference
from tests.clearent_fixtures import TOKENS, clearent_api, served_fake_clearent  # noqa: F401
from tests.conftest import Api, PinnedClock
from tests.fakes.clearent import FakeClearent
from tests.fakes.stripe import FakeStripe
from tests.stripe_fixtures import served_fake_stripe, stripe_api  # noqa: F401 - a fixture

DAY = 24 * 3600
HOUR = 3600


@dataclass
class Processed:
    api: Api
    fake: FakeStripe | None
    account: str | None
    clearent: FakeClearent | None = None

    def method(self, payment_method: str) -> str:
        return TOKENS[payment_method] if self.clearent is not None else payment_method

    def pay(self, amount: int, payment_method: str = "pm_card_visa") -> dict[str, object]:
        answer = self.api.post(
            "/v1/payments",
            {
                "method": "virtual_terminal",
                "amount": amount,
                "payment_method": self.method(payment_method),
            },
        )
        assert answer.status_code == 201, answer.text
        body: dict[str, object] = answer.json()
        return body

    def intent(self, transaction_id: object) -> dict[str, object]:
        assert self.fake is not None and self.account is not None
        return next(i for i in self.fake.intents(self.account) if i["id"] == transaction_id)

    def clearent_auth(self, transaction_id: object) -> dict[str, object]:
        assert self.clearent is not None and self.account is not None
        return next(t for t in self.clearent.of(self.account, "AUTH") if t["id"] == transaction_id)


@pytest.fixture(params=["sandbox", "stripe", "clearent"])
def processed(
    request: pytest.FixtureRequest, api_for: Callable[..., Api], clock: PinnedClock
) -> Processed:
    if request.param == "sandbox":
        return Processed(api_for("sqlite", clock).setup(), None, None)
    if request.param == "clearent":
        clearent = request.getfixturevalue("fake_clearent")
        api, key = clearent_api(api_for, clock, clearent)
        return Processed(api, None, key, clearent)
    fake = request.getfixturevalue("fake_stripe")
    api, account = stripe_api(api_for, clock, fake)
    return Processed(api, fake, account)


def test_a_payment_voided_before_the_cut_off_is_never_captured(processed: Processed) -> None:
    payment = processed.pay(12500)
    assert (payment["status"], payment["card"]) == (
        "approved",
        {"brand": "visa", "last4": "4242"},
    )
    processed.api.advance(5 * HOUR)
    answer = processed.api.post(f"/v1/payments/{payment['id']}/refund").json()
    assert (answer["kind"], answer["amount"]) == ("void", 12500)
    processed.api.advance(DAY)
    after = processed.api.get(f"/v1/payments/{payment['id']}").json()
    assert (after["status"], after["batch_id"]) == ("voided", None)
    if processed.fake is not None:
        intent = processed.intent(payment["transaction_id"])
        assert intent["status"] == "canceled"
        assert intent["capture_method"] == "manual"
        assert processed.fake.captures[str(intent["id"])] == 0
    if processed.clearent is not None:
        auth = processed.clearent_auth(payment["transaction_id"])
        assert (auth["voided-auth"], auth["pending"], auth["order-id"]) == (
            "true",
            "true",
            payment["id"],
        )
        assert processed.clearent.captures[str(auth["id"])] == 0
        assert processed.clearent.voids[str(auth["id"])] == 1


def test_a_payment_is_captured_once_at_the_cut_off_then_refunded_in_part(
    processed: Processed,
) -> None:
    payment = processed.pay(30000)
    if processed.fake is not None:
        assert processed.intent(payment["transaction_id"])["status"] == "requires_capture"
    processed.api.advance(23 * HOUR)
    settled = processed.api.get(f"/v1/payments/{payment['id']}").json()
    assert settled["status"] == "settled"

    partial = processed.api.post(f"/v1/payments/{payment['id']}/refund", {"amount": 8000})
    assert partial.status_code == 200, partial.text
    assert (partial.json()["kind"], partial.json()["amount"]) == ("refund", 8000)
    too_much = processed.api.post(f"/v1/payments/{payment['id']}/refund", {"amount": 22001})
    assert too_much.status_code == 422
    assert too_much.json()["type"] == "/problems/refund-exceeds-remaining"
    rest = processed.api.post(f"/v1/payments/{payment['id']}/refund").json()
    assert (rest["kind"], rest["amount"]) == ("refund", 22000)

    if processed.fake is not None:
        intent_id = str(payment["transaction_id"])
        assert processed.fake.captures[intent_id] == 1
        assert processed.intent(intent_id)["amount_received"] == 30000
        assert [r["amount"] for r in processed.fake.refunds_of(intent_id)] == [8000, 22000]
        # every call was made on the practice's connected account
        assert {r[2] for r in processed.fake.requests} == {processed.account}
    if processed.clearent is not None:
        auth_id = str(payment["transaction_id"])
        assert processed.clearent.captures[auth_id] == 1
        assert processed.clearent_auth(auth_id)["pending"] == "false"
        assert processed.clearent.refunded(auth_id) == [8000, 22000]
        # the sale's batch was closed at the cut-off (its totals validated by Clearent);
        # the refunds are in the next one
        (closed,) = processed.clearent.batch_answers(str(processed.account), "CLOSED")
        (now_open,) = processed.clearent.batch_answers(str(processed.account), "OPEN")
        assert (closed["sales-total"], closed["net-amount"]) == ("300.00", "300.00")
        assert (now_open["refund-total"], now_open["net-amount"]) == ("300.00", "-300.00")


def test_a_declined_card_is_recorded_and_moves_nothing(processed: Processed) -> None:
    declined = processed.pay(5000, "pm_card_chargeDeclinedInsufficientFunds")
    assert (declined["status"], declined["decline_reason"]) == ("declined", "insufficient funds")
    generic = processed.pay(5000, "pm_card_chargeDeclined")
    assert (generic["status"], generic["decline_reason"]) == ("declined", "card declined")
    refused = processed.api.post(f"/v1/payments/{declined['id']}/refund")
    assert refused.status_code == 409
    processed.api.advance(DAY)
    report = processed.api.get("/v1/reports/daily-close", params={"date": "2026-03-04"}).json()
    assert report["ledger"]["declined_count"] == 2
    assert report["batch"]["gross_amount"] == 0


def test_a_retried_collect_charges_once(processed: Processed) -> None:
    body = {
        "method": "virtual_terminal",
        "amount": 4200,
        "payment_method": processed.method("pm_card_visa"),
    }
    headers = {**processed.api.admin, "Idempotency-Key": "collect-once-1"}
    first = processed.api.client.post("/v1/payments", json=body, headers=headers)
    again = processed.api.client.post("/v1/payments", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    if processed.fake is not None:
        assert processed.account is not None
        assert len(processed.fake.intents(processed.account)) == 1
    if processed.clearent is not None:
        assert len(processed.clearent.of(str(processed.account), "AUTH")) == 1


def test_a_close_run_again_after_a_crash_captures_nothing_twice(processed: Processed) -> None:
    """The close recorded its intent and captured the payment, then died before saving
    its batch: the next run reads the capture back under the same reference, which moves
    no more money."""
    from domain.payments import Payment
    from domain.practices import Practice
    from services.app.practices import processor_account

    payment = processed.pay(9900)
    ctx = processed.api.client.app.state.ctx  # type: ignore[attr-defined]
    practice_id = ctx.get(Payment, payment_id(payment), None).practice_id
    practice = ctx.get(Practice, practice_id, practice_id)
    reference = capture_reference(payment_id(payment))  # type: ignore[arg-type]
    intent = ctx.get(Payment, payment_id(payment), practice_id)
    intent.request_capture(reference=reference, at=ctx.clock.now(practice_id), actor="test")
    ctx.save(intent)
    done = ctx.processor.capture(
        transaction_id=str(payment["transaction_id"]),
        amount=9900,
        reference=reference,
        account=processor_account(ctx.processor, practice),
    )
    assert done.transaction_id == payment["transaction_id"]
    processed.api.advance(DAY)
    assert processed.api.get(f"/v1/payments/{payment['id']}").json()["status"] == "settled"
    if processed.fake is not None:
        assert processed.fake.captures[str(payment["transaction_id"])] == 1
    if processed.clearent is not None:
        assert processed.clearent.captures[str(payment["transaction_id"])] == 1


def payment_id(payment: dict[str, object]) -> object:
    from uuid import UUID

    return UUID(str(payment["id"]))


# -- cards on file and payment plans: the sandbox and Stripe ---------------------------

CONSENT = (
    "I authorise Elm Dental to keep this card on file and to charge it for my care when I "
    "agree to a payment, including the payments of a plan I agree to."
)


@pytest.fixture(params=["sandbox", "stripe"])
def keeping(
    request: pytest.FixtureRequest, api_for: Callable[..., Api], clock: PinnedClock
) -> Processed:
    if request.param == "sandbox":
        return Processed(api_for("sqlite", clock).setup(), None, None)
    fake = request.getfixturevalue("fake_stripe")
    api, account = stripe_api(api_for, clock, fake)
    return Processed(api, fake, account)


def keep(processed: Processed, patient_id: str, payment_method: str = "pm_card_visa") -> Any:
    return processed.api.post(
        f"/v1/patients/{patient_id}/cards",
        {"payment_method": payment_method, "consent": CONSENT},
    )


def kept(processed: Processed, patient_id: str, payment_method: str = "pm_card_visa") -> Any:
    answer = keep(processed, patient_id, payment_method)
    assert answer.status_code == 201, answer.text
    assert answer.json()["state"] == "saved"
    return answer.json()


def card_of(processed: Processed, card_id: str) -> Any:
    """The card as the ledger holds it (its token and customer at the processor)."""
    from uuid import UUID

    from domain.cards import Card

    ctx = processed.api.client.app.state.ctx  # type: ignore[attr-defined]
    return ctx.get(Card, UUID(card_id), None)


def test_a_kept_card_is_charged_off_session_and_in_a_plan(keeping: Processed) -> None:
    from tests.e2e.support import new_patient

    api = keeping.api
    ann = new_patient(api)
    card = kept(keeping, ann["id"])
    assert (card["brand"], card["last4"], card["exp_month"], card["exp_year"]) == (
        "visa",
        "4242",
        12,
        2034,
    )
    charged = api.post(f"/v1/patients/{ann['id']}/cards/{card['id']}/charge", {"amount": 4500})
    assert charged.status_code == 201, charged.text
    payment = charged.json()
    assert (payment["status"], payment["method"], payment["card"]["last4"]) == (
        "approved",
        "card_on_file",
        "4242",
    )
    plan = api.post(
        "/v1/payment-plans",
        {
            "patient_id": ann["id"],
            "card_id": card["id"],
            "amount": 10000,
            "total": 20000,
            "every": 1,
            "unit": "months",
            "start": "2026-03-04",
        },
    )
    assert plan.status_code == 201, plan.text
    api.advance(HOUR)
    assert api.get(f"/v1/payment-plans/{plan.json()['id']}").json()["paid"] == 10000
    api.advance(DAY)
    assert api.get(f"/v1/payments/{payment['id']}").json()["status"] == "settled"
    # a second card of the same patient
    other = kept(keeping, ann["id"], "pm_card_mastercard" if keeping.fake else "pm_card_visa")

    if keeping.fake is not None:
        account = keeping.account
        assert account is not None
        stored = card_of(keeping, card["id"])
        assert stored.token.startswith("pm_") and stored.token != "pm_card_visa"
        (customer,) = keeping.fake.customers(account)
        assert customer["metadata"]["payledger_patient"] == ann["id"]
        assert stored.customer == customer["id"]
        assert card_of(keeping, other["id"]).customer == customer["id"]  # made once
        assert {m["id"] for m in keeping.fake.methods_of(customer["id"])} == {
            stored.token,
            card_of(keeping, other["id"]).token,
        }
        intents = keeping.fake.intents(account)
        assert len(intents) == 2  # the charge from the page, the plan's first charge
        for intent in intents:
            assert (intent["customer"], intent["payment_method"]) == (customer["id"], stored.token)
            assert intent["capture_method"] == "manual"
        assert keeping.fake.captures[str(payment["transaction_id"])] == 1
        setups = [r for r in keeping.fake.requests if r[1] == "/v1/setup_intents"]
        assert len(setups) == 2
        assert {r[2] for r in keeping.fake.requests} == {account}
    history = api.get(f"/v1/history/{card['id']}").text
    assert "4242424242424242" not in history


def test_a_kept_card_whose_charges_decline(keeping: Processed) -> None:
    from tests.e2e.support import new_patient

    api = keeping.api
    ann = new_patient(api)
    card = kept(keeping, ann["id"], "pm_card_chargeCustomerFail")
    assert card["last4"] == "0341"
    charged = api.post(f"/v1/patients/{ann['id']}/cards/{card['id']}/charge", {"amount": 4500})
    assert charged.status_code == 201, charged.text
    assert (charged.json()["status"], charged.json()["decline_reason"]) == (
        "declined",
        "card declined",
    )
    if keeping.fake is not None:
        (intent,) = keeping.fake.intents(str(keeping.account))
        assert intent["status"] == "requires_payment_method"
        assert keeping.fake.captures[str(intent["id"])] == 0


def test_a_removed_card_is_taken_off_at_the_processor(keeping: Processed) -> None:
    from tests.e2e.support import new_patient

    api = keeping.api
    ann = new_patient(api)
    card = kept(keeping, ann["id"])
    token = card_of(keeping, card["id"]).token
    removed = api.client.delete(f"/v1/patients/{ann['id']}/cards/{card['id']}", headers=api.admin)
    assert removed.status_code == 200, removed.text
    assert removed.json()["state"] == "removed"
    kinds = [e["type"] for e in api.get(f"/v1/history/{card['id']}").json()["items"]]
    assert kinds[-3:] == ["CardRemoved", "CardForgetRequested", "CardForgotten"]
    charge = api.post(f"/v1/patients/{ann['id']}/cards/{card['id']}/charge", {"amount": 500})
    assert charge.status_code == 409
    again = api.client.delete(f"/v1/patients/{ann['id']}/cards/{card['id']}", headers=api.admin)
    assert again.status_code == 409
    if keeping.fake is not None:
        method = keeping.fake.objects[token]
        assert (method["customer"], method["_detached"]) == (None, True)


def test_stripe_refuses_to_keep_a_declining_card(
    fake_stripe: FakeStripe, api_for: Callable[..., Api], clock: PinnedClock
) -> None:
    from tests.e2e.support import new_patient

    api, account = stripe_api(api_for, clock, fake_stripe)
    processed = Processed(api, fake_stripe, account)
    ann = new_patient(api)
    refused = keep(processed, ann["id"], "pm_card_chargeDeclined")
    assert refused.status_code == 422, refused.text
    assert "card declined" in refused.json()["detail"]
    (card,) = api.get(f"/v1/patients/{ann['id']}/cards").json()["items"]
    assert card["state"] == "refused"
    needs_3ds = keep(processed, ann["id"], "pm_card_authenticationRequired")
    assert needs_3ds.status_code == 422, needs_3ds.text
    assert "authentication" in needs_3ds.json()["detail"]
    numbers = api.post(
        f"/v1/patients/{ann['id']}/cards",
        {
            "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "1"},
            "consent": CONSENT,
        },
    )
    assert numbers.status_code == 422


def test_stripe_an_off_session_charge_that_needs_authentication_is_declined(
    fake_stripe: FakeStripe, api_for: Callable[..., Api], clock: PinnedClock
) -> None:
    from tests.e2e.support import new_patient

    api, account = stripe_api(api_for, clock, fake_stripe)
    processed = Processed(api, fake_stripe, account)
    ann = new_patient(api)
    card = kept(processed, ann["id"])
    fake_stripe.ask_authentication(card_of(processed, card["id"]).token)
    charged = api.post(f"/v1/patients/{ann['id']}/cards/{card['id']}/charge", {"amount": 4500})
    assert charged.status_code == 201, charged.text
    assert charged.json()["status"] == "declined"
    assert "authentication" in charged.json()["decline_reason"]
    (intent,) = fake_stripe.intents(account)
    assert (intent["status"], intent["cancellation_reason"]) == ("canceled", "abandoned")


@pytest.mark.parametrize("fault", ["500-after-apply", "drop-after-apply", "drop-before-apply"])
def test_stripe_lost_answers_keep_charge_and_take_off_a_card_once(
    fault: str, fake_stripe: FakeStripe, api_for: Callable[..., Api], clock: PinnedClock
) -> None:
    from tests.e2e.support import new_patient

    api, account = stripe_api(api_for, clock, fake_stripe)
    processed = Processed(api, fake_stripe, account)
    ann = new_patient(api)
    fake_stripe.fail_next("/v1/customers", fault)
    fake_stripe.fail_next("/v1/setup_intents", fault)
    card = kept(processed, ann["id"])
    assert len(fake_stripe.customers(account)) == 1
    assert len(fake_stripe.methods_of(fake_stripe.customers(account)[0]["id"])) == 1
    fake_stripe.fail_next("/v1/payment_intents", fault)
    charged = api.post(f"/v1/patients/{ann['id']}/cards/{card['id']}/charge", {"amount": 4500})
    assert charged.status_code == 201, charged.text
    assert charged.json()["status"] == "approved"
    assert len(fake_stripe.intents(account)) == 1
    fake_stripe.fail_next("/v1/payment_methods/", fault)
    removed = api.client.delete(f"/v1/patients/{ann['id']}/cards/{card['id']}", headers=api.admin)
    assert removed.status_code == 200, removed.text
    assert fake_stripe.methods_of(fake_stripe.customers(account)[0]["id"]) == []


def test_stripe_a_removal_stripe_did_not_take_is_finished_by_sending_it_again(
    fake_stripe: FakeStripe, api_for: Callable[..., Api], clock: PinnedClock
) -> None:
    from tests.e2e.support import new_patient

    api, account = stripe_api(api_for, clock, fake_stripe)
    processed = Processed(api, fake_stripe, account)
    ann = new_patient(api)
    card = kept(processed, ann["id"])
    token = card_of(processed, card["id"]).token
    for _ in range(4):  # rate limited at every attempt: Stripe surely did nothing
        fake_stripe.fail_next("/v1/payment_methods/", "429")
    path = f"/v1/patients/{ann['id']}/cards/{card['id']}"
    first = api.client.delete(path, headers=api.admin)
    assert first.status_code == 502, first.text
    assert first.json()["type"] == "/problems/processor-unavailable"
    assert "send the same request again" in first.json()["detail"]
    assert fake_stripe.objects[token]["customer"] is not None
    listed = api.get(f"/v1/patients/{ann['id']}/cards").json()["items"]
    assert [c["state"] for c in listed] == ["removed"]  # never charged again
    again = api.client.delete(path, headers=api.admin)
    assert again.status_code == 200, again.text
    assert fake_stripe.objects[token]["customer"] is None
    kinds = [e["type"] for e in api.get(f"/v1/history/{card['id']}").json()["items"]]
    assert kinds[-3:] == ["CardRemoved", "CardForgetRequested", "CardForgotten"]


def test_stripe_a_patient_whose_customer_was_deleted_gets_a_new_one(
    fake_stripe: FakeStripe, api_for: Callable[..., Api], clock: PinnedClock
) -> None:
    from tests.e2e.support import new_patient

    api, account = stripe_api(api_for, clock, fake_stripe)
    processed = Processed(api, fake_stripe, account)
    ann = new_patient(api)
    first = kept(processed, ann["id"])
    gone = card_of(processed, first["id"]).customer
    fake_stripe.delete_customer(gone)
    second = kept(processed, ann["id"], "pm_card_mastercard")
    customer = card_of(processed, second["id"]).customer
    assert customer != gone
    (made,) = fake_stripe.customers(account)
    assert (made["id"], made["metadata"]["payledger_patient"]) == (customer, ann["id"])
    charged = api.post(f"/v1/patients/{ann['id']}/cards/{second['id']}/charge", {"amount": 700})
    assert charged.json()["status"] == "approved", charged.text
    # the card of the deleted Customer is detached at Stripe: its charge is refused there
    refused = api.post(f"/v1/patients/{ann['id']}/cards/{first['id']}/charge", {"amount": 700})
    assert refused.status_code == 422, refused.text
