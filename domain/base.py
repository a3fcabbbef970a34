"""What every aggregate and event of the ledger shares.

Every event carries the practice it belongs to, the instant it happened
(from the clock port, in UTC) and the actor who caused it, e.g.
``user:<id>``, ``patient``, ``system:batch-close``, ``processor``, ``operator``.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.domain import Aggregate


class PracticeAggregate(Aggregate):
    """An aggregate of one practice: it and each of its events carry the practice's id."""

    if TYPE_CHECKING:
        practice_id: UUID

    class Event(Aggregate.Event):
        practice_id: UUID
        at: datetime
        actor: str

    class Created(Event, Aggregate.Created):
        pass

    def record(self, event_class: type[Event], *, at: datetime, actor: str, **data: Any) -> None:
        """Record an event of this aggregate (apply it now, save it later)."""
        self.trigger_event(event_class, practice_id=self.practice_id, at=at, actor=actor, **data)


def event_data(event: object) -> dict[str, Any]:
    """An event's own fields, without the library's envelope."""
    envelope = {"originator_id", "originator_version", "timestamp", "originator_topic"}
    return {k: v for k, v in vars(event).items() if k not in envelope}


def event_type(event: object) -> str:
    """A past-tense name such as 'PaymentCaptured' (aggregate name + event name)."""
    qualname = type(event).__qualname__
    owner, _, name = qualname.rpartition(".")
    return f"{owner.rpartition('.')[2]}{name}"
