"""Worked examples: a processor that refuses, does not answer, or answers late.

An office in New York whose batch closes at 23:59. A $100.00 payment taken on
Wednesday 4 March 2026 at 10:00 settles that night. The processor here is the sandbox
with the faults of a real gateway (tests/faulty_processor.py): each of its answers is
set by the example. Whatever it does, money moves once and every intent ends in one
outcome that the ledger records.

The rules themselves (refused, lost, late and unreadable answers to refunds, voids,
captures and authorisations, and the reconciler) are shown in seconds by
tests/usecases/test_processor_outcomes.py, on the ledger in memory. Here stays what
only the real thing shows: a version conflict on SQLite's and PostgreSQL's own stores,
and what the API, the pages, the daily close and /metrics say of an unknown outcome.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from domain.payments import AssociationSource, Payment, Status
from services.app.payments import associate_payment, refund_payment
from services.app.settlement import close_due_batches
from services.asgi import create_app
from services.context import Components
from tests.conftest import Api, ComponentsFactory, PinnedClock
from tests.e2e.test_html_pages import browser
from tests.faulty_processor import FaultyProcessor
from tests.integration.test_money_moves_once import paid

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


# -- a void decided once, through a version conflict on the real stores ----------------


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
    lost = web.post(
        refund_url,
        data={**fields, "amount": "50.00", "reason": "patient_request"},
        follow_redirects=False,
    )
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
    again = {
        **fields,
        "csrf_token": hidden(lost.text, "csrf_token"),
        "amount": "50.00",
        "reason": "patient_request",
    }
    done = web.post(refund_url, data=again, follow_redirects=False)
    assert done.status_code == 303, done.text
    shown = api.get(f"/v1/payments/{payment['id']}").json()
    assert [r["amount"] for r in shown["refunds"]] == [5000]
    assert sandbox(ctx).movements["refund"] == 1
    page = web.get(f"/payments/transactions/{payment['id']}").text
    assert "Under way at the card processor" not in page
    assert "Nothing under way" in web.get("/payments/status").text
    # the history says it in order: asked, the answer lost and read back, refunded once
    page = page[page.index("<h2>History</h2>") :]
    asked = page.index("Asked the card processor to refund $50.00")
    lost_answer = page.index("The processor&#39;s answer to a refund was lost; reading it back")
    refunded = page.index("Refunded $50.00")
    assert asked < lost_answer < refunded
    assert page.count("Refunded $50.00") == 1

    # A refusal is final: the next form is a new refund (a new key).
    sandbox(ctx).answers["refund"].append("refuse")
    form = web.get(refund_url).text
    fields = {name: hidden(form, name) for name in ("csrf_token", "idempotency_key", "kind")}
    refused = web.post(
        refund_url,
        data={**fields, "amount": "20.00", "reason": "patient_request"},
        follow_redirects=False,
    )
    assert refused.status_code == 422
    assert hidden(refused.text, "idempotency_key") != fields["idempotency_key"]


def hidden(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]+)"', page)
    assert found is not None, f"no {name} in the page"
    return found.group(1)
