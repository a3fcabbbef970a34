"""Worked examples: the refund action as a front-desk admin sees it.

Elm Dental is in New York; its batch closes at 23:59 local time. The clock
starts on Wednesday 4 March 2026 at 10:00 in New York.
"""

from __future__ import annotations

from tests.conftest import Api, PinnedClock

HOUR = 3600


def test_a_same_day_refund_is_a_void_for_the_full_amount(api: Api) -> None:
    # 10:00 - a patient pays $125.00 at the virtual terminal.
    payment = api.pay(12500).json()
    assert payment["status"] == "approved"

    # 15:00 - they call back: the visit is cancelled. The admin presses Refund.
    api.advance(5 * HOUR)
    answer = api.post(f"/v1/payments/{payment['id']}/refund").json()

    # The batch has not closed, so the system voids: no money is taken at all.
    assert answer["kind"] == "void"
    assert answer["amount"] == 12500
    assert answer["payment"]["status"] == "voided"
    assert answer["payment"]["refunds"] == []

    # At the cut-off nothing of it settles, and nothing is left to post to the PMS.
    api.advance(10 * HOUR)
    after = api.get(f"/v1/payments/{payment['id']}").json()
    assert after["status"] == "voided"
    assert after["batch_id"] is None
    assert api.get("/v1/transactions/unassociated-count").json()["count"] == 0


def test_a_partial_refund_after_settlement(api: Api) -> None:
    # Wednesday 10:00 - $300.00 for a crown prep.
    payment = api.pay(30000).json()

    # Thursday 09:00 - last night's batch closed: the payment is processed.
    api.advance(23 * HOUR)
    settled = api.get(f"/v1/payments/{payment['id']}").json()
    assert settled["status"] == "settled"
    assert settled["batch_id"] is not None

    # Insurance paid more than estimated: refund $80.00 of it.
    answer = api.post(f"/v1/payments/{payment['id']}/refund", {"amount": 8000}).json()
    assert answer["kind"] == "refund"
    assert answer["amount"] == 8000
    assert answer["payment"]["refunded_amount"] == 8000

    # The receipt lists the payment and its refund; $220.00 could still be refunded.
    receipt = api.get(f"/v1/payments/{payment['id']}/receipt").json()
    assert receipt["amount"] == 30000
    assert [r["amount"] for r in receipt["refunds"]] == [8000]

    # Refunding without an amount refunds what remains.
    rest = api.post(f"/v1/payments/{payment['id']}/refund").json()
    assert (rest["kind"], rest["amount"]) == ("refund", 22000)
    assert rest["payment"]["refunded_amount"] == 30000


def test_a_refund_that_would_exceed_the_payment_is_refused(api: Api) -> None:
    payment = api.pay(5000).json()
    api.advance(24 * HOUR)
    assert api.post(f"/v1/payments/{payment['id']}/refund", {"amount": 3000}).status_code == 200

    # $30.00 of $50.00 is back on the card; another $25.00 would be $5.00 too much.
    refused = api.post(f"/v1/payments/{payment['id']}/refund", {"amount": 2500})
    assert refused.status_code == 422
    problem = refused.json()
    assert problem["type"] == "/problems/refund-exceeds-remaining"
    assert "$25.00" in problem["detail"] and "$20.00" in problem["detail"]

    # Nothing was recorded by the refused attempt.
    after = api.get(f"/v1/payments/{payment['id']}").json()
    assert after["refunded_amount"] == 3000
    assert len(after["refunds"]) == 1


def test_a_payment_at_2358_settles_that_night_and_one_at_0001_the_next(
    api: Api, clock: PinnedClock
) -> None:
    clock.move(hours=13, minutes=58)  # Wednesday 23:58 in New York
    late = api.pay(1000).json()
    clock.move(minutes=3)  # Thursday 00:01
    early = api.pay(2000).json()
    api.advance(60)  # past Wednesday's cut-off: only the 23:58 payment settles
    assert api.get(f"/v1/payments/{late['id']}").json()["status"] == "settled"
    assert api.get(f"/v1/payments/{early['id']}").json()["status"] == "approved"
    # The 00:01 payment can still be voided on Thursday.
    assert api.post(f"/v1/payments/{early['id']}/refund").json()["kind"] == "void"
