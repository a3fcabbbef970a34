"""A bulk payment request in chunks: each chunk one command (its reads once, its
requests saved with their first messages claimed in one transaction), its messages sent
and recorded beside the next chunk. Every message is sent once and its outcome recorded,
a failed send included; the views show every request when the command answers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import pytest

from adapters.clock import SandboxClock
from adapters.messaging.email import SendFailed
from adapters.messaging.sms import Sms, SmsSender
from domain.receivables import AmountRule, Eligibility
from domain.requests import CLAIM_FOR, Channel, PaymentRequest
from services.app import requests
from services.app.receivables import bulk_send
from services.context import Components
from tests.integration.test_receivables_properties import populate

PATIENTS = 11  # three chunks of four at BULK_CHUNK = 4


class Texts(SmsSender):
    """Keeps every text handed over (with the batch it came in); refuses one number."""

    def __init__(self, refuse: str | None = None) -> None:
        self.refuse = refuse
        self.batches: list[list[Sms]] = []

    def send(self, message: Sms) -> str:
        raise AssertionError("a bulk request hands its texts over a chunk at a time")

    def send_many(self, messages: Sequence[Sms]) -> list[str | SendFailed]:
        self.batches.append(list(messages))
        return [
            SendFailed("the gateway refused it") if m.to == self.refuse else f"sms-{m.reference}"
            for m in messages
        ]


class OneByOne(Texts):
    """Keeps the texts sent one at a time too (the due work's retries)."""

    def send(self, message: Sms) -> str:
        self.batches.append([message])
        return f"sms-{message.reference}"


def everyone(ctx: Components, practice_id: Any, key: str) -> list[Any]:
    return bulk_send(
        ctx,
        practice_id=practice_id,
        patient_ids=None,
        raw_filter={"min_total": 1},
        channel="sms",
        rule=AmountRule.TOTAL,
        rules=Eligibility(),
        actor="user:bulk",
        key=key,
    )


@pytest.fixture
def chunked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(requests, "BULK_CHUNK", 4)


@pytest.mark.usefixtures("chunked")
def test_each_message_of_every_chunk_is_sent_once_and_recorded(ctx: Components) -> None:
    practice = populate(ctx, [(5000 + n, 0, False, True, False, False, True) for n in range(11)])
    texts = Texts()
    ctx.sms = texts

    outcomes = everyone(ctx, practice.id, "march")

    assert [o.outcome for o in outcomes] == ["sent"] * PATIENTS
    assert [len(b) for b in texts.batches] == [4, 4, 3]  # one hand-over per chunk
    references = [m.reference for b in texts.batches for m in b]
    assert len(references) == len(set(references)) == PATIENTS
    for outcome in outcomes:
        request = ctx.get(PaymentRequest, UUID(str(outcome.request_id)), practice.id)
        first = request.messages[0]
        assert (first.status, first.attempts, first.claimed_until) == ("sent", 1, None)
    # the views show them all when the command answers
    rows = ctx.store.database().query(
        "SELECT id FROM payment_requests WHERE practice_id = ?", (str(practice.id),)
    )
    assert {r["id"] for r in rows} == {o.request_id for o in outcomes}

    again = everyone(ctx, practice.id, "march")  # the same key: found, nothing sent
    assert [o.request_id for o in again] == [o.request_id for o in outcomes]
    assert len(texts.batches) == 3


@pytest.mark.usefixtures("chunked")
def test_a_refused_send_in_a_chunk_is_recorded_failed_and_the_others_sent(
    ctx: Components,
) -> None:
    practice = populate(ctx, [(5000 + n, 0, False, True, False, False, True) for n in range(11)])
    texts = Texts(refuse="+16175550000")  # every patient of `populate` has this number
    ctx.sms = texts

    outcomes = everyone(ctx, practice.id, "april")

    assert [o.outcome for o in outcomes] == ["sent"] * PATIENTS  # requested, as before
    assert sum(len(b) for b in texts.batches) == PATIENTS  # each handed over once
    for outcome in outcomes:
        first = ctx.get(PaymentRequest, UUID(str(outcome.request_id)), practice.id).messages[0]
        assert first.status == "pending" and first.last_error == "the gateway refused it"
        assert first.retry_at is not None and first.claimed_until is None  # retried later


@pytest.mark.usefixtures("chunked")
def test_a_bulk_request_is_sent_and_its_first_message_claimed_by_one_event(
    ctx: Components,
) -> None:
    """The outbox entry is the request's own Sent event (`claimed_until`): no
    DeliveryClaimed; the request's events are Sent and the outcome, and the view's message
    row counts the attempt."""
    practice = populate(ctx, [(5000 + n, 0, False, True, False, False, True) for n in range(5)])
    ctx.sms = Texts()

    outcomes = everyone(ctx, practice.id, "may")

    assert [o.outcome for o in outcomes] == ["sent"] * 5
    db = ctx.store.database()
    for outcome in outcomes:
        request_id = UUID(str(outcome.request_id))
        topics = [s.topic for s in ctx.store.recorder.select_events(request_id)]
        assert topics == [
            "domain.requests:PaymentRequest.Sent",
            "domain.requests:PaymentRequest.Delivered",
        ]
        message = db.query_one(
            "SELECT status, attempts, next_at FROM payment_request_messages "
            "WHERE request_id = ? AND number = 0",
            (str(request_id),),
        )
        assert message is not None
        assert (message["status"], message["attempts"], message["next_at"]) == ("sent", 1, None)
        row = db.query_one(
            "SELECT delivery_status FROM payment_requests WHERE id = ?", (str(request_id),)
        )
        assert row is not None and row["delivery_status"] == "sent"


def test_a_request_claimed_with_its_sent_event_and_never_recorded_is_retried_after_the_claim(
    ctx: Components,
) -> None:
    """A crash after the chunk's save (its messages claimed by Sent) and before the outcome:
    the message stays claimed until `claimed_until`, then the due work sends it once."""
    practice = populate(ctx, [(5000, 0, False, True, False, False, True)])
    texts = OneByOne()
    ctx.sms = texts
    (row,) = ctx.store.database().query("SELECT id FROM request_patients", ())
    item = [(UUID(row["id"]), 1000, Channel.SMS)]
    with ctx.clock.held():
        _, new, _, claimed = requests.save_chunk(ctx, practice, item, "user:bulk", "june")
    assert claimed and len(new) == 1
    request = ctx.get(PaymentRequest, new[0][1].id, practice.id)
    first = request.messages[0]
    assert (first.status, first.attempts) == ("pending", 1)
    assert first.claimed_until is not None
    now = ctx.clock.now(practice.id)
    assert requests.deliver_due(ctx, practice.id) == 0  # claimed: not due yet
    assert texts.batches == [] and first.claimed_until > now
    ctx.catch_up()
    clock = ctx.clock
    assert isinstance(clock, SandboxClock)
    clock.advance(practice.id, CLAIM_FOR.total_seconds() + 1)
    assert requests.deliver_due(ctx, practice.id) == 1
    again = ctx.get(PaymentRequest, request.id, practice.id).messages[0]
    assert (again.status, again.attempts) == ("sent", 2)
    assert [len(b) for b in texts.batches] == [1]  # sent once, by the due work
