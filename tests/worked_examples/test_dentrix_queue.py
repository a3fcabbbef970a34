"""Worked example: a Dentrix office works its Post to Ledger queue by hand."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api

DAY = 86400


def test_a_dentrix_office_posts_by_hand_and_marks_associated(api_for: Any, clock: Any) -> None:
    api: Api = api_for("sqlite", clock).setup(pms="dentrix")
    api.client.patch(
        f"/v1/practices/{api.practice_id}/settings",
        headers=api.admin,
        json={"pms_payment_type": "Visa/MC"},
    )
    patient = api.post(
        "/v1/patients", {"pms_patient_id": "D-77", "first_name": "Ruth", "last_name": "Okoye"}
    ).json()
    first = api.pay(15000, patient_id=patient["id"]).json()
    clock.move(minutes=5)
    second = api.pay(4500, patient_id=patient["id"]).json()
    voided = api.pay(999, patient_id=patient["id"]).json()
    api.post(f"/v1/payments/{voided['id']}/refund")  # same day: a void, nothing to post

    queue = api.get("/v1/ledger-queue").json()["items"]
    assert [i["payment_id"] for i in queue] == [first["id"], second["id"]]
    entry = queue[0]["enter_payment"]
    assert entry["date"] == "2026-03-04"
    assert entry["payment_type"] == "Visa/MC"
    assert entry["amount"] == 15000 and entry["amount_display"] == "150.00"
    assert entry["payment_number"] == first["transaction_id"]
    assert entry["patient"] == {"id": patient["id"], "name": "Ruth Okoye", "pms_patient_id": "D-77"}
    assert f"[ref:{first['id']}]" in entry["note"]
    assert api.get("/v1/transactions/unassociated-count").json()["count"] == 2

    # Staff enter it in Dentrix, then mark it associated: it leaves the queue.
    marked = api.post(
        f"/v1/payments/{first['id']}/associate",
        {"source": "manual", "pms_reference": "Dentrix 5512"},
    )
    assert marked.status_code == 200
    assert [i["payment_id"] for i in api.get("/v1/ledger-queue").json()["items"]] == [second["id"]]
    assert api.get("/v1/transactions/unassociated-count").json()["count"] == 1
    api.post(f"/v1/payments/{second['id']}/associate", {"source": "inbox"})
    assert api.get("/v1/ledger-queue").json()["items"] == []
    assert api.get("/v1/transactions/unassociated-count").json()["count"] == 0

    # A refund the next day is a negative entry to post, and leaves the same way.
    api.advance(DAY)
    refund = api.post(f"/v1/payments/{first['id']}/refund", {"amount": 2000}).json()
    [item] = api.get("/v1/ledger-queue").json()["items"]
    assert (item["kind"], item["enter_payment"]["amount"]) == ("refund", -2000)
    assert item["mark_associated"]["body"] == {"source": "manual", "refund_id": refund["refund_id"]}
    api.post(f"/v1/payments/{first['id']}/associate", item["mark_associated"]["body"])
    assert api.get("/v1/ledger-queue").json()["items"] == []
    history = api.get(f"/v1/history/{first['id']}").json()["items"]
    marks = [e for e in history if e["type"] in ("PaymentAssociated", "PaymentRefundAssociated")]
    assert [m["data"]["source"] for m in marks] == ["manual", "manual"]
    assert all(m["actor"].startswith("user:") for m in marks)


def test_an_automatic_practice_queues_only_payments_without_a_patient(
    api_for: Any, clock: Any
) -> None:
    api: Api = api_for("sqlite", clock).setup(pms="opendental", auto_writeback=True)
    walk_in = api.pay(2500).json()
    patient = api.post(
        "/v1/patients", {"pms_patient_id": "5", "first_name": "A", "last_name": "B"}
    ).json()
    api.pay(3000, patient_id=patient["id"])
    queue = api.get("/v1/ledger-queue").json()["items"]
    assert [(i["payment_id"], i["reason"]) for i in queue] == [
        (walk_in["id"], "no patient to match")
    ]


def test_a_payment_posted_then_voided_queues_its_reversal(api_for: Any, clock: Any) -> None:
    api: Api = api_for("sqlite", clock).setup(pms="dentrix")
    payment = api.pay(6000).json()
    api.post(f"/v1/payments/{payment['id']}/associate", {"source": "manual"})
    assert api.get("/v1/ledger-queue").json()["items"] == []
    api.post(f"/v1/payments/{payment['id']}/refund")  # same day: a void
    [item] = api.get("/v1/ledger-queue").json()["items"]
    assert (item["kind"], item["enter_payment"]["amount"]) == ("void", -6000)
    assert item["mark_associated"]["body"] == {"source": "manual", "void": True}
    done = api.post(f"/v1/payments/{payment['id']}/associate", item["mark_associated"]["body"])
    assert done.status_code == 200, done.text
    assert api.get("/v1/ledger-queue").json()["items"] == []
    again = api.post(f"/v1/payments/{payment['id']}/associate", {"source": "manual", "void": True})
    assert again.status_code == 409
