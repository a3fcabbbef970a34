"""The happy path of every payments endpoint, with the field names the contract names."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from tests.conftest import Api, PinnedClock
from tests.e2e.support import (
    DECLINED,
    INSUFFICIENT,
    assert_problem,
    history_types,
    new_patient,
    paid,
)

PAYMENT_FIELDS = {
    "id",
    "status",
    "amount",
    "refunded_amount",
    "method",
    "terminal_id",
    "card",
    "transaction_id",
    "decline_reason",
    "patient_id",
    "occurred_at",
    "association",
    "refunds",
    "batch_id",
    "deposit_id",
    "settles_at",
    "writeback_attempts",
}
FEED_FIELDS = {
    "position",
    "id",
    "type",
    "aggregate_id",
    "occurred_at",
    "actor",
    "actor_name",
    "data",
}
PATIENT_FIELDS = {
    "id",
    "pms_patient_id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "guarantor_id",
}


def utc(text: str) -> datetime:
    assert text.endswith("Z"), text
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def ids(items: list[dict[str, Any]]) -> list[str]:
    return [item["id"] for item in items]


def walk(api: Api, path: str, **params: Any) -> list[list[dict[str, Any]]]:
    """Every page of a list, following next_cursor."""
    pages: list[list[dict[str, Any]]] = []
    cursor: str | None = None
    for _ in range(50):
        query = {**params, **({"cursor": cursor} if cursor else {})}
        answer = api.get(path, params=query)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert set(body) >= {"items", "next_cursor"}
        pages.append(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
    raise AssertionError("the list never ended")


# -- patients ---------------------------------------------------------------------------


def test_register_and_read_a_patient(api: Api) -> None:
    created = api.post(
        "/v1/patients",
        {
            "pms_patient_id": "1001",
            "first_name": "Ann",
            "last_name": "Lee",
            "email": "ann@example.com",
            "phone": "+1 (617) 555-0100",
        },
    )
    assert created.status_code == 201, created.text
    patient = created.json()
    assert set(patient) >= PATIENT_FIELDS
    assert patient["pms_patient_id"] == "1001"
    assert patient["first_name"] == "Ann" and patient["last_name"] == "Lee"
    assert patient["email"] == "ann@example.com"
    assert patient["phone"] == "+1 (617) 555-0100"
    assert patient["guarantor_id"] is None
    uuid.UUID(patient["id"])
    read = api.get(f"/v1/patients/{patient['id']}")
    assert read.status_code == 200 and read.json() == patient

    child = api.post(
        "/v1/patients",
        {
            "pms_patient_id": "1002",
            "first_name": "Bo",
            "last_name": "Lee",
            "guarantor_id": patient["id"],
        },
    )
    assert child.status_code == 201, child.text
    assert child.json()["guarantor_id"] == patient["id"]
    assert child.json()["email"] is None and child.json()["phone"] is None

    duplicate = api.post(
        "/v1/patients", {"pms_patient_id": "1001", "first_name": "Other", "last_name": "Person"}
    )
    assert_problem(duplicate, 409, field="pms_patient_id", says="already exists")
    assert api.get(f"/v1/patients/{patient['id']}").json()["first_name"] == "Ann"
    assert history_types(api, patient["id"]) == ["PatientRegistered"]


def test_patients_page_by_last_name(api: Api) -> None:
    names = [("Cy", "Young"), ("Al", "Baker"), ("Di", "Adams"), ("Ed", "Moss"), ("Bo", "Baker")]
    made = {}
    for number, (first, last) in enumerate(names, start=1):
        made[(first, last)] = new_patient(api, str(number), first_name=first, last_name=last)["id"]
    pages = walk(api, "/v1/patients", limit=2)
    assert [len(p) for p in pages] == [2, 2, 1]
    listed = [item for page in pages for item in page]
    assert [(p["last_name"], p["first_name"]) for p in listed] == sorted(
        (last, first) for first, last in names
    )
    assert sorted(ids(listed)) == sorted(made.values())
    assert all(set(p) >= PATIENT_FIELDS for p in listed)
    everything = api.get("/v1/patients", params={"limit": 100}).json()
    assert everything["next_cursor"] is None and ids(everything["items"]) == ids(listed)


# -- collecting -------------------------------------------------------------------------


def test_collect_at_the_virtual_terminal(api: Api) -> None:
    patient = new_patient(api)
    answer = api.pay(12500, patient_id=patient["id"])
    assert answer.status_code == 201, answer.text
    payment = answer.json()
    assert set(payment) >= PAYMENT_FIELDS
    assert payment["status"] == "approved"
    assert payment["method"] == "virtual_terminal"
    assert payment["amount"] == 12500 and payment["refunded_amount"] == 0
    assert payment["card"] == {"brand": "visa", "last4": "4242"}
    assert payment["transaction_id"]
    assert payment["decline_reason"] is None
    assert payment["terminal_id"] is None
    assert payment["patient_id"] == patient["id"]
    assert payment["association"] == "unassociated"
    assert payment["refunds"] == []
    assert utc(payment["occurred_at"]) == datetime.fromisoformat("2026-03-04T15:00:00+00:00")
    # Batch closes at the cut-off (23:59 New York, 04:59 UTC the next day).
    assert utc(payment["settles_at"]) == datetime.fromisoformat("2026-03-05T04:59:00+00:00")
    assert payment["batch_id"] is None and payment["deposit_id"] is None
    assert "4242424242424242" not in answer.text


def test_collect_at_a_terminal(api: Api) -> None:
    answer = api.post("/v1/payments", {"method": "terminal", "terminal_id": "T-7", "amount": 2500})
    assert answer.status_code == 201, answer.text
    payment = answer.json()
    assert payment["method"] == "terminal" and payment["terminal_id"] == "T-7"
    assert payment["status"] == "approved"
    assert payment["card"] == {"brand": "visa", "last4": "4242"}
    assert payment["transaction_id"]
    assert payment["patient_id"] is None


def test_declines_say_why(api: Api) -> None:
    for card, reason in ((DECLINED, "card declined"), (INSUFFICIENT, "insufficient funds")):
        answer = api.pay(3000, card=card)
        assert answer.status_code == 201, answer.text
        payment = answer.json()
        assert payment["status"] == "declined"
        assert payment["decline_reason"] == reason
        assert payment["card"]["last4"] == card[-4:]
        assert payment["transaction_id"] is None
        assert payment["settles_at"] is None
        assert card not in answer.text
    listed = api.get("/v1/transactions").json()["items"]
    assert sorted(t["decline_reason"] for t in listed) == ["card declined", "insufficient funds"]
    # Declines moved no money: nothing to post to the PMS.
    assert api.get("/v1/transactions/unassociated-count").json()["count"] == 0


def test_a_payment_with_its_history(api: Api) -> None:
    payment = paid(api, 5000)
    answer = api.get(f"/v1/payments/{payment['id']}")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) >= PAYMENT_FIELDS | {"history"}
    assert {k: body[k] for k in payment} == payment
    [captured] = body["history"]
    assert set(captured) >= FEED_FIELDS
    assert captured["type"] == "PaymentCaptured"
    assert captured["aggregate_id"] == payment["id"]
    assert captured["data"]["amount"] == 5000
    assert captured["data"]["card_last4"] == "4242"
    assert captured["actor"].startswith("user:")


# -- refunds, receipts, the ledger entry -----------------------------------------------------


def test_void_then_refunds_with_the_receipt_listing_them(api: Api) -> None:
    first = paid(api, 4000)
    void = api.post(f"/v1/payments/{first['id']}/refund")
    assert void.status_code == 200, void.text
    assert void.json()["kind"] == "void" and void.json()["amount"] == 4000
    assert void.json()["refund_id"] is None
    assert void.json()["payment"]["status"] == "voided"

    payment = paid(api, 10000)
    api.advance(86400)
    refund = api.post(f"/v1/payments/{payment['id']}/refund", {"amount": 2500})
    assert refund.status_code == 200, refund.text
    body = refund.json()
    assert body["kind"] == "refund" and body["amount"] == 2500
    assert body["payment"]["refunded_amount"] == 2500
    rest = api.post(f"/v1/payments/{payment['id']}/refund")
    assert rest.json()["kind"] == "refund" and rest.json()["amount"] == 7500

    receipt = api.get(f"/v1/payments/{payment['id']}/receipt")
    assert receipt.status_code == 200, receipt.text
    r = receipt.json()
    assert r["payment_id"] == payment["id"]
    assert r["amount"] == 10000
    assert r["transaction_id"] == payment["transaction_id"]
    assert r["card"] == {"brand": "visa", "last4": "4242"}
    assert r["confirmation"] == "approved"
    assert utc(r["completed_at"]) == utc(payment["occurred_at"])
    assert [x["refund_id"] for x in r["refunds"]] == [body["refund_id"], rest.json()["refund_id"]]
    assert [x["amount"] for x in r["refunds"]] == [2500, 7500]
    assert all(x["transaction_id"] and x["card"]["last4"] == "4242" for x in r["refunds"])


def test_send_a_receipt_copy_to_the_sandbox_mailbox(api: Api) -> None:
    payment = paid(api, 10000)
    path = f"/v1/payments/{payment['id']}/receipt/send"
    sent = api.post(path, {"email": "ann@example.com", "confirm_email": "Ann@Example.com"})
    assert sent.status_code == 200, sent.text
    assert sent.json()["sent"] is True and sent.json()["email"] == "ann@example.com"
    assert sent.json()["payment_id"] == payment["id"]
    [message] = api.get("/v1/sandbox/mailbox").json()["items"]
    assert message["recipient"] == "ann@example.com"
    assert "$100.00" in message["subject"]
    assert "Visa ending in 4242" in message["body"]
    assert payment["transaction_id"] in message["body"]
    assert "4242424242424242" not in json.dumps(message)
    assert api.get(f"/v1/payments/{payment['id']}/receipt").json()["copies_sent"] == 1

    api.advance(86400)
    refund = api.post(f"/v1/payments/{payment['id']}/refund", {"amount": 1500}).json()
    receipt = api.get(f"/v1/payments/{payment['id']}/receipt").json()
    assert [r["copies_sent"] for r in receipt["refunds"]] == [0]  # none of its own yet
    again = api.post(
        path,
        {
            "email": "bo@example.com",
            "confirm_email": "bo@example.com",
            "refund_id": refund["refund_id"],
        },
    )
    assert again.status_code == 200 and again.json()["refund_id"] == refund["refund_id"]
    messages = api.get("/v1/sandbox/mailbox").json()["items"]
    [to_bo] = [m for m in messages if m["recipient"] == "bo@example.com"]
    assert "Refund receipt" in to_bo["body"] and "$15.00" in to_bo["body"]
    assert "4242424242424242" not in to_bo["body"]
    sent_events = [t for t in history_types(api, payment["id"]) if t.endswith("ReceiptSent")]
    assert len(sent_events) == 2
    receipt = api.get(f"/v1/payments/{payment['id']}/receipt").json()
    assert receipt["copies_sent"] == 1 and receipt["refunds"][0]["copies_sent"] == 1


def test_the_ledger_entry_holds_what_staff_type_in(api: Api) -> None:
    guarantor = new_patient(api, "500", first_name="Gail", last_name="Park")
    patient = new_patient(
        api, "501", first_name="Tim", last_name="Park", guarantor_id=guarantor["id"]
    )
    payment = paid(api, 8050, patient_id=patient["id"])
    answer = api.get(f"/v1/payments/{payment['id']}/ledger-entry")
    assert answer.status_code == 200, answer.text
    entry = answer.json()
    assert entry["date"] == "2026-03-04"
    assert entry["payment_type"] == "Credit Card"
    assert entry["amount"] == 8050
    assert entry["payment_number"] == payment["transaction_id"]
    assert entry["patient"]["id"] == patient["id"]
    assert entry["patient"]["pms_patient_id"] == "501"
    assert entry["patient"]["name"] == "Tim Park"
    assert entry["post_to"]["id"] == guarantor["id"]
    assert f"[ref:{payment['id']}]" in entry["note"]
    assert "4242" in entry["note"] and "4242424242424242" not in entry["note"]
    # The practice's own payment type, once set, is used.
    changed = api.client.patch(
        f"/v1/practices/{api.practice_id}/settings",
        json={"pms_payment_type": "391"},
        headers=api.admin,
    )
    assert changed.status_code == 200, changed.text
    entry = api.get(f"/v1/payments/{payment['id']}/ledger-entry").json()
    assert entry["payment_type"] == "391"
    # A refund shows as a negative line that names both.
    api.advance(86400)
    refund = api.post(f"/v1/payments/{payment['id']}/refund", {"amount": 50}).json()
    [line] = api.get(f"/v1/payments/{payment['id']}/ledger-entry").json()["refunds"]
    assert line["amount"] == -50 and line["refund_id"] == refund["refund_id"]
    assert (
        f"[ref:{payment['id']}]" in line["note"] and f"[ref:{refund['refund_id']}]" in line["note"]
    )


def test_the_ledger_entry_uses_the_practice_local_date(api: Api, clock: PinnedClock) -> None:
    clock.move(hours=12)  # 03:00 UTC on the 5th is 22:00 on the 4th in New York
    payment = paid(api, 100)
    assert payment["occurred_at"].startswith("2026-03-05T03:00")
    assert api.get(f"/v1/payments/{payment['id']}/ledger-entry").json()["date"] == "2026-03-04"
    [row] = api.get("/v1/transactions").json()["items"]
    assert row["date"] == "2026-03-04"
    on_the_4th = api.get("/v1/transactions", params={"from": "2026-03-04", "to": "2026-03-04"})
    assert ids(on_the_4th.json()["items"]) == [payment["id"]]
    on_the_5th = api.get("/v1/transactions", params={"from": "2026-03-05", "to": "2026-03-05"})
    assert on_the_5th.json()["items"] == []


# -- association ----------------------------------------------------------------------------


def test_associate_by_hand_and_from_the_inbox(api: Api) -> None:
    by_hand = paid(api, 1000)
    from_inbox = paid(api, 2000)
    third = paid(api, 3000)
    badge = "/v1/transactions/unassociated-count"
    assert api.get(badge).json()["count"] == 3

    manual = api.post(f"/v1/payments/{by_hand['id']}/associate", {"source": "manual"})
    assert manual.status_code == 200, manual.text
    assert manual.json()["association"] == "associated"
    assert manual.json()["association_source"] == "manual"
    assert api.get(badge).json()["count"] == 2

    inbox = api.post(
        f"/v1/payments/{from_inbox['id']}/associate",
        {"source": "inbox", "pms_reference": "PayNum 8812"},
    )
    assert inbox.status_code == 200, inbox.text
    assert inbox.json()["association_source"] == "inbox"
    assert inbox.json()["pms_reference"] == "PayNum 8812"
    assert api.get(badge).json()["count"] == 1

    twice = api.post(f"/v1/payments/{by_hand['id']}/associate", {"source": "inbox"})
    assert_problem(twice, 409, says="already associated")
    assert api.get(badge).json()["count"] == 1

    associated = api.get("/v1/transactions", params={"association": "associated"}).json()
    assert sorted(ids(associated["items"])) == sorted([by_hand["id"], from_inbox["id"]])
    assert all(t["association"] == "associated" for t in associated["items"])
    open_ = api.get("/v1/transactions", params={"association": "unassociated"}).json()
    assert ids(open_["items"]) == [third["id"]]
    [row] = [t for t in associated["items"] if t["id"] == from_inbox["id"]]
    assert row["pms_reference"] == "PayNum 8812"
    assert "PaymentAssociated" in history_types(api, from_inbox["id"])


# -- transactions --------------------------------------------------------------------------


def test_transactions_default_to_the_last_30_days(api: Api, clock: PinnedClock) -> None:
    payment = paid(api, 1500)
    listed = api.get("/v1/transactions").json()
    assert listed["from"] == "2026-02-03" and listed["to"] == "2026-03-04"
    assert ids(listed["items"]) == [payment["id"]]
    row = listed["items"][0]
    for field in ("id", "occurred_at", "date", "amount", "refunded_amount", "status", "method"):
        assert field in row
    for field in ("card", "transaction_id", "patient_id", "association", "batch_id"):
        assert field in row
    assert row["amount"] == 1500 and row["date"] == "2026-03-04"

    clock.move(days=29)  # 2026-04-02: the 4th of March is the first day of the range
    assert ids(api.get("/v1/transactions").json()["items"]) == [payment["id"]]
    clock.move(days=2)  # 2026-04-04: the range starts on the 6th of March
    later = api.get("/v1/transactions").json()
    assert later["from"] == "2026-03-06" and later["to"] == "2026-04-04"
    assert later["items"] == []
    explicit = api.get("/v1/transactions", params={"from": "2026-03-01"}).json()
    assert ids(explicit["items"]) == [payment["id"]]
    assert explicit["to"] == "2026-04-04"
    before = api.get("/v1/transactions", params={"to": "2026-03-03", "from": "2026-01-01"})
    assert before.json()["items"] == []


def test_transactions_by_patient(api: Api) -> None:
    ann = new_patient(api, "1")
    bo = new_patient(api, "2", first_name="Bo", last_name="Diaz")
    ann_payment = paid(api, 100, patient_id=ann["id"])
    paid(api, 200, patient_id=bo["id"])
    paid(api, 300)
    answer = api.get("/v1/transactions", params={"patient_id": ann["id"]}).json()
    assert ids(answer["items"]) == [ann_payment["id"]]
    assert answer["items"][0]["patient_name"] == "Ann Lee"
    assert answer["items"][0]["patient_id"] == ann["id"]
    nobody = api.get("/v1/transactions", params={"patient_id": str(uuid.uuid4())})
    assert nobody.status_code == 200 and nobody.json()["items"] == []


def test_transactions_page_through_a_cursor(api: Api, clock: PinnedClock) -> None:
    made = []
    for n in range(7):
        made.append(paid(api, 100 + n)["id"])
        if n % 3 == 0:
            clock.move(minutes=5)  # some share an instant, some do not
    pages = walk(api, "/v1/transactions", limit=3)
    assert [len(p) for p in pages] == [3, 3, 1]
    listed = [t for page in pages for t in page]
    assert sorted(ids(listed)) == sorted(made)
    assert len(set(ids(listed))) == 7
    instants = [utc(t["occurred_at"]) for t in listed]
    assert instants == sorted(instants, reverse=True), "newest first"
    everything = api.get("/v1/transactions", params={"limit": 100}).json()
    assert ids(everything["items"]) == ids(listed) and everything["next_cursor"] is None
    exactly = api.get("/v1/transactions", params={"limit": 7}).json()
    assert len(exactly["items"]) == 7 and exactly["next_cursor"] is None


# -- the feed and history ------------------------------------------------------------------


def test_the_event_feed_pages_after_a_position(api: Api) -> None:
    patient = new_patient(api)
    payment = paid(api, 700, patient_id=patient["id"])
    api.post(f"/v1/payments/{payment['id']}/associate", {"source": "manual"})
    request = api.post(
        "/v1/payment-requests", {"patient_id": patient["id"], "amount": 900, "channel": "email"}
    )
    assert request.status_code == 201, request.text
    everything = api.get("/v1/events", params={"limit": 100}).json()
    items = everything["items"]
    assert everything["next_cursor"] is None
    assert len(items) >= 6
    positions = [e["position"] for e in items]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    for event in items:
        assert set(event) == FEED_FIELDS, event
        uuid.UUID(event["id"])
        uuid.UUID(event["aggregate_id"])
        utc(event["occurred_at"])
        assert isinstance(event["data"], dict)
    types = [e["type"] for e in items]
    for expected in ("PracticeCreated", "UserCreated", "PatientRegistered", "PaymentCaptured"):
        assert expected in types
    assert "PaymentAssociated" in types

    first = api.get("/v1/events", params={"limit": 2}).json()
    assert first["items"] == items[:2]
    assert first["next_cursor"] == str(items[1]["position"])
    second = api.get("/v1/events", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert second["items"] == items[2:4]
    after = api.get("/v1/events", params={"after": items[2]["position"], "limit": 100}).json()
    assert after["items"] == items[3:]
    beyond = api.get("/v1/events", params={"after": items[-1]["position"]}).json()
    assert beyond == {"items": [], "next_cursor": None}

    # No secret leaves the service: no token hash, no token, no card number.
    text = json.dumps(items)
    assert "token_hash" not in text and "token_nonce" not in text
    for headers in (api.admin, api.staff, api.operator):
        assert headers["Authorization"].split(" ", 1)[1] not in text
    assert "4242424242424242" not in text


def test_history_of_a_payment_a_patient_and_the_practice(api: Api) -> None:
    patient = new_patient(api)
    payment = paid(api, 900, patient_id=patient["id"])
    api.advance(86400)
    api.post(f"/v1/payments/{payment['id']}/refund", {"amount": 100})
    answer = api.get(f"/v1/history/{payment['id']}")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) >= {"items", "next_cursor"}
    assert [e["type"] for e in body["items"]] == [
        "PaymentCaptured",
        "PaymentCaptureRequested",
        "PaymentSettled",
        "PaymentRefundRequested",
        "PaymentRefunded",
    ]
    assert all(e["aggregate_id"] == payment["id"] for e in body["items"])
    assert body["items"][1]["actor"].startswith("system")
    assert body["items"][2]["actor"].startswith("system")
    paged = api.get(f"/v1/history/{payment['id']}", params={"limit": 1}).json()
    assert len(paged["items"]) == 1 and paged["next_cursor"]
    rest = api.get(
        f"/v1/history/{payment['id']}", params={"limit": 100, "cursor": paged["next_cursor"]}
    ).json()
    assert [e["type"] for e in rest["items"]] == [
        "PaymentCaptureRequested",
        "PaymentSettled",
        "PaymentRefundRequested",
        "PaymentRefunded",
    ]
    assert history_types(api, patient["id"])[0] == "PatientRegistered"
    assert history_types(api, api.practice_id)[0] == "PracticeCreated"


# -- the sandbox clock and settlement -----------------------------------------------------


def test_advancing_past_the_cut_off_settles(api: Api) -> None:
    payment = paid(api, 6000)
    clock = api.get("/v1/sandbox/clock").json()
    assert clock["offset_seconds"] == 0
    assert utc(clock["now"]) == datetime.fromisoformat("2026-03-04T15:00:00+00:00")

    early = api.advance(3600)  # 11:00 in New York: before the 23:59 cut-off
    assert early["batches_closed"] == 0
    assert utc(early["now"]) == datetime.fromisoformat("2026-03-04T16:00:00+00:00")
    assert api.get(f"/v1/payments/{payment['id']}").json()["status"] == "approved"

    done = api.advance(13 * 3600)  # 05:00 UTC on the 5th: past 04:59
    assert done["batches_closed"] == 1
    settled = api.get(f"/v1/payments/{payment['id']}").json()
    assert settled["status"] == "settled"
    assert settled["batch_id"]
    assert settled["settled_at"]
    row = api.get("/v1/transactions").json()["items"][0]
    assert row["status"] == "settled" and row["batch_id"] == settled["batch_id"]
    assert api.get("/v1/sandbox/clock").json()["offset_seconds"] == 14 * 3600

    to = api.post("/v1/sandbox/clock/advance", {"to": "2026-03-07T12:00:00Z"})
    assert to.status_code == 200, to.text
    assert utc(to.json()["now"]) == datetime.fromisoformat("2026-03-07T12:00:00+00:00")
    deposited = api.get(f"/v1/payments/{payment['id']}").json()
    assert deposited["deposit_id"]


def test_practice_settings_change_the_cut_off(api: Api) -> None:
    path = f"/v1/practices/{api.practice_id}/settings"
    changed = api.client.patch(
        path,
        json={"batch_cutoff": "11:30", "pms_payment_type": "391", "auto_writeback": False},
        headers=api.admin,
    )
    assert changed.status_code == 200, changed.text
    practice = changed.json()
    assert practice["batch_cutoff"] == "11:30"
    assert practice["pms_payment_type"] == "391"
    assert practice["auto_writeback"] is False
    for field in ("id", "name", "timezone", "pms", "deposit_account"):
        assert field in practice
    assert practice["deposit_account"]["last4"] == "6789"
    again = api.get(f"/v1/practices/{api.practice_id}").json()
    assert again["batch_cutoff"] == "11:30" and again["pms_payment_type"] == "391"

    payment = paid(api, 4400)  # 10:00 local: the batch closes at 11:30 today
    assert utc(payment["settles_at"]) == datetime.fromisoformat("2026-03-04T16:30:00+00:00")
    api.advance(2 * 3600)
    assert api.get(f"/v1/payments/{payment['id']}").json()["status"] == "settled"

    bad = api.client.patch(path, json={"batch_cutoff": "24:00"}, headers=api.admin)
    assert_problem(bad, 422, field="batch_cutoff", says="HH:MM")
    assert api.get(f"/v1/practices/{api.practice_id}").json()["batch_cutoff"] == "11:30"
    practice_events = api.get(f"/v1/history/{api.practice_id}").json()["items"]
    changes = [e["data"] for e in practice_events if e["type"] == "PracticeSettingsChanged"]
    assert len(changes) == 1, changes  # the refused change recorded nothing
    assert changes[0]["changes"]["batch_cutoff"] == "11:30"
    assert changes[0]["changes"]["pms_payment_type"] == "391"


# -- service -------------------------------------------------------------------------------


def test_healthz(api: Api) -> None:
    answer = api.client.get("/healthz")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "ok"
    assert body["database"] in ("sqlite", "postgresql")
    assert body["sandbox"] is True


def test_openapi_lists_the_paths(api: Api) -> None:
    answer = api.client.get("/openapi.json")
    assert answer.status_code == 200
    paths = answer.json()["paths"]
    expected = {
        "/v1/practices": {"post"},
        "/v1/practices/{practice_id}/settings": {"patch"},
        "/v1/practices/{practice_id}/users": {"post"},
        "/v1/patients": {"get", "post"},
        "/v1/patients/{patient_id}": {"get"},
        "/v1/payments": {"post"},
        "/v1/payments/{payment_id}": {"get"},
        "/v1/payments/{payment_id}/refund": {"post"},
        "/v1/payments/{payment_id}/receipt": {"get"},
        "/v1/payments/{payment_id}/receipt/send": {"post"},
        "/v1/payments/{payment_id}/ledger-entry": {"get"},
        "/v1/payments/{payment_id}/associate": {"post"},
        "/v1/transactions": {"get"},
        "/v1/transactions/unassociated-count": {"get"},
        "/v1/events": {"get"},
        "/v1/history/{aggregate_id}": {"get"},
        "/v1/sandbox/clock/advance": {"post"},
        "/healthz": {"get"},
    }
    for path, methods in expected.items():
        assert path in paths, path
        assert methods <= set(paths[path]), (path, set(paths[path]))
    params = {p["name"] for p in paths["/v1/transactions"]["get"]["parameters"]}
    assert {"from", "to", "association", "patient_id", "limit", "cursor"} <= params


def test_the_ar_list_pages_through_a_cursor_in_every_sort(api: Api) -> None:
    balances = [("Adams", 500, None), ("Baker", 900, "2026-01-10"), ("Cole", 500, None)]
    balances += [("Diaz", 100, "2026-02-01"), ("Egan", 700, None)]
    made = []
    for number, (last, total, last_paid) in enumerate(balances, start=1):
        patient = new_patient(api, str(number), last_name=last)
        body: dict[str, Any] = {"total": total}
        if last_paid:
            body["last_payment_date"] = last_paid
        answer = api.client.put(
            f"/v1/patients/{patient['id']}/balance", json=body, headers=api.admin
        )
        assert answer.status_code == 200, answer.text
        made.append(patient["id"])
    for sort in ("-total", "total", "last_name", "last_payment_date", "-last_payment_date"):
        pages = walk(api, "/v1/ar/patients", limit=2, sort=sort)
        assert [len(p) for p in pages] == [2, 2, 1], sort
        rows = [row for page in pages for row in page]
        assert sorted(ids(rows)) == sorted(made), sort
        if sort.endswith("total"):
            totals = [row["total"] for row in rows]
            assert totals == sorted(totals, reverse=sort.startswith("-")), sort
        if sort == "last_name":
            assert [row["last_name"] for row in rows] == [b[0] for b in balances]
        if sort == "last_payment_date":
            assert [row["last_payment_date"] for row in rows][:2] == ["2026-01-10", "2026-02-01"]
