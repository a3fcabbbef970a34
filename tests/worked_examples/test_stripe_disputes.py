"""Worked examples: a cardholder disputes a payment Elm Dental took on Stripe.

Stripe takes the disputed amount back at once, with its $15.00 dispute fee (a balance
transaction of type `adjustment` whose source is the dispute), and says so with
`charge.dispute.created`; the card network decides later (`charge.dispute.closed`:
won or lost). The dispute shows on the payment; its withdrawal and fee are lines of
the deposit whose payout carries them; a lost dispute is a negative entry in the PMS.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from services.workers.writeback import Worker
from tests.conftest import Api, ComponentsFactory, PinnedClock
from tests.e2e.test_secrets_scan import sign_in
from tests.fakes.opendental import FakeOpenDental, serving
from tests.fakes.stripe import DISPUTE_FEE, FakeStripe, sign
from tests.stripe_fixtures import served_fake_stripe, stripe_api  # noqa: F401

DAY = 24 * 3600
SECRET = "whsec_test_payledger"
THURSDAY = int(datetime(2026, 3, 5, tzinfo=UTC).timestamp())
MONDAY = int(datetime(2026, 3, 9, tzinfo=UTC).timestamp())
TUESDAY = int(datetime(2026, 3, 10, tzinfo=UTC).timestamp())


def deliver(api: Api, event: dict[str, Any]) -> dict[str, Any]:
    payload = json.dumps(event).encode()
    answer = api.client.post(
        "/webhooks/stripe", content=payload, headers={"Stripe-Signature": sign(payload, SECRET)}
    )
    assert answer.status_code == 200, answer.text
    received: dict[str, Any] = answer.json()
    return received


def pay(api: Api, amount: int, **extra: Any) -> dict[str, Any]:
    body = {"method": "virtual_terminal", "amount": amount, "payment_method": "pm_card_visa"}
    answer = api.post("/v1/payments", {**body, **extra})
    assert answer.status_code == 201, answer.text
    paid: dict[str, Any] = answer.json()
    return paid


def deposit_of(api: Api, batch_date: str) -> dict[str, Any]:
    rows = api.get("/v1/deposits", params={"from": "2026-03-01", "to": "2026-03-31"}).json()
    (row,) = [d for d in rows["items"] if d["batch_date"] == batch_date]
    one: dict[str, Any] = api.get(f"/v1/deposits/{row['id']}").json()
    return one


def payment(api: Api, payment_id: str) -> dict[str, Any]:
    answer = api.get(f"/v1/payments/{payment_id}")
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def open_dental_practice(api: Api, url: str) -> str:
    settings = {
        "auto_writeback": True,
        "pms_payment_type": "391",
        "opendental": {"base_url": url, "developer_key": "dev-key", "customer_key": "cust-key"},
    }
    changed = api.client.patch(
        f"/v1/practices/{api.practice_id}/settings", json=settings, headers=api.admin
    )
    assert changed.status_code == 200, changed.text
    patient = api.post(
        "/v1/patients", {"pms_patient_id": "201", "first_name": "Ana", "last_name": "Ruiz"}
    )
    assert patient.status_code == 201, patient.text
    patient_id: str = patient.json()["id"]
    return patient_id


def test_a_dispute_opened_and_lost(
    api_for: Callable[..., Api],
    clock: PinnedClock,
    fake_stripe: FakeStripe,
    make_components: ComponentsFactory,
    backend: str,
) -> None:
    od: FakeOpenDental
    with serving([201]) as (od, url):
        api, account = stripe_api(api_for, clock, fake_stripe, backend)
        ctx = make_components.made[-1]
        worker = Worker(ctx, ctx.journal, "opendental")
        patient_id = open_dental_practice(api, url)
        # Wednesday: $100.00 from Ana; the batch closes, Stripe captures it and pays out.
        taken = pay(api, 10000, patient_id=patient_id)
        api.advance(DAY)
        worker.run_once()
        assert [p["PayAmt"] for p in od.payments] == ["100.00"]
        first_payout = fake_stripe.pay_out(account, THURSDAY)
        deliver(api, fake_stripe.event("payout.paid", first_payout, account))

        # Thursday: Ana's bank disputes it. Stripe takes $100.00 and its $15.00 fee back.
        dispute = fake_stripe.open_dispute(taken["transaction_id"], reason="fraudulent")
        opened = fake_stripe.event("charge.dispute.created", dispute, account)
        assert deliver(api, opened)["replayed"] is False
        assert deliver(api, opened)["replayed"] is True
        shown = payment(api, taken["id"])
        assert shown["status"] == "settled"
        assert shown["dispute"] == {
            "id": dispute["id"],
            "status": "needs_response",
            "reason": "fraudulent",
            "amount": 10000,
            "evidence_due_by": datetime.fromtimestamp(
                dispute["evidence_details"]["due_by"], UTC
            ).strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
            "opened_at": shown["dispute"]["opened_at"],
            "closed_at": None,
            "association": "not_applicable",
            "pms_reference": None,
        }
        disputed = [e for e in shown["history"] if e["type"] == "PaymentDisputeOpened"]
        assert len(disputed) == 1
        assert disputed[0]["actor"] == "system:stripe"
        assert disputed[0]["data"]["processor_event_id"] == opened["id"]
        rows = api.get("/v1/transactions", params={"from": "2026-03-04", "to": "2026-03-04"})
        assert rows.json()["items"][0]["dispute_status"] == "needs_response"
        refused = api.post(f"/v1/payments/{taken['id']}/refund", {"amount": 1000})
        assert refused.status_code == 409, refused.text
        assert "disputed" in refused.json()["detail"]

        # Thursday's own $50.00, and Stripe's next payout: that sale less the dispute.
        pay(api, 5000, patient_id=patient_id)
        api.advance(DAY)
        second_payout = fake_stripe.pay_out(account, MONDAY)
        assert second_payout["amount"] == (5000 - 175) - 10000 - DISPUTE_FEE
        deliver(api, fake_stripe.event("payout.paid", second_payout, account))
        thursday = deposit_of(api, "2026-03-05")
        assert thursday["net_amount"] == second_payout["amount"]
        assert thursday["kind"] == "withdrawal"
        assert thursday["disputes_amount"] == -10000
        assert thursday["fees_amount"] == 175 + DISPUTE_FEE
        assert thursday["payout"]["differences"] == []
        lines = [
            (i["kind"], i["amount"], i["fee_amount"], i["net_amount"]) for i in thursday["items"]
        ]
        assert lines[1:] == [("dispute", -10000, 0, -10000), ("dispute_fee", 0, 1500, -1500)]
        assert {i["dispute_id"] for i in thursday["items"][1:]} == {dispute["id"]}
        close = api.get("/v1/reports/daily-close", params={"date": "2026-03-05"}).json()
        assert [(d["kind"], d["net_amount"]) for d in close["disputes"]] == [
            ("dispute", -10000),
            ("dispute_fee", -1500),
        ]
        assert close["batch"]["disputes_amount"] == -10000
        assert close["batch"]["net_amount"] == second_payout["amount"]

        # The dispute is lost: the money stays taken; the PMS gets one negative entry.
        lost = fake_stripe.close_dispute(dispute["id"], won=False)
        closed = fake_stripe.event("charge.dispute.closed", lost, account)
        deliver(api, closed)
        deliver(api, closed)
        deliver(api, fake_stripe.event("charge.dispute.closed", lost, account))  # a second event
        shown = payment(api, taken["id"])
        assert shown["dispute"]["status"] == "lost"
        assert shown["unposted"] == [
            {"kind": "dispute", "id": f"dispute:{dispute['id']}", "amount": -10000}
        ]
        assert [e["type"] for e in shown["history"]].count("PaymentDisputeClosed") == 1
        close = api.get("/v1/reports/daily-close", params={"date": "2026-03-06"}).json()
        assert "dispute_not_written_back" in [d["kind"] for d in close["differences"]]
        worker.run_once()
        worker.run_once()
        assert [p["PayAmt"] for p in od.payments] == ["100.00", "50.00", "-100.00"]
        assert "Lost card dispute" in od.payments[2]["PayNote"]
        shown = payment(api, taken["id"])
        assert shown["dispute"]["association"] == "associated"
        assert shown["association"] == "associated"
        assert shown["unposted"] == []
        close = api.get("/v1/reports/daily-close", params={"date": "2026-03-06"}).json()
        assert "dispute_not_written_back" not in [d["kind"] for d in close["differences"]]


def test_a_dispute_won_is_reinstated_in_a_later_payout_and_never_posted(
    api_for: Callable[..., Api],
    clock: PinnedClock,
    fake_stripe: FakeStripe,
    make_components: ComponentsFactory,
) -> None:
    with serving([201]) as (od, url):
        api, account = stripe_api(api_for, clock, fake_stripe)
        ctx = make_components.made[-1]
        worker = Worker(ctx, ctx.journal, "opendental")
        patient_id = open_dental_practice(api, url)
        taken = pay(api, 10000, patient_id=patient_id)
        api.advance(DAY)
        worker.run_once()
        first_payout = fake_stripe.pay_out(account, THURSDAY)
        deliver(api, fake_stripe.event("payout.paid", first_payout, account))
        dispute = fake_stripe.open_dispute(taken["transaction_id"], reason="product_unacceptable")
        deliver(api, fake_stripe.event("charge.dispute.created", dispute, account))
        # The office answers with evidence; the dispute is under review.
        reviewed = fake_stripe.submit_evidence(dispute["id"])
        deliver(api, fake_stripe.event("charge.dispute.updated", reviewed, account))
        assert payment(api, taken["id"])["dispute"]["status"] == "under_review"
        pay(api, 5000, patient_id=patient_id)
        api.advance(DAY)
        second_payout = fake_stripe.pay_out(account, MONDAY)
        deliver(api, fake_stripe.event("payout.paid", second_payout, account))
        assert deposit_of(api, "2026-03-05")["disputes_amount"] == -10000

        # The network decides for the office: the $100.00 comes back (the fee does not).
        won = fake_stripe.close_dispute(dispute["id"], won=True)
        deliver(api, fake_stripe.event("charge.dispute.closed", won, account))
        shown = payment(api, taken["id"])
        assert shown["dispute"]["status"] == "won"
        assert shown["dispute"]["association"] == "not_applicable"
        assert shown["unposted"] == []
        assert api.post(f"/v1/payments/{taken['id']}/refund", {"amount": 1000}).status_code == 200

        # Friday's sale and the reinstatement arrive in the next payout.
        pay(api, 2000, patient_id=patient_id)
        api.advance(DAY)
        third = fake_stripe.pay_out(account, TUESDAY)
        deliver(api, fake_stripe.event("payout.paid", third, account))
        friday = deposit_of(api, "2026-03-06")
        assert friday["disputes_amount"] == 10000
        reinstated = [i for i in friday["items"] if i["kind"] == "dispute_reversal"]
        assert [(i["amount"], i["fee_amount"]) for i in reinstated] == [(10000, 0)]
        assert friday["net_amount"] == third["amount"]
        close = api.get("/v1/reports/daily-close", params={"date": "2026-03-06"}).json()
        assert [(d["kind"], d["amount"]) for d in close["disputes"]] == [
            ("dispute_reversal", 10000)
        ]

        # No dispute entry reaches the PMS: only the sales and the refund.
        worker.run_once()
        worker.run_once()
        assert sorted(p["PayAmt"] for p in od.payments) == ["-10.00", "100.00", "20.00", "50.00"]
        assert not ctx.store.database().query(
            "SELECT id FROM writeback_journal WHERE id LIKE 'dispute:%'", ()
        )


def test_a_lost_dispute_waits_in_the_post_to_ledger_queue_of_a_dentrix_practice(
    api_for: Callable[..., Api],
    clock: PinnedClock,
    fake_stripe: FakeStripe,
    make_components: ComponentsFactory,
) -> None:
    api, account = stripe_api(api_for, clock, fake_stripe)
    changed = api.client.patch(
        f"/v1/practices/{api.practice_id}/settings", json={"pms": "dentrix"}, headers=api.admin
    )
    assert changed.status_code == 200, changed.text
    taken = pay(api, 10000)
    api.advance(DAY)
    marked = api.post(f"/v1/payments/{taken['id']}/associate", {"source": "manual"})
    assert marked.status_code == 200, marked.text
    dispute = fake_stripe.open_dispute(taken["transaction_id"])
    deliver(api, fake_stripe.event("charge.dispute.created", dispute, account))
    assert api.get("/v1/ledger-queue").json()["items"] == []
    lost = fake_stripe.close_dispute(dispute["id"], won=False)
    deliver(api, fake_stripe.event("charge.dispute.closed", lost, account))

    # The dashboard's Transactions row carries the badge.
    web, _ = sign_in(api, make_components.made[-1])
    page = web.get("/payments/transactions", params={"from": "2026-03-04", "to": "2026-03-04"})
    assert page.status_code == 200
    assert re.search(r'class="pill pill-bad dispute-badge"[^>]*>Dispute lost<', page.text)

    (item,) = api.get("/v1/ledger-queue").json()["items"]
    assert item["kind"] == "dispute"
    assert item["enter_payment"]["amount"] == -10000
    assert item["enter_payment"]["payment_number"] == dispute["id"]
    assert item["mark_associated"]["body"] == {"source": "manual", "dispute": True}
    done = api.post(item["mark_associated"]["path"], item["mark_associated"]["body"])
    assert done.status_code == 200, done.text
    assert done.json()["dispute"]["association"] == "associated"
    assert api.get("/v1/ledger-queue").json()["items"] == []
    again = api.post(item["mark_associated"]["path"], item["mark_associated"]["body"])
    assert again.status_code == 409
