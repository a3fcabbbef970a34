"""Worked examples: a processor that refuses, does not answer, or answers late.

An office in New York whose batch closes at 23:59. A $100.00 payment taken on
Wednesday 4 March 2026 at 10:00 settles that night. The processor here is the sandbox
with the faults of a real gateway (tests/faulty_processor.py): each of its answers is
set by the example. Whatever it does, money moves once and every intent ends in one
outcome that the ledger records.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.effects import EffectInsideRetry
from adapters.processor.port import CardInput, OutcomeUnknown, ProcessorRefused
from domain.charges import AuthorisationReleased
from domain.payments import AssociationSource, Method, Payment, Status
from projections.intents import intent_totals, open_intents, open_intents_of_payment
from services.app.payments import associate_payment, collect_payment, refund_payment
from services.app.reconcile import SETTLE_AFTER, reconcile_due
from services.app.settlement import close_due_batches
from services.context import Components, retry_on_conflict
from services.http.app import create_app
from tests.conftest import Api, ComponentsFactory, PinnedClock
from tests.e2e.test_html_pages import browser
from tests.faulty_processor import FaultyProcessor
from tests.integration.test_money_moves_once import paid

CARD = CardInput("4242424242424242", 12, 2030, "123")
DAY = timedelta(days=1)


@pytest.fixture
def office(ctx: Components) -> Components:
    ctx.processor = FaultyProcessor()
    return ctx


def sandbox(ctx: Components) -> FaultyProcessor:
    assert isinstance(ctx.processor, FaultyProcessor)
    return ctx.processor


def a_payment(ctx: Components, amount: int = 10_000) -> Payment:
    """A $100.00 payment (by default) of a new office in New York, batch at 23:59."""
    return paid(ctx, amount)


def refund(ctx: Components, payment: Payment, amount: int | None, key: str | None) -> Any:
    return refund_payment(
        ctx,
        practice_id=payment.practice_id,
        payment_id=payment.id,
        amount=amount,
        actor="user:admin",
        key=key,
    )


def stored(ctx: Components, payment: Payment) -> Payment:
    return ctx.get(Payment, payment.id, payment.practice_id)


def settled(ctx: Components, clock: PinnedClock, amount: int = 10_000) -> Payment:
    payment = a_payment(ctx, amount)
    clock.move(days=1)
    close_due_batches(ctx, payment.practice_id)
    assert stored(ctx, payment).status == Status.SETTLED
    return payment


# -- 1. refunds refused, unanswered, or answered and lost ----------------------------------


def test_a_refused_refund_ends_refused_and_frees_its_amount(
    office: Components, clock: PinnedClock
) -> None:
    payment = settled(office, clock)
    sandbox(office).answers["refund"].append("refuse")

    # The processor refuses: the admin sees its reason, and nothing is held.
    with pytest.raises(ProcessorRefused):
        refund(office, payment, 2500, "refund-1")
    after = stored(office, payment)
    assert after.pending_refunds == {}
    assert after.remaining.cents == 10_000
    assert [*after.refused_refunds.values()] == ["the processor refused the refund (test)"]

    # The same request again answers the same refusal and sends nothing.
    calls = sandbox(office).calls["refund"]
    with pytest.raises(ProcessorRefused, match="refused"):
        refund(office, payment, 2500, "refund-1")
    assert sandbox(office).calls["refund"] == calls

    # A new refund (a new key) is a new intent: it refunds $40.00, once.
    done = refund(office, payment, 4000, "refund-2")
    assert done.amount == 4000
    assert [r.amount for r in stored(office, payment).refunds] == [4000]
    assert sandbox(office).movements["refund"] == 1


def test_a_refund_made_whose_answer_was_lost_is_read_back_by_the_reconciler(
    office: Components, clock: PinnedClock
) -> None:
    payment = settled(office, clock)
    sandbox(office).answers["refund"].append("500-after")

    # The money moved at the processor, but its answer was lost; nobody retries.
    with pytest.raises(OutcomeUnknown, match="reads it back"):
        refund(office, payment, 2500, None)
    [intent] = office.reads(open_intents_of_payment, payment.id)
    assert (intent["effect"], intent["amount"], intent["attempts"]) == ("refund", 2500, 1)
    assert office.reads(intent_totals, payment.practice_id)["unknown"] == 1

    # Within its settling time the reconciler leaves it to the call that made it ...
    assert reconcile_due(office, payment.practice_id) == 0
    # ... then reads it back, finds the refund, and records it: it reaches the batch.
    clock.move(seconds=SETTLE_AFTER.total_seconds())
    assert reconcile_due(office, payment.practice_id) == 1
    after = stored(office, payment)
    assert [r.amount for r in after.refunds] == [2500]
    assert after.refunds[0].actor == "user:admin"  # the refund is the admin's
    assert office.reads(open_intents_of_payment, payment.id) == []
    clock.move(days=1)
    close_due_batches(office, payment.practice_id)
    assert stored(office, payment).refunds[0].batch_id is not None
    assert sandbox(office).movements["refund"] == 1


def test_a_refund_never_received_then_asked_again_with_a_new_key_refunds_once(
    office: Components, clock: PinnedClock
) -> None:
    payment = settled(office, clock)
    sandbox(office).answers["refund"].append("drop-before")
    with pytest.raises(OutcomeUnknown):
        refund(office, payment, 2500, "first-click")

    # The admin, unsure, refunds again: a new intent (the old one still holds $25.00).
    refund(office, payment, 2500, "second-click")
    assert stored(office, payment).remaining.cents == 5000

    # The reconciler reads the first back: the processor has none of it, so it ends
    # refused ("nothing moved") and frees its amount; it is never sent.
    clock.move(seconds=SETTLE_AFTER.total_seconds())
    reconcile_due(office, payment.practice_id)
    after = stored(office, payment)
    assert [r.amount for r in after.refunds] == [2500]
    assert after.remaining.cents == 7500
    assert sandbox(office).movements["refund"] == 1


def test_a_refund_retried_with_its_key_reads_back_before_sending_again(
    office: Components, clock: PinnedClock
) -> None:
    payment = settled(office, clock)
    sandbox(office).answers["refund"].append("drop-before")
    with pytest.raises(OutcomeUnknown):
        refund(office, payment, 2500, "same-key")

    # The same request again: read back (absent), then sent once under the same id.
    done = refund(office, payment, 2500, "same-key")
    assert done.amount == 2500
    assert sandbox(office).movements["refund"] == 1


def test_a_late_refund_is_recorded_once_whoever_finds_it(
    office: Components, clock: PinnedClock
) -> None:
    payment = settled(office, clock)
    sandbox(office).answers["refund"].append("late")
    with pytest.raises(OutcomeUnknown):
        refund(office, payment, 2500, "late-key")
    sandbox(office).deliver_late()  # the request reached the processor after all

    # Retried with its key, it is read back and recorded, never sent again.
    refund(office, payment, 2500, "late-key")
    clock.move(seconds=SETTLE_AFTER.total_seconds())
    assert reconcile_due(office, payment.practice_id) == 0
    assert [r.amount for r in stored(office, payment).refunds] == [2500]
    assert sandbox(office).movements["refund"] == 1
    assert sandbox(office).calls["refund"] == 1


def test_a_processor_that_cannot_be_read_is_tried_again_later(
    office: Components, clock: PinnedClock
) -> None:
    payment = settled(office, clock)
    sandbox(office).answers["refund"].append("500-after")
    with pytest.raises(OutcomeUnknown):
        refund(office, payment, 2500, None)
    sandbox(office).reads_fail = 1
    clock.move(seconds=SETTLE_AFTER.total_seconds())
    assert reconcile_due(office, payment.practice_id) == 0
    [intent] = office.reads(open_intents_of_payment, payment.id)
    assert intent["attempts"] == 2
    # the next read back waits for its pause (it doubles), then finds the refund
    assert reconcile_due(office, payment.practice_id) == 0
    clock.move(seconds=2 * SETTLE_AFTER.total_seconds())
    assert reconcile_due(office, payment.practice_id) == 1
    assert [r.amount for r in stored(office, payment).refunds] == [2500]


# -- 3. void or capture, decided once --------------------------------------------------


def test_a_void_decided_before_the_cut_off_stays_a_void_through_a_conflict(
    office: Components, clock: PinnedClock
) -> None:
    payment = a_payment(office)
    # 23:58:59 - the admin presses Refund, a minute before the cut-off; the writeback
    # associates the payment at the same moment, and the clock passes the cut-off
    clock.move(hours=13, minutes=58, seconds=59)
    real_save = office.save
    injected: list[bool] = []

    def save(*aggregates: Any, **kw: Any) -> int:
        if not injected and any(a.id == payment.id for a in aggregates):
            injected.append(True)
            associate_payment(
                office,
                practice_id=payment.practice_id,
                payment_id=payment.id,
                source=AssociationSource.AUTOMATIC,
                pms_reference="PMS-9",
                actor="system:writeback",
            )
            clock.move(minutes=2)
        return real_save(*aggregates, **kw)

    office.save = save  # type: ignore[method-assign]
    try:
        reversal = refund(office, payment, None, "refund-button")
    finally:
        office.save = real_save  # type: ignore[method-assign]
    assert injected
    # The decision was a void (judged when asked): the authorisation is cancelled once,
    # and nothing is captured or refunded at the cut-off.
    assert reversal.kind == "void"
    close_due_batches(office, payment.practice_id)
    after = stored(office, payment)
    assert after.status == Status.VOIDED
    assert after.refunds == []
    assert dict(sandbox(office).movements) == {"charge": 1, "void": 1}


def test_a_void_whose_answer_was_lost_is_never_captured(
    office: Components, clock: PinnedClock
) -> None:
    payment = a_payment(office)
    sandbox(office).answers["void"].append("drop-before")
    with pytest.raises(OutcomeUnknown):
        refund(office, payment, None, None)

    # The cut-off passes with the void under way: the close does not capture it.
    clock.move(days=1)
    close_due_batches(office, payment.practice_id)
    assert stored(office, payment).status == Status.APPROVED
    assert sandbox(office).movements["capture"] == 0

    # The reconciler reads the void back (absent) and sends it again: cancelling twice
    # moves no money. The payment ends voided, never captured.
    reconcile_due(office, payment.practice_id)
    close_due_batches(office, payment.practice_id)
    after = stored(office, payment)
    assert after.status == Status.VOIDED
    assert sandbox(office).movements["capture"] == 0
    assert sandbox(office).movements["void"] == 1


def test_a_void_refused_leaves_the_payment_to_settle(
    office: Components, clock: PinnedClock
) -> None:
    payment = a_payment(office)
    sandbox(office).answers["void"].append("refuse")
    with pytest.raises(ProcessorRefused):
        refund(office, payment, None, None)
    assert stored(office, payment).pending_void is None
    clock.move(days=1)
    close_due_batches(office, payment.practice_id)
    assert stored(office, payment).status == Status.SETTLED
    assert sandbox(office).movements["capture"] == 1


def test_a_capture_whose_answer_was_lost_is_read_back_by_the_next_close(
    office: Components, clock: PinnedClock
) -> None:
    payment = a_payment(office)
    sandbox(office).answers["capture"].append("500-after")
    clock.move(days=1)
    assert close_due_batches(office, payment.practice_id) == []
    assert stored(office, payment).capture_requested
    # The next close reads the capture back and settles it, capturing nothing more.
    assert len(close_due_batches(office, payment.practice_id)) == 1
    assert stored(office, payment).status == Status.SETTLED
    assert sandbox(office).movements["capture"] == 1
    assert sandbox(office).calls["capture"] == 1


def test_the_refund_button_after_a_capture_was_asked_is_a_refund_never_a_void(
    office: Components, clock: PinnedClock
) -> None:
    payment = a_payment(office)
    sandbox(office).answers["capture"].append("500-after")
    clock.move(days=1)
    close_due_batches(office, payment.practice_id)
    # The capture won the race (its intent is recorded): the refund action first lets
    # the close read it back and settle it, then refunds; it never cancels it.
    reversal = refund(office, payment, None, None)
    assert reversal.kind == "refund"
    assert dict(sandbox(office).movements) == {"charge": 1, "capture": 1, "refund": 1}


def test_no_effect_is_made_inside_a_retry_on_conflict(office: Components) -> None:
    payment = a_payment(office)

    def decide_and_void() -> str:
        return office.processor.void(
            transaction_id=payment.transaction_id or "", reference=payment.id
        )

    with pytest.raises(EffectInsideRetry):
        retry_on_conflict(decide_and_void)
    assert sandbox(office).calls["void"] == 0


# -- through the API -------------------------------------------------------------------


def test_the_api_says_an_unknown_refund_is_under_way_and_its_key_finishes_it(
    make_components: ComponentsFactory, clock: PinnedClock
) -> None:
    ctx = make_components("sqlite", clock, metrics_token="scrape")
    ctx.processor = FaultyProcessor()
    client = TestClient(create_app(ctx, scheduler=False), raise_server_exceptions=False)
    api = Api(client).setup()
    payment = api.pay(10_000).json()
    api.advance(int(DAY.total_seconds()))
    sandbox(ctx).answers["refund"].append("500-after")
    key = {"Idempotency-Key": "refund-once", **api.admin}
    lost = api.post(f"/v1/payments/{payment['id']}/refund", {"amount": 2500}, headers=key)
    assert lost.status_code == 502
    assert lost.json()["type"].endswith("processor-outcome-unknown")
    shown = api.get(f"/v1/payments/{payment['id']}").json()
    assert [(i["effect"], i["amount"], i["state"]) for i in shown["open_intents"]] == [
        ("refund", 2500, "unknown")
    ]
    # Practice status, the day's close and /metrics show it too, until it ends.
    status = api.get(f"/v1/practices/{api.practice_id}").json()["open_intents"]
    assert (status["open"], status["unknown"]) == (1, 1)
    today = shown["open_intents"][0]["requested_at"][:10]
    close = api.get("/v1/reports/daily-close", params={"date": today}).json()
    assert [d["kind"] for d in close["differences"]] == ["intent_unknown"]
    assert [(i["effect"], i["state"]) for i in close["open_intents"]] == [("refund", "unknown")]
    assert not close["balanced"]
    metrics = api.client.get("/metrics", headers={"Authorization": "Bearer scrape"}).text
    assert 'payledger_open_intents{state="unknown"} 1.0' in metrics
    again = api.post(f"/v1/payments/{payment['id']}/refund", {"amount": 2500}, headers=key)
    assert again.status_code == 200, again.text
    assert again.json()["amount"] == 2500
    assert api.get(f"/v1/payments/{payment['id']}").json()["open_intents"] == []
    assert sandbox(ctx).movements["refund"] == 1


# -- 10. the dashboard's refund form keeps its key through its own error page -------------


def test_confirm_refund_pressed_again_after_a_lost_answer_refunds_once(
    make_components: ComponentsFactory, clock: PinnedClock
) -> None:
    ctx = make_components("sqlite", clock)
    ctx.processor = FaultyProcessor()
    api = Api(TestClient(create_app(ctx, scheduler=False), raise_server_exceptions=False))
    api.setup()
    payment = api.pay(15_000).json()
    api.advance(int(DAY.total_seconds()))
    web, _ = browser(api, "front.desk@birch.example")
    refund_url = f"/payments/transactions/{payment['id']}/refund"
    form = web.get(refund_url).text
    fields = {name: hidden(form, name) for name in ("csrf_token", "idempotency_key", "kind")}

    # The processor refunds, but its answer is lost: the page says so ...
    sandbox(ctx).answers["refund"].append("500-after")
    lost = web.post(refund_url, data={**fields, "amount": "50.00"}, follow_redirects=False)
    assert lost.status_code == 502
    assert "was lost" in lost.text
    # The payment's page shows the refund under way, its outcome being read back.
    page = web.get(f"/payments/transactions/{payment['id']}").text
    assert "Under way at the card processor" in page and "answer was lost" in page
    assert "still under way at the processor" in web.get(refund_url).text
    status = web.get("/payments/status").text
    assert "1 outcome unknown" in status, status
    # ... and the refund form carries the same key, so Confirm again finishes it.
    assert hidden(lost.text, "idempotency_key") == fields["idempotency_key"]
    again = {**fields, "csrf_token": hidden(lost.text, "csrf_token"), "amount": "50.00"}
    done = web.post(refund_url, data=again, follow_redirects=False)
    assert done.status_code == 303, done.text
    shown = api.get(f"/v1/payments/{payment['id']}").json()
    assert [r["amount"] for r in shown["refunds"]] == [5000]
    assert sandbox(ctx).movements["refund"] == 1
    page = web.get(f"/payments/transactions/{payment['id']}").text
    assert "Under way at the card processor" not in page
    assert "Nothing under way" in web.get("/payments/status").text
    history = re.findall(r"<strong>(Payment\w+)</strong>", page)
    assert history[-3:] == [
        "PaymentRefundRequested",
        "PaymentRefundOutcomeUnknown",
        "PaymentRefunded",
    ]

    # A refusal is final: the next form is a new refund (a new key).
    sandbox(ctx).answers["refund"].append("refuse")
    form = web.get(refund_url).text
    fields = {name: hidden(form, name) for name in ("csrf_token", "idempotency_key", "kind")}
    refused = web.post(refund_url, data={**fields, "amount": "20.00"}, follow_redirects=False)
    assert refused.status_code == 422
    assert hidden(refused.text, "idempotency_key") != fields["idempotency_key"]


def hidden(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]+)"', page)
    assert found is not None, f"no {name} in the page"
    return found.group(1)


# -- authorisations whose answer was lost ------------------------------------------------


def collect(ctx: Components, practice_id: Any, key: str | None) -> Payment:
    return collect_payment(
        ctx,
        practice_id=practice_id,
        amount=8_000,
        method=Method.VIRTUAL_TERMINAL,
        card=CARD,
        actor="user:admin",
        key=key,
    )


def test_a_collect_retried_with_its_key_after_a_lost_answer_authorises_once(
    office: Components, clock: PinnedClock
) -> None:
    practice_id = a_payment(office).practice_id
    sandbox(office).answers["charge"].append("500-after")
    with pytest.raises(OutcomeUnknown, match="same Idempotency-Key"):
        collect(office, practice_id, "visit-41")
    office.catch_up()
    [attempt] = [i for i in office.reads(open_intents, practice_id) if i["effect"] == "charge"]
    assert attempt["unknown_since"] is not None

    payment = collect(office, practice_id, "visit-41")
    assert payment.status == Status.APPROVED
    assert sandbox(office).movements["charge"] == 2  # the first payment, and this one
    assert office.reads(open_intents, practice_id) == []


def test_an_authorisation_nobody_finished_is_released_never_captured(
    office: Components, clock: PinnedClock
) -> None:
    practice_id = a_payment(office).practice_id
    sandbox(office).answers["charge"].append("500-after")
    with pytest.raises(OutcomeUnknown):
        collect(office, practice_id, "visit-42")
    office.catch_up()

    # The front desk took the payment again with a new key; the first authorisation
    # was made at the processor but never recorded. The reconciler releases it.
    collect(office, practice_id, "visit-42-again")
    clock.move(seconds=SETTLE_AFTER.total_seconds())
    assert reconcile_due(office, practice_id) == 1
    office.catch_up()
    assert office.reads(open_intents, practice_id) == []
    assert sandbox(office).movements["void"] == 1

    # The first key now says what happened; nothing of it is ever captured.
    with pytest.raises(AuthorisationReleased, match="released"):
        collect(office, practice_id, "visit-42")
    clock.move(days=1)
    close_due_batches(office, practice_id)
    assert sandbox(office).movements["capture"] == 2  # the first payment and the retaken one


def test_an_authorisation_that_never_arrived_ends_not_made(
    office: Components, clock: PinnedClock
) -> None:
    practice_id = a_payment(office).practice_id
    sandbox(office).answers["charge"].append("drop-before")
    with pytest.raises(OutcomeUnknown):
        collect(office, practice_id, "visit-43")
    office.catch_up()
    clock.move(seconds=SETTLE_AFTER.total_seconds())
    assert reconcile_due(office, practice_id) == 1
    office.catch_up()
    assert office.reads(open_intents, practice_id) == []
    # The same request later asks again, and is recorded once.
    assert collect(office, practice_id, "visit-43").status == Status.APPROVED
    assert sandbox(office).movements["charge"] == 2
