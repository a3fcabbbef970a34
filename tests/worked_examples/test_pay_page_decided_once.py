"""Worked examples: the hosted pay page decides a form once, however it is posted.

Rosa Diaz of Elm Dental (New York) gets a text asking for $120.00. Her phone posts
the pay form twice at the same moment (a double tap on a slow connection). Both
posts carry the same attempt id, so both name the same payment, and the processor
authorises the card once for both. Whichever post saves first, the other one answers
that same payment: the request is paid once, and nothing is voided.

When the request really changed while the card was being charged (the office
cancelled it), the charge is given back by a recorded void, never by a call the
ledger does not remember.

The clock starts on Wednesday 4 March 2026, 10:00 in New York.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from adapters.processor.sandbox import SandboxProcessor
from services.app.requests import attempt_payment_id
from services.asgi import create_app
from services.context import Components
from tests.conftest import Api, ComponentsFactory, PinnedClock
from tests.worked_examples.test_payment_requests import CARD, new_patient, pay_path, send


@pytest.fixture
def office(
    make_components: ComponentsFactory, clock: PinnedClock, backend: str
) -> Iterator[Office]:
    """The office's ledger on each backend (the posts' threads race on PostgreSQL's
    concurrent transactions, and on SQLite's one writer)."""
    ctx = make_components(backend, clock)
    client = TestClient(create_app(ctx, scheduler=False), raise_server_exceptions=False)
    yield Office(ctx, Api(client).setup())
    client.close()


class Office:
    def __init__(self, ctx: Components, api: Api) -> None:
        self.ctx = ctx
        self.api = api
        assert isinstance(ctx.processor, SandboxProcessor)
        self.processor: SandboxProcessor = ctx.processor

    def hold_charges_until(self, posts: int, then: Callable[[], Any] | None = None) -> None:
        """Every charge waits, once the processor answered, until `posts` charges have
        been answered (and `then` ran): the posts are all past their first look for the
        payment, holding the same authorisation, before any of them saves."""
        barrier = threading.Barrier(posts, action=then, timeout=20)
        charge = self.processor.charge

        def held(**kwargs: Any) -> Any:
            answer = charge(**kwargs)
            barrier.wait()
            return answer

        self.processor.charge = held  # type: ignore[method-assign]


def at_once(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls in threads started together; their answers in order."""
    answers: list[Any] = [None] * len(calls)

    def run(index: int) -> None:
        answers[index] = calls[index]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return answers


def the_form(api: Api, request: dict[str, Any], **fields: str) -> dict[str, str]:
    page = api.client.get(pay_path(request))
    attempt = re.search(r'name="attempt" value="([^"]+)"', page.text)
    assert attempt is not None
    return {**CARD, "attempt": attempt.group(1), **fields}


def test_one_form_posted_twice_at_once_pays_once_and_voids_nothing(office: Office) -> None:
    api = office.api
    request = send(api, new_patient(api), 12000)
    form = the_form(api, request)
    office.hold_charges_until(2)

    first, second = at_once(
        lambda: api.client.post(pay_path(request), data=form),
        lambda: api.client.post(pay_path(request), data=form),
    )

    # Both posts show the same receipt: one payment of $120.00, approved.
    for answer in (first, second):
        assert answer.status_code == 200, answer.text
        assert "Your payment of $120.00 was approved" in answer.text
    payment_id = attempt_payment_id(UUID(request["id"]), form["attempt"])
    payment = api.get(f"/v1/payments/{payment_id}").json()
    assert payment["status"] == "approved"
    # The request is completed by that payment.
    done = api.get(f"/v1/payment-requests/{request['id']}").json()
    assert (done["status"], done["payment_id"], done["paid_amount"]) == (
        "completed",
        str(payment_id),
        12000,
    )
    # The card was authorised once, and nothing was voided at the processor.
    assert office.processor.movements["charge"] == 1
    assert office.processor.movements["void"] == 0
    assert office.processor.calls["void"] == 0
    assert [t["id"] for t in api.get("/v1/transactions").json()["items"]] == [str(payment_id)]


def test_the_same_form_posted_again_later_shows_the_first_receipt(office: Office) -> None:
    api = office.api
    request = send(api, new_patient(api), 12000)
    form = the_form(api, request)
    assert api.client.post(pay_path(request), data=form).status_code == 200

    again = api.client.post(pay_path(request), data=form)

    # Not "already paid": the same receipt, and no second charge.
    assert again.status_code == 200, again.text
    assert "Your payment of $120.00 was approved" in again.text
    assert office.processor.calls["charge"] == 1


def test_a_request_cancelled_while_paying_gives_the_money_back_by_a_recorded_void(
    office: Office,
) -> None:
    api = office.api
    request = send(api, new_patient(api), 12000)
    form = the_form(api, request)

    def office_cancels() -> None:
        cancelled = api.post(f"/v1/payment-requests/{request['id']}/cancel")
        assert cancelled.status_code == 200, cancelled.text

    # The card is authorised; before the page saves, the office cancels the request.
    office.hold_charges_until(1, then=office_cancels)
    answer = api.client.post(pay_path(request), data=form)

    assert answer.status_code == 422
    assert "no money was taken" in answer.text
    # The payment is on record, voided by the pay page, and the void went to the
    # processor once, under the void id the ledger recorded.
    payment_id = attempt_payment_id(UUID(request["id"]), form["attempt"])
    payment = api.get(f"/v1/payments/{payment_id}").json()
    assert payment["status"] == "voided"
    assert office.processor.movements["void"] == 1
    state = api.get(f"/v1/payment-requests/{request['id']}").json()
    assert (state["status"], state["cancel_reason"], state["paid_amount"]) == (
        "cancelled",
        "staff",
        None,
    )
    # Posting the form again answers the same: nothing charged or voided twice.
    again = api.client.post(pay_path(request), data=form)
    assert again.status_code in (410, 422)
    assert office.processor.movements["charge"] == 1
    assert office.processor.movements["void"] == 1
