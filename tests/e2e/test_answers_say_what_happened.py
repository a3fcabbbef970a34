"""Answers an office acts on say what happened: receipts state the status of what they
are a receipt for, a second full refund says nothing is left, the Deposits list shows
scheduled deposits by default, and a setting that cannot work is refused.

Elm Dental (New York); the clock starts on Wednesday 4 March 2026, 10:00 local.
"""

from __future__ import annotations

from tests.conftest import Api
from tests.e2e.support import assert_problem, paid

DAY = 86400
HOUR = 3600


def refund(api: Api, payment_id: str, body: dict[str, int] | None = None) -> dict[str, object]:
    response = api.post(f"/v1/payments/{payment_id}/refund", body or {})
    assert response.status_code == 200, response.text
    answer: dict[str, object] = response.json()
    return answer


def mailbox_bodies(api: Api) -> list[str]:
    return [m["body"] for m in api.get("/v1/sandbox/mailbox").json()["items"]]


# -- receipts ----------------------------------------------------------------------------


def test_a_voided_payments_receipt_says_voided(api: Api) -> None:
    payment = paid(api, 4000)
    assert refund(api, payment["id"])["kind"] == "void"
    receipt = api.get(f"/v1/payments/{payment['id']}/receipt").json()
    assert receipt["confirmation"] == "voided"
    assert receipt["voided_at"] is not None
    sent = api.post(
        f"/v1/payments/{payment['id']}/receipt/send",
        {"email": "ann@example.com", "confirm_email": "ann@example.com"},
    )
    assert sent.status_code == 200, sent.text
    [body] = mailbox_bodies(api)
    assert "Status: voided" in body and "approved" not in body


def test_a_refund_receipt_says_pending_until_its_batch_closes_then_refunded(api: Api) -> None:
    payment = paid(api, 10000)
    api.advance(DAY)  # the payment's batch closed: it settled
    done = refund(api, payment["id"], {"amount": 2500})
    refund_id = str(done["refund_id"])
    receipt = api.get(f"/v1/payments/{payment['id']}/receipt").json()
    assert receipt["confirmation"] == "approved"  # the payment itself was approved
    [pending] = receipt["refunds"]
    assert pending["confirmation"] == "refund pending settlement"
    body = {"email": "ann@example.com", "confirm_email": "ann@example.com", "refund_id": refund_id}
    assert api.post(f"/v1/payments/{payment['id']}/receipt/send", body).status_code == 200
    [first] = mailbox_bodies(api)
    assert "Status: refund pending settlement" in first and "settled\n" not in first

    api.advance(DAY)  # the refund's batch closed
    [settled] = api.get(f"/v1/payments/{payment['id']}/receipt").json()["refunds"]
    assert settled["confirmation"] == "refunded"
    assert api.post(f"/v1/payments/{payment['id']}/receipt/send", body).status_code == 200
    assert sorted(b.split("Status: ")[1].split("\n")[0] for b in mailbox_bodies(api)) == [
        "refund pending settlement",
        "refunded",
    ]


# -- refunds -----------------------------------------------------------------------------


def test_refunding_a_fully_refunded_payment_says_nothing_is_left(api: Api) -> None:
    payment = paid(api, 10000)
    api.advance(DAY)
    refund(api, payment["id"], {"amount": 4000})
    refund(api, payment["id"])  # the rest
    again = api.post(f"/v1/payments/{payment['id']}/refund", {})
    problem = assert_problem(
        again,
        409,
        says="nothing is left to refund: all $100.00 of this payment was refunded already",
    )
    assert problem.get("field") is None
    with_amount = api.post(f"/v1/payments/{payment['id']}/refund", {"amount": 100})
    assert_problem(with_amount, 409, says="nothing is left to refund")
    assert api.get(f"/v1/payments/{payment['id']}").json()["refunded_amount"] == 10000


# -- deposits ----------------------------------------------------------------------------


def test_the_default_deposits_range_shows_the_deposit_scheduled_for_tomorrow(
    api_for: object, clock: object
) -> None:
    office: Api = api_for("sqlite", clock).setup(batch_cutoff="17:00")  # type: ignore[operator]
    paid(office, 12500)
    office.advance(8 * HOUR)  # 18:00 Wednesday: today's batch closed at 17:00
    answer = office.get("/v1/deposits").json()
    [deposit] = answer["items"]
    assert (deposit["deposit_date"], deposit["status"]) == ("2026-03-05", "scheduled")
    assert answer["to"] == "2026-03-05"
    assert answer["from"] == "2026-02-03"
    csv = office.get("/v1/exports/deposits.csv")
    assert csv.status_code == 200 and "2026-03-05" in csv.text


def test_a_friday_batch_deposited_on_monday_is_in_the_default_range(
    api_for: object, clock: object
) -> None:
    office: Api = api_for("sqlite", clock).setup(batch_cutoff="17:00")  # type: ignore[operator]
    office.advance(2 * DAY)  # Friday 6 March, 10:00
    paid(office, 5000)
    office.advance(8 * HOUR)
    [deposit] = office.get("/v1/deposits").json()["items"]
    assert deposit["deposit_date"] == "2026-03-09"  # Monday


# -- settings that cannot work -------------------------------------------------------------


def test_a_dentrix_practice_with_automatic_writeback_is_refused(api: Api) -> None:
    body = {
        "name": "Dentrix Dental",
        "timezone": "America/Chicago",
        "pms": "dentrix",
        "auto_writeback": True,
        "deposit_account": {"kind": "Checking", "last4": "1111"},
    }
    refused = api.post("/v1/practices", body, headers=api.operator)
    assert_problem(refused, 422, field="auto_writeback", says="Dentrix")
    assert "by hand" in refused.json()["detail"]
    created = api.post("/v1/practices", {**body, "auto_writeback": False}, headers=api.operator)
    assert created.status_code == 201, created.text


def test_switching_on_automatic_writeback_for_dentrix_is_refused(api: Api) -> None:
    settings = f"/v1/practices/{api.practice_id}/settings"
    assert api.client.patch(settings, json={"auto_writeback": True}, headers=api.admin).json()[
        "auto_writeback"
    ]
    to_dentrix = api.client.patch(settings, json={"pms": "dentrix"}, headers=api.admin)
    assert_problem(to_dentrix, 422, field="auto_writeback", says="Dentrix")
    practice = api.get(f"/v1/practices/{api.practice_id}").json()
    assert (practice["pms"], practice["auto_writeback"]) == ("opendental", True)
    both = api.client.patch(
        settings, json={"pms": "dentrix", "auto_writeback": False}, headers=api.admin
    )
    assert both.status_code == 200, both.text
    again = api.client.patch(settings, json={"auto_writeback": True}, headers=api.admin)
    assert_problem(again, 422, field="auto_writeback", says="staff post them by hand")
