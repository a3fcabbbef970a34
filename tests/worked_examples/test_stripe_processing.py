"""Worked examples: Elm Dental processes its cards on Stripe (the fake of Stripe's API).

The clock starts on Wednesday 4 March 2026 at 10:00 in New York; the batch closes at
23:59. The practice is a connected account of the platform.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from services.settings import Settings
from tests.conftest import Api, PinnedClock
from tests.fakes.stripe import FakeStripe
from tests.stripe_fixtures import served_fake_stripe, stripe_api, stripe_settings  # noqa: F401

DAY = 24 * 3600
CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}


def pay(api: Api, amount: int, payment_method: str = "pm_card_visa") -> dict[str, object]:
    answer = api.post(
        "/v1/payments",
        {"method": "virtual_terminal", "amount": amount, "payment_method": payment_method},
    )
    assert answer.status_code == 201, answer.text
    body: dict[str, object] = answer.json()
    return body


def test_a_card_number_is_refused_and_a_payment_method_taken_instead(
    api_for: Callable[..., Api], clock: PinnedClock, fake_stripe: FakeStripe
) -> None:
    api, _ = stripe_api(api_for, clock, fake_stripe)
    refused = api.post("/v1/payments", {"method": "virtual_terminal", "amount": 5000, "card": CARD})
    assert refused.status_code == 422
    problem = refused.json()
    assert problem["field"] == "card"
    assert "stripe" in problem["detail"] and "payment_method" in problem["detail"]
    assert CARD["number"] not in refused.text
    assert fake_stripe.requests == []  # nothing reached Stripe
    assert pay(api, 5000)["status"] == "approved"


def test_a_capture_refused_at_the_cut_off_is_shown_on_the_payment_and_in_the_daily_close(
    api_for: Callable[..., Api], clock: PinnedClock, fake_stripe: FakeStripe
) -> None:
    api, _ = stripe_api(api_for, clock, fake_stripe)
    lost = pay(api, 12000)
    kept = pay(api, 8000)
    # Stripe cancelled the first authorisation on its side before the cut-off.
    fake_stripe.expire_authorization(str(lost["transaction_id"]))
    api.advance(DAY)
    failed = api.get(f"/v1/payments/{lost['id']}").json()
    assert failed["status"] == "voided"
    assert "canceled" in failed["capture_failure"]
    assert api.get(f"/v1/payments/{kept['id']}").json()["status"] == "settled"
    report = api.get("/v1/reports/daily-close", params={"date": "2026-03-04"}).json()
    assert report["batch"]["gross_amount"] == 8000
    kinds = [(d["kind"], d.get("payment_id")) for d in report["differences"]]
    assert ("payment_capture_failed", lost["id"]) in kinds
    assert report["ledger"]["voided_count"] == 1
    assert fake_stripe.captures[str(kept["transaction_id"])] == 1


def test_an_unknown_capture_outcome_is_read_back_and_never_captured_twice(
    api_for: Callable[..., Api], clock: PinnedClock, fake_stripe: FakeStripe
) -> None:
    api, _ = stripe_api(api_for, clock, fake_stripe)
    payment = pay(api, 15000)
    # Stripe captures, then answers 500 (and replays that 500 for the same key).
    fake_stripe.fail_next("/v1/payment_intents/", "500-after-apply")
    api.advance(DAY)
    assert api.get(f"/v1/payments/{payment['id']}").json()["status"] == "settled"
    assert fake_stripe.captures[str(payment["transaction_id"])] == 1


def test_a_rate_limited_refund_is_retried_under_the_same_key(
    api_for: Callable[..., Api], clock: PinnedClock, fake_stripe: FakeStripe
) -> None:
    api, _ = stripe_api(api_for, clock, fake_stripe)
    payment = pay(api, 20000)
    api.advance(DAY)
    fake_stripe.fail_next("/v1/refunds", "429")
    answer = api.post(f"/v1/payments/{payment['id']}/refund", {"amount": 5000})
    assert answer.status_code == 200, answer.text
    refunds = [r for r in fake_stripe.requests if r[1] == "/v1/refunds"]
    assert len(refunds) == 2 and refunds[0][3] == refunds[1][3]  # the same Idempotency-Key
    assert [r["amount"] for r in fake_stripe.refunds_of(str(payment["transaction_id"]))] == [5000]


def test_a_practice_without_a_stripe_account_is_told_to_connect_one(
    api_for: Callable[..., Api], clock: PinnedClock, fake_stripe: FakeStripe
) -> None:
    api = api_for("sqlite", clock, **stripe_settings(fake_stripe)).setup()
    refused = api.post(
        "/v1/payments",
        {"method": "virtual_terminal", "amount": 5000, "payment_method": "pm_card_visa"},
    )
    assert refused.status_code == 422
    assert refused.json()["field"] == "stripe_account"
    path = f"/v1/practices/{api.practice_id}/stripe-account"
    bad = api.client.put(path, json={"stripe_account": "sk_live_x"}, headers=api.operator)
    assert bad.status_code == 422 and bad.json()["field"] == "stripe_account"


def test_the_secret_key_is_never_logged_nor_answered(
    api_for: Callable[..., Api],
    clock: PinnedClock,
    fake_stripe: FakeStripe,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    api, _ = stripe_api(api_for, clock, fake_stripe)
    answers = [api.get(f"/v1/practices/{api.practice_id}").text]
    payment = pay(api, 5000)
    fake_stripe.fail_next("/v1/payment_intents/", "500-before-apply")
    api.advance(DAY)
    answers.append(api.post(f"/v1/payments/{payment['id']}/refund", {"amount": 100}).text)
    for text in [*answers, caplog.text, repr(api.client.app.state.ctx.settings)]:  # type: ignore[attr-defined]
        assert fake_stripe.secret_key not in text
        assert "whsec_test_payledger" not in text


def test_the_processor_setting_is_checked_at_start() -> None:
    with pytest.raises(ValueError, match="PAYLEDGER_PROCESSOR"):
        Settings.from_env({"PAYLEDGER_PROCESSOR": "square"})
    with pytest.raises(ValueError, match="PAYLEDGER_STRIPE_SECRET_KEY"):
        Settings.from_env({"PAYLEDGER_PROCESSOR": "stripe"})
    assert Settings.from_env({}).processor == "sandbox"
