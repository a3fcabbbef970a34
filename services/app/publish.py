"""The public event schema, version 1: what leaves the service (Kafka, consumers).

Every published event carries its id, type, schema version, practice, aggregate,
position in the ordered log, when it happened (UTC), the actor and its data.
Never a card number (the ledger holds none), never a token or its hash, never the
library's internal encoding. See docs/events.md.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from adapters.encoding import jsonable
from domain.base import PracticeAggregate, event_data, event_type
from domain.batches import ProcessorBatchClose
from domain.charges import ChargeAttempt
from projections.feed import PRIVATE_FIELDS, event_id

SCHEMA_VERSION = 1
TOPIC = "payledger.events.v1"


class PublishedEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: UUID
    type: str
    version: int = SCHEMA_VERSION
    practice_id: UUID
    aggregate_id: UUID
    aggregate_version: int
    position: int
    occurred_at: datetime
    actor: str
    data: dict[str, Any]

    def key(self) -> bytes:
        """The Kafka key: the practice, so that one practice's events stay in order."""
        return str(self.practice_id).encode()

    def encode(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def decode(cls, raw: bytes) -> PublishedEvent:
        return cls.model_validate_json(raw)


def to_publish(event: Any, position: int) -> PublishedEvent | None:
    """What the relay publishes: the public form, but for an authorisation's attempt and
    the close of a processor's own batch, the ledger's own bookkeeping (the payment it
    records, the deposit the batch pays, are published)."""
    if isinstance(event, ChargeAttempt.Event | ProcessorBatchClose.Event):
        return None
    return to_public(event, position)


def to_public(event: Any, position: int) -> PublishedEvent | None:
    """The public form of a stored domain event (None for what is not a ledger event);
    the audit export holds every one."""
    if not isinstance(event, PracticeAggregate.Event):
        return None
    data = event_data(event)
    practice_id = data.pop("practice_id")
    occurred_at = data.pop("at")
    actor = data.pop("actor")
    for name in PRIVATE_FIELDS:
        data.pop(name, None)
    return PublishedEvent(
        event_id=event_id(event.originator_id, event.originator_version),
        type=event_type(event),
        practice_id=practice_id,
        aggregate_id=event.originator_id,
        aggregate_version=event.originator_version,
        position=position,
        occurred_at=occurred_at,
        actor=actor,
        data=jsonable(data),
    )
