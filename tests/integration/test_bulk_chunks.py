"""A bulk payment request in chunks: each chunk one command (its reads once, its
requests saved with their first messages claimed in one transaction), its messages sent
and recorded beside the next chunk. Every message is sent once and its outcome recorded,
a failed send included; the views show every request when the command answers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import pytest

from adapters.messaging.email import SendFailed
from adapters.messaging.sms import Sms, SmsSender
from domain.receivables import AmountRule, Eligibility
from domain.requests import PaymentRequest
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
