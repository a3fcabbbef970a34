"""History is never edited, so an event class that changes must still load what its earlier
version stored: it declares `class_version = 2` and an `upcast_v1_v2` that turns the stored
version-1 state into version 2 as it is read (docs/design.md, "Changing an event"). On both
backends: stored under version 1, loaded under version 2, the stored record untouched."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import uuid4

from eventsourcing.utils import _topic_cache, get_topic, register_topic

from domain.base import PracticeAggregate, event_type
from domain.payments import AssociationSource, Payment
from services.context import Components
from tests.unit import builders

AT = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)


class Chair(PracticeAggregate):
    """Version 1: a chair has a name, and moves to a room."""

    class Created(PracticeAggregate.Created):
        name: str

        def apply(self, chair: Chair) -> None:
            chair.practice_id = self.practice_id
            chair.name = self.name

    class Moved(PracticeAggregate.Event):
        room: str

        def apply(self, chair: Chair) -> None:
            chair.room = self.room

    if TYPE_CHECKING:
        name: str
        room: str


class ChairV2(PracticeAggregate):
    """Version 2 of the same classes: a chair also has a colour (older chairs: 'unrecorded'),
    and `room` became `place`."""

    class Created(PracticeAggregate.Created):
        class_version = 2
        name: str
        colour: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["colour"] = "unrecorded"

        def apply(self, chair: ChairV2) -> None:
            chair.practice_id = self.practice_id
            chair.name = self.name
            chair.colour = self.colour

    class Moved(PracticeAggregate.Event):
        class_version = 2
        place: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["place"] = state.pop("room")

        def apply(self, chair: ChairV2) -> None:
            chair.place = self.place

    if TYPE_CHECKING:
        name: str
        colour: str
        place: str


def the_code_now_says(old: type, new: type) -> None:
    """What a deploy of version 2 does: the stored topics now name the new classes."""
    for before, after in ((old, new), (old.Created, new.Created), (old.Moved, new.Moved)):  # type: ignore[attr-defined]
        _topic_cache.pop(get_topic(before), None)
        register_topic(get_topic(before), after)


def stored_states(ctx: Components, chair_id: Any) -> list[bytes]:
    return [bytes(s.state) for s in ctx.store.recorder.select_events(chair_id)]


def test_an_event_stored_under_version_1_loads_under_version_2(ctx: Components) -> None:
    practice_id = uuid4()
    chair = Chair._create(
        Chair.Created, id=uuid4(), practice_id=practice_id, name="Op 1", at=AT, actor="operator"
    )
    chair.record(Chair.Moved, at=AT, actor="operator", room="east")
    ctx.store.save(chair)
    before = stored_states(ctx, chair.id)
    try:
        the_code_now_says(Chair, ChairV2)
        loaded = ctx.store.repository.get(chair.id)
        assert isinstance(loaded, ChairV2)
        assert (loaded.name, loaded.colour, loaded.place) == ("Op 1", "unrecorded", "east")
        events = ctx.store.repository.event_store.get(chair.id)
        moved = list(events)[1]
        assert isinstance(moved, ChairV2.Moved) and moved.place == "east"
        assert not hasattr(moved, "room")

        # New events are stored under version 2 and load as they were written.
        loaded.record(ChairV2.Moved, at=AT, actor="operator", place="west")
        ctx.store.save(loaded)
        again = ctx.store.repository.get(chair.id)
        assert isinstance(again, ChairV2) and again.place == "west" and again.version == 3
        # History was not edited: the version-1 records are as they were stored.
        assert stored_states(ctx, chair.id)[:2] == before
        assert (
            b"class_version" not in before[1]
            and b"class_version" in (stored_states(ctx, chair.id)[2])
        )
    finally:
        for cls in (Chair, Chair.Created, Chair.Moved):
            _topic_cache.pop(get_topic(cls), None)


#: the topics a payment's dispute events were stored under, written out as stored (the
#: classes are in domain/disputes.py now, a base class of Payment)
DISPUTE_TOPICS = {
    "DisputeOpened": "domain.payments:Payment.DisputeOpened",
    "DisputeClosed": "domain.payments:Payment.DisputeClosed",
    "DisputeAssociated": "domain.payments:Payment.DisputeAssociated",
}


def test_dispute_events_stored_under_their_topics_still_load(ctx: Components) -> None:
    payment = builders.capture(12_000)
    builders.settle(payment)
    dispute = {"dispute_id": "dp_1", "evidence_due_by": None, "at": AT, "actor": "processor"}
    payment.record_dispute(
        reason="fraudulent", amount=12_000, status="lost", processor_event_id="evt_1", **dispute
    )
    payment.associate_dispute(
        source=AssociationSource.MANUAL, pms_reference="PN-9", at=AT, actor="user:front-desk"
    )
    events = payment.collect_events()
    names = [type(e).__name__ for e in events]
    assert names[2:] == ["DisputeOpened", "DisputeClosed", "DisputeAssociated"]

    # The records as they are stored: their topics written out by hand, whatever topic
    # the classes would be given today.
    stored = [ctx.store.mapper.to_stored_event(e) for e in events]
    stored[2:] = [
        replace(s, topic=DISPUTE_TOPICS[n]) for s, n in zip(stored[2:], names[2:], strict=True)
    ]
    ctx.store.recorder.insert_events(stored)

    loaded = ctx.store.repository.get(payment.id)
    assert isinstance(loaded, Payment) and loaded.dispute is not None
    assert (loaded.dispute.status, loaded.dispute.amount, loaded.dispute.posted) == (
        "lost",
        12_000,
        True,
    )
    assert loaded.dispute.pms_reference == "PN-9" and loaded.refund_blocked_by_dispute
    # Read back, they are the payment's events, under the payment's public names.
    read = list(ctx.store.repository.event_store.get(payment.id))[2:]
    assert [type(e) for e in read] == [
        Payment.DisputeOpened,
        Payment.DisputeClosed,
        Payment.DisputeAssociated,
    ]
    assert [event_type(e) for e in read] == [f"Payment{n}" for n in names[2:]]
    # And new ones are written under the same topics.
    assert {get_topic(type(e)) for e in read} == set(DISPUTE_TOPICS.values())
