"""Builders of domain objects for the unit tests: explicit ids, explicit UTC times.

Elm Dental is in New York and its batch closes at 23:59 local time. Unless a test
says otherwise, a payment is taken on Wednesday 4 March 2026 at 10:00 in New York.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, time
from typing import Any

from domain.base import PracticeAggregate
from domain.money import Money
from domain.payments import CardSummary, Method, Payment
from domain.schedule import batch_date_for, cutoff_instant

NEW_YORK = "America/New_York"
CUTOFF = time(23, 59)
#: Wednesday 4 March 2026, 10:00 in New York
TAKEN_AT = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)
#: 23:59 in New York that evening: the batch of 4 March closes
CLOSES_AT = datetime(2026, 3, 5, 4, 59, tzinfo=UTC)
CARD = CardSummary("visa", "4242")
STAFF = "user:front-desk"


def capture(
    amount: int = 12_500,
    *,
    at: datetime = TAKEN_AT,
    tz: str = NEW_YORK,
    cutoff: time = CUTOFF,
    practice_id: uuid.UUID | None = None,
    **extra: Any,
) -> Payment:
    """An approved payment whose batch date and cut-off follow the practice's calendar."""
    batch_date = batch_date_for(at, tz, cutoff)
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "practice_id": practice_id or uuid.uuid4(),
        "amount": Money(amount),
        "method": Method.VIRTUAL_TERMINAL,
        "card": CARD,
        "transaction_id": f"txn_{uuid.uuid4().hex[:12]}",
        "batch_date": batch_date,
        "settles_at": cutoff_instant(batch_date, tz, cutoff),
        "at": at,
        "actor": STAFF,
        **extra,
    }
    return Payment.capture(**values)


def decline(amount: int = 12_500, *, at: datetime = TAKEN_AT, **extra: Any) -> Payment:
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "practice_id": uuid.uuid4(),
        "amount": Money(amount),
        "method": Method.VIRTUAL_TERMINAL,
        "card": CARD,
        "reason": "insufficient funds",
        "at": at,
        "actor": STAFF,
        **extra,
    }
    return Payment.decline(**values)


def settle(payment: Payment, *, at: datetime | None = None) -> uuid.UUID:
    """Settle at the payment's cut-off (as the nightly batch close does); the batch id."""
    batch_id = uuid.uuid4()
    payment.settle(batch_id=batch_id, at=at or payment.settles_at or TAKEN_AT, actor="system:batch")
    return batch_id


def refund(payment: Payment, amount: int, *, at: datetime) -> uuid.UUID:
    refund_id = uuid.uuid4()
    payment.refund(
        refund_id=refund_id,
        amount=Money(amount),
        processor_refund_id=f"re_{refund_id.hex[:12]}",
        at=at,
        actor=STAFF,
    )
    return refund_id


def replay(events: Sequence[Any]) -> PracticeAggregate:
    """Rebuild an aggregate by applying its events in order, as the event store does."""
    aggregate = None
    for event in events:
        aggregate = event.mutate(aggregate)
    assert isinstance(aggregate, PracticeAggregate)
    return aggregate
