"""Worked examples: the office's views follow the money, not just the first word on it.

Rosa Diaz of Elm Dental (New York) owes $300.00 by the PMS's last balance; she last
paid on 10 February by the PMS. The AR list's balance is that snapshot less what the
ledger collected since; "Last paid" is her latest payment that still stands. A payment
that is voided, or taken back by a lost card dispute, is owed again; a voided pay-link
payment no longer pays its request.

The clock starts on Wednesday 4 March 2026, 10:00 in New York.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from domain.payments import Payment
from services.context import Components
from tests.conftest import Api, ComponentsFactory
from tests.worked_examples.test_payment_requests import pay, pay_path, send

DAY = 86400
HOUR = 3600
CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}


def rosa(api: Api) -> dict[str, Any]:
    body = {
        "pms_patient_id": "501",
        "first_name": "Rosa",
        "last_name": "Diaz",
        "email": "rosa@example.com",
        "phone": "+16175550123",
    }
    patient: dict[str, Any] = api.post("/v1/patients", body).json()
    owed = {"total": 30000, "bal_0_30": 30000, "last_payment_date": "2026-02-10"}
    answer = api.client.put(f"/v1/patients/{patient['id']}/balance", json=owed, headers=api.admin)
    assert answer.status_code == 200, answer.text
    api.advance(HOUR)  # 11:00: what she pays from now on, the PMS's balance did not count
    return patient


def ar_row(api: Api, patient: dict[str, Any]) -> dict[str, Any]:
    rows = api.get("/v1/ar/patients").json()["items"]
    (row,) = [r for r in rows if r["id"] == patient["id"]]
    return row


def card_payment(api: Api, patient: dict[str, Any], amount: int, card: str = CARD["number"]) -> Any:
    body = {
        "method": "virtual_terminal",
        "amount": amount,
        "patient_id": patient["id"],
        "card": {**CARD, "number": card},
    }
    return api.post("/v1/payments", body)


def the_ledger(make_components: ComponentsFactory) -> Components:
    return make_components.made[-1]


def test_a_lost_dispute_is_owed_again(api: Api, make_components: ComponentsFactory) -> None:
    patient = rosa(api)
    paid = card_payment(api, patient, 12000).json()
    assert ar_row(api, patient)["total"] == 18000
    api.advance(DAY)  # the batch closes: the payment settles

    # Weeks later the cardholder's bank decides the dispute against the office: the
    # processor keeps the $120.00 it took back (the Stripe webhook records this).
    ctx = the_ledger(make_components)
    payment = ctx.get(Payment, UUID(paid["id"]), UUID(api.practice_id))
    payment.record_dispute(
        dispute_id="dp_rosa",
        reason="fraudulent",
        amount=12000,
        evidence_due_by=None,
        status="lost",
        processor_event_id="evt_dispute_lost",
        at=ctx.clock.now(payment.practice_id),
        actor="processor",
    )
    ctx.save(payment)

    # Rosa owes the $300.00 again: the payment no longer lowers her balance.
    row = ar_row(api, patient)
    assert (row["total"], row["bal_0_30"], row["patient_portion"]) == (30000, 30000, 30000)
    # She did pay that day, though: the payment stands, its money was taken back.
    assert row["last_payment_date"] == "2026-03-04"


def test_a_won_dispute_changes_no_balance(api: Api, make_components: ComponentsFactory) -> None:
    patient = rosa(api)
    paid = card_payment(api, patient, 12000).json()
    api.advance(DAY)
    ctx = the_ledger(make_components)
    payment = ctx.get(Payment, UUID(paid["id"]), UUID(api.practice_id))
    payment.record_dispute(
        dispute_id="dp_rosa",
        reason="fraudulent",
        amount=12000,
        evidence_due_by=None,
        status="won",
        processor_event_id="evt_dispute_won",
        at=ctx.clock.now(payment.practice_id),
        actor="processor",
    )
    ctx.save(payment)
    assert ar_row(api, patient)["total"] == 18000


def test_a_voided_payment_is_owed_again_and_is_nobodys_last_payment(api: Api) -> None:
    patient = rosa(api)
    # A declined card is no payment: "Last paid" stays the PMS's 10 February.
    declined = card_payment(api, patient, 12000, card="4000000000000002")
    assert declined.json()["status"] == "declined"
    assert ar_row(api, patient)["last_payment_date"] == "2026-02-10"

    paid = card_payment(api, patient, 12000).json()
    row = ar_row(api, patient)
    assert (row["total"], row["last_payment_date"]) == (18000, "2026-03-04")

    # The same afternoon the front desk voids it (the batch has not closed).
    voided = api.post(f"/v1/payments/{paid['id']}/refund").json()
    assert voided["kind"] == "void"

    # She owes the $300.00 again, and her last payment is the PMS's again.
    row = ar_row(api, patient)
    assert (row["total"], row["collected_since"]) == (30000, 0)
    assert row["last_payment_date"] == "2026-02-10"


def test_a_voided_pay_link_payment_reopens_its_request(api: Api) -> None:
    patient = rosa(api)
    request = send(api, patient, 12000)
    assert pay(api, request).status_code == 200
    paid = api.get(f"/v1/payment-requests/{request['id']}").json()
    assert paid["status"] == "completed"
    assert ar_row(api, patient)["last_request"]["status"] == "completed"

    # The office voids the payment the same day (the patient paid the wrong bill).
    voided = api.post(f"/v1/payments/{paid['payment_id']}/refund").json()
    assert voided["kind"] == "void"
    # The void reopens the request, in the same save as the payment's void.

    # The request is requested again, for the whole $120.00, and says why.
    state = api.get(f"/v1/payment-requests/{request['id']}").json()
    assert (state["status"], state["paid_amount"], state["payment_id"]) == (
        "requested",
        None,
        None,
    )
    reopened = [e for e in state["history"] if e["type"] == "PaymentRequestReopened"]
    assert [e["data"]["reason"] for e in reopened] == ["the payment was voided"]
    assert [e["data"]["payment_id"] for e in reopened] == [paid["payment_id"]]
    listed = api.get("/v1/payment-requests", params={"status": "requested"}).json()["items"]
    assert [r["id"] for r in listed] == [request["id"]]
    assert ar_row(api, patient)["last_request"]["status"] == "requested"
    # Voiding again changes nothing more.
    again = api.post(f"/v1/payments/{paid['payment_id']}/refund")
    assert again.status_code == 409, again.text  # already voided
    after = api.get(f"/v1/payment-requests/{request['id']}").json()["history"]
    assert [e["type"] for e in after].count("PaymentRequestReopened") == 1

    # The link takes payment again, for what is owed.
    page = api.client.get(pay_path(request))
    assert page.status_code == 200 and "Pay $120.00" in page.text

    # And it is on the expiry list again: two weeks after it was sent, it expires.
    api.advance(14 * DAY)
    expired = api.get(f"/v1/payment-requests/{request['id']}").json()
    assert (expired["status"], expired["cancel_reason"]) == ("cancelled", "expired")


def test_a_voided_part_payment_is_owed_again_on_its_request(api: Api) -> None:
    patient = rosa(api)
    request = send(api, patient, 12000)
    assert pay(api, request, amount="50.00").status_code == 200
    part = api.get(f"/v1/payment-requests/{request['id']}").json()
    assert (part["status"], part["paid_amount"]) == ("requested", 5000)
    assert "Pay $70.00" in api.client.get(pay_path(request)).text

    history = part["history"]
    (partly,) = [e for e in history if e["type"] == "PaymentRequestPartlyPaid"]
    payment_id = partly["data"]["payment_id"]
    assert api.post(f"/v1/payments/{payment_id}/refund").json()["kind"] == "void"

    state = api.get(f"/v1/payment-requests/{request['id']}").json()
    assert (state["status"], state["paid_amount"]) == ("requested", None)
    assert "Pay $120.00" in api.client.get(pay_path(request)).text


def test_a_voided_payment_of_a_request_behind_a_newer_one_leaves_it_unpaid(api: Api) -> None:
    patient = rosa(api)
    first = send(api, patient, 12000)
    assert pay(api, first).status_code == 200
    paid = api.get(f"/v1/payment-requests/{first['id']}").json()
    newer = send(api, patient, 18000)  # the office asks for the rest of her balance

    assert api.post(f"/v1/payments/{paid['payment_id']}/refund").json()["kind"] == "void"

    # One outstanding request per patient: the older one is unpaid, with the reason on
    # record, and cancelled as superseded by the newer one, which is left as it was.
    older = api.get(f"/v1/payment-requests/{first['id']}").json()
    assert (older["status"], older["cancel_reason"], older["paid_amount"]) == (
        "cancelled",
        "superseded",
        None,
    )
    assert older["superseded_by"] == newer["id"]
    assert [e["type"] for e in older["history"]][-2:] == [
        "PaymentRequestReopened",
        "PaymentRequestCancelled",
    ]
    assert api.client.get(pay_path(first)).status_code == 410
    assert api.get(f"/v1/payment-requests/{newer['id']}").json()["status"] == "requested"
    assert ar_row(api, patient)["last_request"] == {
        "id": newer["id"],
        "date": "2026-03-04",
        "amount": 18000,
        "status": "requested",
    }
