"""Worked examples: a card on file and a payment plan, as the front desk sets them up.

Elm Dental is in New York. The clock starts on Wednesday 4 March 2026 at 10:00 there.
Ann Lee owes $300.00 for a crown and agrees to pay it in three monthly charges to her
card, which she lets the practice keep (the consent is recorded with its wording and
time). The plan's charges run with the practice's due work, which the sandbox clock
moves. The scenarios of a card kept through the API run on the sandbox and on Stripe (its
fake): there the card is Stripe's test PaymentMethod of the same card.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import Api, PinnedClock
from tests.e2e.support import new_patient
from tests.e2e.test_html_pages import browser
from tests.fakes.stripe import FakeStripe
from tests.stripe_fixtures import served_fake_stripe, stripe_api  # noqa: F401 - a fixture

HOUR = 3600
DAY = 24 * HOUR
CONSENT = (
    "I authorise Elm Dental to keep this card on file and to charge it for my care when I "
    "agree to a payment, including the payments of a plan I agree to."
)


#: the test cards as Stripe's test PaymentMethods (a card Stripe keeps, then declines)
ON_STRIPE = {"4242424242424242": "pm_card_visa", "4000000000000002": "pm_card_chargeCustomerFail"}


@pytest.fixture
def on_stripe(api_for: Callable[..., Api], clock: PinnedClock, fake_stripe: FakeStripe) -> Api:
    """The same practice processed on Stripe (the fake), its connected account set."""
    api, _ = stripe_api(api_for, clock, fake_stripe)
    return api


def keep_card(api: Api, patient_id: str, number: str = "4242424242424242") -> dict[str, Any]:
    body: dict[str, Any] = {
        "card": {"number": number, "exp_month": 12, "exp_year": 2030, "cvc": "123"},
        "consent": CONSENT,
    }
    if api.client.app.state.ctx.processor.name == "stripe":  # type: ignore[attr-defined]
        body = {"payment_method": ON_STRIPE[number], "consent": CONSENT}
    answer = api.post(f"/v1/patients/{patient_id}/cards", body)
    assert answer.status_code == 201, answer.text
    card: dict[str, Any] = answer.json()
    return card


def monthly_plan(api: Api, patient_id: str, card_id: str, **extra: Any) -> dict[str, Any]:
    body = {
        "patient_id": patient_id,
        "card_id": card_id,
        "amount": 10000,
        "total": 30000,
        "every": 1,
        "unit": "months",
        "start": "2026-03-04",
        **extra,
    }
    answer = api.post("/v1/payment-plans", body)
    assert answer.status_code == 201, answer.text
    plan: dict[str, Any] = answer.json()
    return plan


def plan_of(api: Api, plan_id: str) -> dict[str, Any]:
    answer = api.get(f"/v1/payment-plans/{plan_id}")
    assert answer.status_code == 200, answer.text
    plan: dict[str, Any] = answer.json()
    return plan


def plan_payments(api: Api) -> list[dict[str, Any]]:
    rows = api.get("/v1/transactions", params={"from": "2026-03-01", "to": "2026-12-31"}).json()
    return [t for t in rows["items"] if t["method"] == "payment_plan"]


def test_a_card_is_kept_with_consent_and_only_its_last_four(api: Api) -> None:
    ann = new_patient(api)
    card = keep_card(api, ann["id"])
    assert (card["state"], card["brand"], card["last4"]) == ("saved", "visa", "4242")
    assert card["consent"] == CONSENT
    assert card["consented_at"].startswith("2026-03-04T15:00")  # 10:00 in New York

    listed = api.get(f"/v1/patients/{ann['id']}/cards").json()["items"]
    assert [c["id"] for c in listed] == [card["id"]]
    assert "4242424242424242" not in api.get(f"/v1/history/{card['id']}").text

    # Without consent nothing is kept.
    body = {"card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "1"}}
    assert api.post(f"/v1/patients/{ann['id']}/cards", body).status_code == 422


def test_a_300_dollar_plan_in_three_monthly_charges_completes(api: Api) -> None:
    a_300_dollar_plan_in_three_monthly_charges_completes(api)


def test_a_300_dollar_plan_in_three_monthly_charges_completes_on_stripe(on_stripe: Api) -> None:
    a_300_dollar_plan_in_three_monthly_charges_completes(on_stripe)


def a_300_dollar_plan_in_three_monthly_charges_completes(api: Api) -> None:
    ann = new_patient(api)
    card = keep_card(api, ann["id"])
    plan = monthly_plan(api, ann["id"], card["id"])
    assert plan["state"] == "active"
    assert [(c["due_on"], c["amount"]) for c in plan["schedule"]] == [
        ("2026-03-04", 10000),
        ("2026-04-04", 10000),
        ("2026-05-04", 10000),
    ]

    # The first charge is due today: the due work charges it.
    api.advance(HOUR)
    plan = plan_of(api, plan["id"])
    assert plan["paid"] == 10000
    assert plan["next_charge_on"] == "2026-04-04"

    # A month later, and another: the plan is paid and completes.
    api.advance(31 * DAY)
    api.advance(30 * DAY)
    plan = plan_of(api, plan["id"])
    assert (plan["state"], plan["paid"], plan["remaining"]) == ("completed", 30000, 0)
    assert [c["status"] for c in plan["schedule"]] == ["paid", "paid", "paid"]
    assert plan["next_charge_on"] is None

    # Each charge is a payment in Transactions, marked as a plan's charge, on the card.
    charges = plan_payments(api)
    assert len(charges) == 3
    assert {(c["amount"], c["card"]["last4"], c["patient_id"]) for c in charges} == {
        (10000, "4242", ann["id"])
    }

    # Nothing more is charged after it completes.
    api.advance(40 * DAY)
    assert len(plan_payments(api)) == 3

    kinds = [e["type"] for e in api.get(f"/v1/history/{plan['id']}").json()["items"]]
    assert kinds == [
        "PaymentPlanCreated",
        "PaymentPlanCharged",
        "PaymentPlanCharged",
        "PaymentPlanCharged",
        "PaymentPlanCompleted",
    ]


def test_a_declined_charge_is_tried_again_then_the_plan_is_past_due(api: Api) -> None:
    a_declined_charge_is_tried_again_then_the_plan_is_past_due(api)


def test_a_declined_charge_is_tried_again_then_the_plan_is_past_due_on_stripe(
    on_stripe: Api,
) -> None:
    a_declined_charge_is_tried_again_then_the_plan_is_past_due(on_stripe)


def a_declined_charge_is_tried_again_then_the_plan_is_past_due(api: Api) -> None:
    ann = new_patient(api)
    card = keep_card(api, ann["id"], "4000000000000002")
    plan = monthly_plan(api, ann["id"], card["id"])

    # Today's charge is declined: the reason is on the plan, and a retry in three days.
    api.advance(HOUR)
    plan = plan_of(api, plan["id"])
    assert plan["state"] == "active"
    assert [(f["number"], f["reason"], f["retry_on"]) for f in plan["failures"]] == [
        (1, "card declined", "2026-03-07")
    ]
    assert plan["next_charge_on"] == "2026-03-07"
    assert plan["schedule"][0]["status"] == "retrying"

    # Three days later it is tried once more, declined again: the plan is past due.
    api.advance(3 * DAY)
    plan = plan_of(api, plan["id"])
    assert plan["state"] == "past_due"
    assert len(plan["failures"]) == 2
    assert plan["failures"][1]["retry_on"] is None
    assert "declined twice" in plan["end_reason"]
    assert plan["next_charge_on"] is None

    # Ann is told by email, once, in words: which charge, why, what is left.
    notices = past_due_notices(api)
    assert [(m["recipient"], m["subject"]) for m in notices] == [
        ("ann@example.com", "Elm Dental: your payment plan is past due")
    ]
    assert (
        "The $100.00 charge of your payment plan with Elm Dental, due March 4, 2026"
        in (notices[0]["body"])
    )
    assert "declined twice (card declined)" in notices[0]["body"]
    assert "$300.00 is left to pay" in notices[0]["body"]

    # A past-due plan charges nothing more by itself; both declines are in Transactions;
    # the due work running again (and again) sends no second notice.
    api.advance(60 * DAY)
    declined = plan_payments(api)
    assert [t["status"] for t in declined] == ["declined", "declined"]
    assert plan_of(api, plan["id"])["paid"] == 0
    assert len(past_due_notices(api)) == 1

    history = api.get(f"/v1/history/{plan['id']}").json()["items"]
    assert [(e["type"], e["actor"]) for e in history][-3:] == [
        ("PaymentPlanPastDue", "system:payment-plan"),
        ("PaymentPlanPastDueNoticeClaimed", "system:payment-plan"),
        ("PaymentPlanPastDueNoticeSent", "system:payment-plan"),
    ]
    assert history[-1]["data"]["email"] == "ann@example.com"

    # The plan on Ann's page says so.
    web, _ = browser(api, "frontdesk@elm.example")
    page = web.get(f"/payments/patients/{ann['id']}")
    assert page.status_code == 200
    said = re.search(rf'id="notice-{plan["id"]}">([^<]+)<', page.text)
    assert said is not None, page.text
    assert said.group(1).startswith(
        "The patient was emailed that the plan is past due (ann@example.com, Mar 7, 2026"
    ), said.group(1)


def test_a_patient_with_no_email_is_not_notified_and_that_is_recorded(api: Api) -> None:
    bo = new_patient(api, "7", first_name="Bo", email=None)
    card = keep_card(api, bo["id"], "4000000000000002")
    plan = monthly_plan(api, bo["id"], card["id"])
    api.advance(HOUR)
    api.advance(3 * DAY)
    assert plan_of(api, plan["id"])["state"] == "past_due"
    assert past_due_notices(api) == []
    last = api.get(f"/v1/history/{plan['id']}").json()["items"][-1]
    assert (last["type"], last["data"]["reason"]) == (
        "PaymentPlanPastDueNoticeNotSent",
        "the patient has no email address on file",
    )


def past_due_notices(api: Api) -> list[dict[str, Any]]:
    every = api.get("/v1/sandbox/mailbox").json()["items"]
    return [m for m in every if "payment plan is past due" in (m["subject"] or "")]


def test_a_cancelled_plan_charges_nothing_more(api: Api) -> None:
    a_cancelled_plan_charges_nothing_more(api)


def test_a_cancelled_plan_charges_nothing_more_on_stripe(on_stripe: Api) -> None:
    a_cancelled_plan_charges_nothing_more(on_stripe)


def a_cancelled_plan_charges_nothing_more(api: Api) -> None:
    ann = new_patient(api)
    card = keep_card(api, ann["id"])
    plan = monthly_plan(api, ann["id"], card["id"])
    api.advance(HOUR)

    cancelled = api.post(f"/v1/payment-plans/{plan['id']}/cancel", {"reason": "paid in cash"})
    assert cancelled.status_code == 200, cancelled.text
    plan = cancelled.json()
    assert (plan["state"], plan["end_reason"]) == ("cancelled", "paid in cash")
    assert plan["ended_by"].startswith("user:")
    assert [c["status"] for c in plan["schedule"]] == ["paid", "not_charged", "not_charged"]

    api.advance(90 * DAY)
    assert len(plan_payments(api)) == 1
    again = api.post(f"/v1/payment-plans/{plan['id']}/cancel", {"reason": "twice"})
    assert again.status_code == 409


def test_a_removed_card_stops_its_plan(api: Api) -> None:
    a_removed_card_stops_its_plan(api)


def test_a_removed_card_stops_its_plan_on_stripe(on_stripe: Api) -> None:
    a_removed_card_stops_its_plan(on_stripe)


def a_removed_card_stops_its_plan(api: Api) -> None:
    ann = new_patient(api)
    card = keep_card(api, ann["id"])
    plan = monthly_plan(api, ann["id"], card["id"])
    api.advance(HOUR)

    removed = api.client.delete(f"/v1/patients/{ann['id']}/cards/{card['id']}", headers=api.admin)
    assert removed.status_code == 200, removed.text
    assert removed.json()["state"] == "removed"

    plan = plan_of(api, plan["id"])
    assert plan["state"] == "cancelled"
    assert plan["end_reason"] == "its card on file was removed"

    api.advance(60 * DAY)
    assert len(plan_payments(api)) == 1

    # The removed card cannot be charged, nor carry a new plan.
    charge = api.post(f"/v1/patients/{ann['id']}/cards/{card['id']}/charge", {"amount": 500})
    assert charge.status_code == 409
    assert "removed" in charge.json()["detail"]
    body = {"patient_id": ann["id"], "card_id": card["id"], "amount": 100, "total": 100}
    refused = api.post(
        "/v1/payment-plans", {**body, "every": 1, "unit": "weeks", "start": "2026-06-01"}
    )
    assert refused.status_code == 409


def test_a_card_on_file_is_charged_from_the_patients_page(api: Api) -> None:
    a_card_on_file_is_charged_from_the_patients_page(api)


def test_a_card_on_file_is_charged_from_the_patients_page_on_stripe(on_stripe: Api) -> None:
    a_card_on_file_is_charged_from_the_patients_page(on_stripe)


def a_card_on_file_is_charged_from_the_patients_page(api: Api) -> None:
    ann = new_patient(api)
    card = keep_card(api, ann["id"])
    answer = api.post(f"/v1/patients/{ann['id']}/cards/{card['id']}/charge", {"amount": 4500})
    assert answer.status_code == 201, answer.text
    payment = answer.json()
    assert (payment["status"], payment["method"], payment["amount"]) == (
        "approved",
        "card_on_file",
        4500,
    )
    assert payment["card"]["last4"] == "4242"


def test_the_patient_keeps_their_card_on_the_pay_page(api: Api) -> None:
    ann = new_patient(api)
    sent = api.post(
        "/v1/payment-requests", {"patient_id": ann["id"], "amount": 8500, "channel": "email"}
    ).json()
    token = str(sent["pay_url"]).rsplit("/pay/", 1)[1]
    page = api.client.get(f"/pay/{token}")
    assert "Keep my card on file" in page.text and "Elm Dental" in page.text
    attempt = re.search(r'name="attempt" value="([^"]+)"', page.text)
    assert attempt is not None
    fields = {
        "card_number": "4242424242424242",
        "exp_month": "12",
        "exp_year": "2030",
        "cvc": "123",
        "attempt": attempt.group(1),
        "keep_card": "yes",
    }
    paid = api.client.post(f"/pay/{token}", data=fields)
    assert paid.status_code == 200, paid.text
    assert "Your card ending 4242 is kept on file with Elm Dental" in paid.text

    # The same form posted again keeps nothing twice.
    again = api.client.post(f"/pay/{token}", data=fields)
    assert again.status_code == 200
    cards = api.get(f"/v1/patients/{ann['id']}/cards").json()["items"]
    assert [(c["state"], c["source"], c["last4"]) for c in cards] == [("saved", "pay_link", "4242")]
    history = api.get(f"/v1/history/{cards[0]['id']}").json()["items"]
    assert [(e["type"], e["actor"]) for e in history] == [
        ("CardSaveRequested", "patient"),
        ("CardSaved", "patient"),
    ]

    # Without the box ticked, nothing is kept.
    other = new_patient(api, "2")
    sent = api.post(
        "/v1/payment-requests", {"patient_id": other["id"], "amount": 1000, "channel": "email"}
    ).json()
    token = str(sent["pay_url"]).rsplit("/pay/", 1)[1]
    attempt = re.search(r'name="attempt" value="([^"]+)"', api.client.get(f"/pay/{token}").text)
    assert attempt is not None
    fields = {**fields, "attempt": attempt.group(1)}
    del fields["keep_card"]
    assert api.client.post(f"/pay/{token}", data=fields).status_code == 200
    assert api.get(f"/v1/patients/{other['id']}/cards").json()["items"] == []
