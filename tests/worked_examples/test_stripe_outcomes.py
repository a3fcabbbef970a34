"""Worked examples: Elm Dental on Stripe as Stripe is today (API version 2026-10-28).

The clock starts on Wednesday 4 March 2026 at 10:00 in New York; the batch closes at
23:59. The practice is a connected account of the platform, served by the fake of
Stripe's API, which checks every request against the pinned SDK's parameter types.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest
import stripe

from adapters.processor.port import Effect, OutcomeUnknown, ProcessorUnavailable
from adapters.processor.stripe import NEEDS_AUTHENTICATION, STRIPE_VERSION, StripeProcessor
from tests.conftest import Api, PinnedClock
from tests.fakes.stripe import DISPUTE_FEE, FakeStripe, sign
from tests.stripe_fixtures import served_fake_stripe, stripe_api  # noqa: F401

DAY = 24 * 3600
SECRET = "whsec_test_payledger"
MONDAY = int(datetime(2026, 3, 9, tzinfo=UTC).timestamp())
TUESDAY = int(datetime(2026, 3, 10, tzinfo=UTC).timestamp())


def deliver(api: Api, event: dict[str, Any]) -> None:
    payload = json.dumps(event).encode()
    answer = api.client.post(
        "/webhooks/stripe", content=payload, headers={"Stripe-Signature": sign(payload, SECRET)}
    )
    assert answer.status_code == 200, answer.text


def collect(api: Api, amount: int, method: str = "pm_card_visa", key: str | None = None) -> Any:
    headers = {**api.admin, **({"Idempotency-Key": key} if key else {})}
    body = {"method": "virtual_terminal", "amount": amount, "payment_method": method}
    return api.client.post("/v1/payments", json=body, headers=headers)


def paid(api: Api, amount: int) -> dict[str, Any]:
    answer = collect(api, amount)
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


def deposit_of(api: Api, batch_date: str) -> dict[str, Any]:
    rows = api.get("/v1/deposits", params={"from": "2026-03-01", "to": "2026-03-31"}).json()
    (row,) = [d for d in rows["items"] if d["batch_date"] == batch_date]
    one: dict[str, Any] = api.get(f"/v1/deposits/{row['id']}").json()
    return one


def client_of(fake: FakeStripe) -> stripe.StripeClient:
    return stripe.StripeClient(
        fake.secret_key,
        stripe_version=STRIPE_VERSION,
        base_addresses={"api": fake.base_url},
        max_network_retries=0,
    )


# -- case 4: a lost answer is read back with a consistent read --------------------------


def test_a_collect_whose_create_answer_was_lost_is_read_back_and_recorded_once(
    api_for: Callable[..., Api], clock: PinnedClock, fake_stripe: FakeStripe, backend: str
) -> None:
    api, account = stripe_api(api_for, clock, fake_stripe, backend)
    # Stripe makes the PaymentIntent, then answers 500 (and replays that 500 for its key).
    fake_stripe.fail_next("/v1/payment_intents", "500-after-apply")
    first = collect(api, 12500, key="front-desk-1")
    assert first.status_code == 201, first.text
    assert first.json()["status"] == "approved"
    (intent,) = fake_stripe.intents(account)
    assert intent["id"] == first.json()["transaction_id"]
    assert intent["status"] == "requires_capture"
    # found by listing the account's PaymentIntents by creation time, never by Search
    paths = [path for _, path, _, _ in fake_stripe.requests]
    assert "/v1/payment_intents/search" not in paths
    assert ("GET", "/v1/payment_intents") in [(m, p) for m, p, _, _ in fake_stripe.requests]

    again = collect(api, 12500, key="front-desk-1")
    assert again.json()["id"] == first.json()["id"]
    assert len(fake_stripe.intents(account)) == 1  # nothing more authorised


def test_a_lost_confirm_answer_is_read_back_by_the_intents_id(
    api_for: Callable[..., Api], clock: PinnedClock, fake_stripe: FakeStripe
) -> None:
    api, account = stripe_api(api_for, clock, fake_stripe)
    fake_stripe.fail_next("/v1/payment_intents/pi_", "500-after-apply")  # the confirm
    answer = collect(api, 8000)
    assert answer.status_code == 201, answer.text
    assert answer.json()["status"] == "approved"
    (intent,) = fake_stripe.intents(account)
    assert intent["status"] == "requires_capture"


def test_the_reconciler_reads_a_charge_back_without_its_intents_id(
    fake_stripe: FakeStripe,
) -> None:
    account = fake_stripe.add_account()
    processor = StripeProcessor(fake_stripe.secret_key, api_base=fake_stripe.base_url)
    reference = uuid4()
    assert (
        processor.look_up(
            effect=Effect.CHARGE, reference=reference, transaction_id="", account=account
        ).state
        == "absent"
    )
    fake_stripe.fail_next("/v1/payment_intents", "500-after-apply")
    made = processor.charge(
        reference=reference, amount=5000, payment_method="pm_card_visa", account=account
    )
    found = processor.look_up(
        effect=Effect.CHARGE, reference=reference, transaction_id="", account=account
    )
    assert (found.state, found.processor_id) == ("succeeded", made.transaction_id)


def test_an_answer_lost_at_every_attempt_is_an_unknown_outcome_and_a_rate_limit_is_not(
    fake_stripe: FakeStripe,
) -> None:
    account = fake_stripe.add_account()
    processor = StripeProcessor(
        fake_stripe.secret_key, api_base=fake_stripe.base_url, attempts=2, backoff=0
    )
    made = processor.charge(
        reference=uuid4(),
        amount=5000,
        payment_method="pm_card_visa",
        account=account,
    )
    intent_id = str(made.transaction_id)
    for _ in range(2):
        fake_stripe.fail_next(f"/v1/payment_intents/{intent_id}/cancel", "500-before-apply")
    with pytest.raises(OutcomeUnknown):
        processor.void(transaction_id=intent_id, reference=uuid4(), account=account)
    for _ in range(2):
        fake_stripe.fail_next(f"/v1/payment_intents/{intent_id}/cancel", "429")
    with pytest.raises(ProcessorUnavailable) as raised:
        processor.void(transaction_id=intent_id, reference=uuid4(), account=account)
    assert not isinstance(raised.value, OutcomeUnknown)
    assert fake_stripe.cancels[intent_id] == 0  # Stripe never acted


# -- case 5: the pinned API version, and what it refuses -------------------------------


def test_the_sdk_pinned_is_the_api_version_asked_for() -> None:
    assert stripe.api_version == STRIPE_VERSION


def test_a_parameter_the_pinned_version_does_not_know_is_refused_by_the_fake(
    fake_stripe: FakeStripe,
) -> None:
    account = fake_stripe.add_account()
    client = client_of(fake_stripe)
    scope: Any = {"stripe_account": account}
    base: Any = {"amount": 5000, "currency": "usd", "payment_method": "pm_card_visa"}
    for extra in (
        {"payment_method_types": ["card"]},  # removed in 2026-09-30
        {"amount_details": {"no_such_thing": 1}},  # nested, checked too
    ):
        with pytest.raises(stripe.InvalidRequestError) as refused:
            client.v1.payment_intents.create({**base, **extra}, scope)
        assert refused.value.code == "parameter_unknown"
        assert refused.value.param in ("payment_method_types", "amount_details[no_such_thing]")
    made = client.v1.payment_intents.create(
        {**base, "allowed_payment_method_types": ["card"]}, scope
    )
    assert made.status == "requires_confirmation"
    other = stripe.StripeClient(
        fake_stripe.secret_key,
        stripe_version="2024-06-20",
        base_addresses={"api": fake_stripe.base_url},
        max_network_retries=0,
    )
    with pytest.raises(stripe.InvalidRequestError):
        other.v1.payment_intents.retrieve(str(made.id), {}, scope)


def test_an_unknown_payment_method_is_a_422_naming_payment_method(
    api_for: Callable[..., Api], clock: PinnedClock, fake_stripe: FakeStripe
) -> None:
    api, account = stripe_api(api_for, clock, fake_stripe)
    refused = collect(api, 5000, method="pm_1NoSuchMethodAtAll")
    assert refused.status_code == 422, refused.text
    assert refused.json()["field"] == "payment_method"
    assert "pm_1NoSuchMethodAtAll" in refused.json()["detail"]
    assert fake_stripe.intents(account) == []  # nothing was made at Stripe


# -- case 6: 3-D Secure, webhooks in any order, failed refunds, every payout item -------


def test_a_card_needing_3d_secure_is_declined_and_its_intent_cancelled(
    api_for: Callable[..., Api], clock: PinnedClock, fake_stripe: FakeStripe
) -> None:
    api, account = stripe_api(api_for, clock, fake_stripe)
    answer = collect(api, 9000, method="pm_card_authenticationRequired")
    assert answer.status_code == 201, answer.text
    declined = answer.json()
    assert declined["status"] == "declined"
    assert declined["decline_reason"] == NEEDS_AUTHENTICATION
    (intent,) = fake_stripe.intents(account)
    assert (intent["status"], intent["cancellation_reason"]) == ("canceled", "abandoned")


def test_payout_paid_delivered_after_payout_failed_leaves_it_failed(
    api_for: Callable[..., Api], clock: PinnedClock, fake_stripe: FakeStripe, backend: str
) -> None:
    api, account = stripe_api(api_for, clock, fake_stripe, backend)
    paid(api, 10000)
    api.advance(DAY)
    payout = fake_stripe.pay_out(account, MONDAY)
    failed = fake_stripe.fail_payout(payout["id"], "account_closed")
    # Stripe's two events arrive out of order: the failure first, then the older paid.
    deliver(api, fake_stripe.event("payout.failed", failed, account))
    deliver(api, fake_stripe.event("payout.paid", payout, account))
    deposit = deposit_of(api, "2026-03-04")
    assert deposit["status"] == "scheduled"
    assert deposit["payout"]["status"] == "failed"
    assert deposit["payout"]["failure"].startswith("account_closed")
    close = api.get("/v1/reports/daily-close", params={"date": "2026-03-04"}).json()
    assert "payout_failed" in [d["kind"] for d in close["differences"]]


def test_a_refund_that_fails_later_counts_no_more(
    api_for: Callable[..., Api], clock: PinnedClock, fake_stripe: FakeStripe, backend: str
) -> None:
    api, account = stripe_api(api_for, clock, fake_stripe, backend)
    payment = paid(api, 20000)
    api.advance(DAY)
    answer = api.post(f"/v1/payments/{payment['id']}/refund", {"amount": 5000})
    assert answer.status_code == 200, answer.text
    (refund,) = fake_stripe.refunds_of(payment["transaction_id"])
    # The card was closed: the bank refuses the refund days later; the money stays.
    failed = fake_stripe.fail_refund(refund["id"], "expired_or_canceled_card")
    deliver(api, fake_stripe.event("refund.failed", failed, account))
    deliver(api, fake_stripe.event("charge.refund.updated", failed, account))  # said twice
    shown = api.get(f"/v1/payments/{payment['id']}").json()
    assert shown["refunded_amount"] == 0
    failures = [e for e in shown["history"] if e["type"] == "PaymentRefundFailed"]
    assert len(failures) == 1
    assert "expired or canceled card" in failures[0]["data"]["reason"]
    rows = api.get("/v1/transactions", params={"from": "2026-03-04", "to": "2026-03-04"})
    (row,) = rows.json()["items"]
    assert row["refunded_amount"] == 0


def test_a_payout_of_only_a_disputes_withdrawal_reaches_a_deposit(
    api_for: Callable[..., Api], clock: PinnedClock, fake_stripe: FakeStripe, backend: str
) -> None:
    api, account = stripe_api(api_for, clock, fake_stripe, backend)
    taken = paid(api, 10000)
    api.advance(DAY)
    first = fake_stripe.pay_out(account, MONDAY)
    deliver(api, fake_stripe.event("payout.paid", first, account))
    before = deposit_of(api, "2026-03-04")
    # The sale is disputed; nothing else happens until Stripe's next payout, which carries
    # only the withdrawal and the dispute fee (a negative payout: a debit).
    dispute = fake_stripe.open_dispute(taken["transaction_id"])
    deliver(api, fake_stripe.event("charge.dispute.created", dispute, account))
    second = fake_stripe.pay_out(account, TUESDAY)
    assert second["amount"] == -10000 - DISPUTE_FEE
    deliver(api, fake_stripe.event("payout.paid", second, account))
    deposit = deposit_of(api, "2026-03-04")
    lines = [(i["kind"], i["amount"], i["fee_amount"]) for i in deposit["items"]]
    assert ("dispute", -10000, 0) in lines and ("dispute_fee", 0, DISPUTE_FEE) in lines
    assert deposit["net_amount"] == before["net_amount"] + second["amount"]
    assert deposit["payout"]["id"] == first["id"]  # its own payout is still the first
    deliver(api, fake_stripe.event("payout.paid", second, account))  # again: nothing more
    assert deposit_of(api, "2026-03-04")["net_amount"] == deposit["net_amount"]


def test_a_balance_transaction_of_another_type_is_a_difference_in_the_daily_close(
    api_for: Callable[..., Api], clock: PinnedClock, fake_stripe: FakeStripe, backend: str
) -> None:
    api, account = stripe_api(api_for, clock, fake_stripe, backend)
    paid(api, 10000)
    api.advance(DAY)
    # The practice gives 1% to Stripe Climate: a `contribution` the payout carries.
    fake_stripe.add_balance_transaction(account, "contribution", -97, description="Climate")
    payout = fake_stripe.pay_out(account, MONDAY)
    deliver(api, fake_stripe.event("payout.paid", payout, account))
    close = api.get("/v1/reports/daily-close", params={"date": "2026-03-04"}).json()
    other = [d for d in close["differences"] if d["kind"] == "payout_other_item"]
    assert len(other) == 1
    assert (other[0]["stripe_type"], other[0]["amount"]) == ("contribution", -97)
    assert other[0]["payout_id"] == payout["id"]
    assert close["balanced"] is False


def test_a_stripe_error_outside_a_money_call_is_never_a_500(
    api_for: Callable[..., Api], clock: PinnedClock, fake_stripe: FakeStripe
) -> None:
    api, account = stripe_api(api_for, clock, fake_stripe)
    # The platform loses access to the practice's account (Stripe answers 403).
    fake_stripe.accounts.discard(account)
    listed = api.get("/v1/terminal/readers")
    assert listed.status_code == 502, listed.text
    assert "Stripe" in listed.json()["detail"]
    refused = collect(api, 5000)
    assert refused.status_code == 502, refused.text
    assert "Stripe account in the practice's settings" in refused.json()["detail"]
