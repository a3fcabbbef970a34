"""Refunds and voids take a reason from a short list and a note (needed for `other`), record
them on the intent events, and return them on the payment and its receipt; a bad reason or
a missing note is refused in words and nothing is refunded."""

from __future__ import annotations

from tests.conftest import Api
from tests.e2e.support import assert_problem, paid

DAY = 86400


def test_a_void_and_a_refund_carry_their_reasons(api: Api) -> None:
    same_day = paid(api, 4000)
    voided = api.post(
        f"/v1/payments/{same_day['id']}/refund", {"reason": "duplicate", "note": "keyed twice"}
    )
    assert voided.status_code == 200, voided.text
    assert voided.json()["kind"] == "void"
    payment = voided.json()["payment"]
    assert (payment["void_reason"], payment["void_note"]) == ("duplicate", "keyed twice")
    receipt = api.get(f"/v1/payments/{same_day['id']}/receipt").json()
    assert receipt["void_reason"] == "duplicate"

    settled = paid(api, 10000)
    api.advance(DAY)
    refunded = api.post(
        f"/v1/payments/{settled['id']}/refund", {"amount": 2500, "reason": "overcharge"}
    )
    assert refunded.status_code == 200, refunded.text
    [refund] = refunded.json()["payment"]["refunds"]
    assert (refund["reason"], refund["note"]) == ("overcharge", None)
    [on_receipt] = api.get(f"/v1/payments/{settled['id']}/receipt").json()["refunds"]
    assert on_receipt["reason"] == "overcharge"
    history = api.get(f"/v1/history/{settled['id']}").json()["items"]
    [asked] = [e for e in history if e["type"] == "PaymentRefundRequested"]
    assert asked["data"]["reason"] == "overcharge" and asked["data"]["note"] is None


def test_a_refund_without_a_reason_is_still_taken(api: Api) -> None:
    payment = paid(api, 3000)
    answer = api.post(f"/v1/payments/{payment['id']}/refund")
    assert answer.status_code == 200, answer.text
    assert answer.json()["payment"]["void_reason"] is None


def test_other_needs_a_note_and_an_unknown_reason_is_refused(api: Api) -> None:
    payment = paid(api, 3000)
    path = f"/v1/payments/{payment['id']}/refund"
    assert_problem(api.post(path, {"reason": "other"}), 422, says="note")
    assert_problem(api.post(path, {"reason": "other", "note": "   "}), 422, says="note")
    assert_problem(api.post(path, {"reason": "whim"}), 422)
    assert_problem(api.post(path, {"reason": "other", "note": "x" * 201}), 422)
    still = api.get(f"/v1/payments/{payment['id']}").json()
    assert still["status"] == "approved" and still["open_intents"] == []
    done = api.post(path, {"reason": "other", "note": "changed plan"})
    assert done.status_code == 200, done.text
    assert done.json()["payment"]["void_note"] == "changed plan"
