"""Worked examples: pay links by text and email, as the front desk and the patient see them.

Elm Dental (New York). The clock starts on Wednesday 4 March 2026, 10:00 local.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import BACKENDS, NO_RATE_LIMITS, Api, PinnedClock

DAY = 86400
CARD = {"card_number": "4242424242424242", "exp_month": "12", "exp_year": "2030", "cvc": "123"}


@pytest.fixture(params=BACKENDS)
def api(api_for: Callable[..., Api], clock: PinnedClock, request: pytest.FixtureRequest) -> Api:
    """The suite's API, without the request-rate limits: these pages are sent to one
    link many times a second here (the limits have tests of their own; the pay page's
    failed-attempt limit, which these test, stays)."""
    return api_for(str(request.param), clock, rate_limits=NO_RATE_LIMITS).setup()


def new_patient(api: Api, pms_id: str = "501", **extra: Any) -> dict[str, Any]:
    body = {
        "pms_patient_id": pms_id,
        "first_name": "Rosa",
        "last_name": "Diaz",
        "email": "rosa@example.com",
        "phone": "+16175550123",
        **extra,
    }
    response = api.post("/v1/patients", body)
    assert response.status_code == 201, response.text
    patient: dict[str, Any] = response.json()
    return patient


def send(api: Api, patient: dict[str, Any], amount: int, channel: str = "sms") -> dict[str, Any]:
    response = api.post(
        "/v1/payment-requests", {"patient_id": patient["id"], "amount": amount, "channel": channel}
    )
    assert response.status_code == 201, response.text
    request: dict[str, Any] = response.json()
    return request


def pay_path(request: dict[str, Any]) -> str:
    return "/pay/" + request["pay_url"].rsplit("/pay/", 1)[1]


def pay(api: Api, request: dict[str, Any], **form: str) -> Any:
    page = api.client.get(pay_path(request))
    attempt = re.search(r'name="attempt" value="([^"]+)"', page.text)
    fields = {**CARD, "attempt": attempt.group(1) if attempt else "", **form}
    return api.client.post(pay_path(request), data=fields)


def test_a_newer_request_supersedes_the_older_one(api: Api) -> None:
    patient = new_patient(api)
    first = send(api, patient, 12000)
    second = send(api, patient, 15000, channel="email")
    older = api.get(f"/v1/payment-requests/{first['id']}").json()
    assert (older["status"], older["cancel_reason"]) == ("cancelled", "superseded")
    assert older["superseded_by"] == second["id"]
    assert api.get(f"/v1/payment-requests/{second['id']}").json()["status"] == "requested"
    # The superseded link takes no payment; the page says so.
    closed = pay(api, first)
    assert closed.status_code == 410
    assert "cancelled" in closed.text


def test_a_request_paid_in_full_completes_and_shows_in_transactions(api: Api) -> None:
    patient = new_patient(api)
    request = send(api, patient, 12500)
    # The patient's text holds the practice, the amount and the link.
    mailbox = api.get("/v1/sandbox/mailbox").json()["items"]
    assert mailbox[0]["channel"] == "sms" and mailbox[0]["recipient"] == "+16175550123"
    assert "Elm Dental" in mailbox[0]["body"] and "$125.00" in mailbox[0]["body"]
    assert request["pay_url"] in mailbox[0]["body"]

    page = api.client.get(pay_path(request))
    assert page.status_code == 200
    assert "Elm Dental" in page.text and "$125.00" in page.text

    paid = pay(api, request)
    assert paid.status_code == 200, paid.text
    assert "approved" in paid.text
    done = api.get(f"/v1/payment-requests/{request['id']}").json()
    assert (done["status"], done["paid_amount"]) == ("completed", 12500)
    payment = api.get(f"/v1/payments/{done['payment_id']}").json()
    assert (payment["method"], payment["patient_id"]) == ("pay_link", patient["id"])
    assert payment["request_id"] == request["id"]
    listed = api.get("/v1/transactions").json()["items"]
    assert [t["id"] for t in listed] == [payment["id"]]
    # The link is useless now.
    assert pay(api, request).status_code == 410


def test_a_partial_payment_leaves_the_rest_payable(api: Api) -> None:
    request = send(api, new_patient(api), 20000)
    assert pay(api, request, amount="75.50").status_code == 200
    part = api.get(f"/v1/payment-requests/{request['id']}").json()
    # Still requested, for the $124.50 still owed.
    assert (part["status"], part["amount"], part["paid_amount"]) == ("requested", 20000, 7550)
    page = api.client.get(pay_path(request))
    assert page.status_code == 200
    assert "$75.50 of $200.00 is paid" in page.text and "$124.50" in page.text
    assert 'value="124.50"' in page.text
    # More than what is owed is refused, saying what is owed.
    too_much = pay(api, request, amount="125.00")
    assert too_much.status_code == 422
    assert "at most the $124.50 still owed" in too_much.text
    # Paying the rest completes it.
    assert pay(api, request).status_code == 200
    done = api.get(f"/v1/payment-requests/{request['id']}").json()
    assert (done["status"], done["paid_amount"]) == ("completed", 20000)
    assert pay(api, request).status_code == 410
    assert len(api.get("/v1/transactions").json()["items"]) == 2


def test_paying_more_than_requested_is_refused(api: Api) -> None:
    request = send(api, new_patient(api), 5000)
    refused = pay(api, request, amount="50.01")
    assert refused.status_code == 422
    assert "at most the $50.00 requested" in refused.text
    assert api.get(f"/v1/payment-requests/{request['id']}").json()["status"] == "requested"


def test_an_unpaid_request_expires_after_exactly_fourteen_days(api: Api) -> None:
    request = send(api, new_patient(api), 9900)
    api.advance(14 * DAY - 1)
    assert api.get(f"/v1/payment-requests/{request['id']}").json()["status"] == "requested"
    api.advance(1)
    expired = api.get(f"/v1/payment-requests/{request['id']}").json()
    assert (expired["status"], expired["cancel_reason"]) == ("cancelled", "expired")
    history = expired["history"]
    assert history[-1]["type"] == "PaymentRequestCancelled"
    assert history[-1]["occurred_at"] == "2026-03-18T15:00:00.000000Z"  # sent + 14 days
    page = api.client.get(pay_path(request))
    assert page.status_code == 410 and "expired" in page.text
    assert pay(api, request).status_code == 410


def test_staff_cancel_a_request(api: Api) -> None:
    request = send(api, new_patient(api), 4000)
    cancelled = api.post(f"/v1/payment-requests/{request['id']}/cancel").json()
    assert (cancelled["status"], cancelled["cancel_reason"]) == ("cancelled", "staff")
    assert cancelled["cancelled_by"].startswith("user:")
    again = api.post(f"/v1/payment-requests/{request['id']}/cancel")
    assert again.status_code == 409


def test_a_declined_card_leaves_the_request_open_and_says_why(api: Api) -> None:
    request = send(api, new_patient(api), 6000)
    declined = pay(api, request, card_number="4000000000009995")
    assert declined.status_code == 402
    assert "insufficient funds" in declined.text
    assert api.get(f"/v1/payment-requests/{request['id']}").json()["status"] == "requested"
    assert pay(api, request).status_code == 200


def test_two_reminders_before_expiry_at_the_practice_offsets(api: Api) -> None:
    settings = api.client.patch(
        f"/v1/practices/{api.practice_id}/settings",
        json={"reminder_days": [3, 10]},
        headers=api.admin,
    )
    assert settings.status_code == 200, settings.text
    request = send(api, new_patient(api), 8000, channel="email")
    api.advance(3 * DAY)
    api.advance(7 * DAY)
    api.advance(4 * DAY)
    reminded_on_days_3_and_10_then_expired(api, request)


def reminded_on_days_3_and_10_then_expired(api: Api, request: dict[str, Any]) -> None:
    """The $80.00 email request of 4 March: the request and two reminders in the mailbox,
    reminded on 7 and 14 March, then expired (on record with its whole history)."""
    mailbox = api.get("/v1/sandbox/mailbox").json()["items"]
    subjects = sorted(m["subject"] for m in mailbox)
    assert subjects == [
        "Elm Dental: payment request for $80.00",
        "Reminder: Elm Dental: payment request for $80.00",
        "Reminder: Elm Dental: payment request for $80.00",
    ]
    history = api.get(f"/v1/payment-requests/{request['id']}").json()["history"]
    reminders = [e for e in history if e["type"] == "PaymentRequestReminded"]
    assert [(e["data"]["number"], e["occurred_at"][:10]) for e in reminders] == [
        (1, "2026-03-07"),
        (2, "2026-03-14"),
    ]
    assert history[-1]["type"] == "PaymentRequestCancelled"
    kinds = [e["type"] for e in history]
    assert kinds.index("PaymentRequestReminded") < kinds.index("PaymentRequestCancelled")


def test_a_paid_request_sends_no_reminder(api: Api) -> None:
    api.client.patch(
        f"/v1/practices/{api.practice_id}/settings", json={"reminder_days": [3]}, headers=api.admin
    )
    request = send(api, new_patient(api), 8000, channel="email")
    assert pay(api, request).status_code == 200
    api.advance(5 * DAY)
    assert len(api.get("/v1/sandbox/mailbox").json()["items"]) == 1


def test_failed_card_attempts_are_rate_limited_per_link(api: Api) -> None:
    request = send(api, new_patient(api), 6000)
    for _ in range(5):
        assert pay(api, request, card_number="4000000000000002").status_code == 402
    limited = pay(api, request)
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "900"
    api.advance(16 * 60)
    assert pay(api, request).status_code == 200


def test_an_unknown_link_shows_nothing_of_anyone(api: Api) -> None:
    page = api.client.get("/pay/not-a-real-token")
    assert page.status_code == 404
    assert "not valid" in page.text


def test_requests_report_lists_paid_and_cancelled_with_reasons(api: Api) -> None:
    first, second = new_patient(api, "1"), new_patient(api, "2", first_name="Lee")
    superseded = send(api, first, 1000)
    paid = send(api, first, 2000)
    pay(api, paid, amount="15.00")
    pay(api, paid, amount="5.00")
    part_paid = send(api, second, 4000)
    pay(api, part_paid, amount="10.00")
    open_one = send(api, second, 3000)
    report = api.get("/v1/payment-requests").json()["items"]
    rows = {
        r["id"]: (r["status"], r["amount"], r["paid_amount"], r["cancel_reason"]) for r in report
    }
    assert rows == {
        superseded["id"]: ("cancelled", 1000, None, "superseded"),
        paid["id"]: ("completed", 2000, 2000, None),
        part_paid["id"]: ("cancelled", 4000, 1000, "superseded"),
        open_one["id"]: ("requested", 3000, None, None),
    }
    only_open = api.get("/v1/payment-requests", params={"status": "requested"}).json()["items"]
    assert [r["id"] for r in only_open] == [open_one["id"]]
    csv_text = api.get("/v1/exports/payment-requests.csv").text
    assert csv_text.splitlines()[0].startswith("id,date,sent_at,patient_id")
    assert ",20.00,20.00,completed," in csv_text


def test_a_reminder_of_a_part_paid_request_asks_for_what_is_still_owed(api: Api) -> None:
    api.client.patch(
        f"/v1/practices/{api.practice_id}/settings", json={"reminder_days": [3]}, headers=api.admin
    )
    request = send(api, new_patient(api), 8000, channel="email")
    assert pay(api, request, amount="30.00").status_code == 200
    api.advance(3 * DAY)
    reminder = [
        m for m in api.get("/v1/sandbox/mailbox").json()["items"] if "Reminder" in m["subject"]
    ]
    assert [m["subject"] for m in reminder] == ["Reminder: Elm Dental: payment request for $50.00"]
    assert "a payment request for $80.00, of which $50.00 is still owed" in reminder[0]["body"]
