"""The fast decode (projections/decode.py) makes the very events the library's mapper makes:
for every event type of the domain (found in the domain's modules, not listed by hand),
examples built from its declared fields are stored through the application's real mapper
and decoded both ways; type and every attribute must be equal.

A new event type is covered by the same rule; one with a field of a type the examples do
not know how to make fails here until `values` learns it. An event class with a class
version above 1 must have its older stored forms in OLDER (each upcast run by both paths),
or this fails."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import types
import typing
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.domain import CanMutateAggregate
from eventsourcing.persistence import Notification, StoredEvent
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import domain
from adapters.clock import iso as clock_iso
from adapters.store import EventStore
from projections.base import iso as views_iso
from projections.decode import Decoder, decode_page

#: stored states of older class versions, by topic: {class_version: [state, ...]}; every
#: class with a class_version above 1 needs every older version here
OLDER: dict[str, dict[int, list[dict[str, Any]]]] = {
    # version 1: no `claimed_until` (its first message claimed by a DeliveryClaimed)
    "domain.requests:PaymentRequest.Sent": {
        1: [
            {
                "originator_topic": "domain.requests:PaymentRequest",
                "timestamp": datetime(2026, 3, 2, 15, 4, 5, 6, tzinfo=UTC),
                "practice_id": UUID(int=2),
                "at": datetime(2026, 3, 2, 15, 4, 5, 6, tzinfo=UTC),
                "actor": "user:1",
                "patient_id": UUID(int=3),
                "amount": 12_345,
                "channel": "sms",
                "destination": "+15555550100",
                "token_nonce": "00" * 16,
                "token_hash": "ab" * 32,
                "expires_at": datetime(2026, 3, 16, 15, 4, 5, 6, tzinfo=UTC),
                "reminder_days": [3, 10],
                "commlog_mode": "Text",
                "commlog_note": "Payment request for $123.45 sent by text",
            }
        ]
    },
    # version 1: no reason or note
    "domain.payments:Payment.RefundRequested": {
        1: [
            {
                "originator_topic": "domain.payments:Payment",
                "timestamp": datetime(2026, 3, 2, 15, 4, 5, 6, tzinfo=UTC),
                "practice_id": UUID(int=2),
                "at": datetime(2026, 3, 2, 15, 4, 5, 6, tzinfo=UTC),
                "actor": "user:1",
                "refund_id": UUID(int=4),
                "amount": 2_500,
            }
        ]
    },
    "domain.payments:Payment.VoidRequested": {
        1: [
            {
                "originator_topic": "domain.payments:Payment",
                "timestamp": datetime(2026, 3, 2, 15, 4, 5, 6, tzinfo=UTC),
                "practice_id": UUID(int=2),
                "at": datetime(2026, 3, 2, 15, 4, 5, 6, tzinfo=UTC),
                "actor": "user:1",
                "void_id": UUID(int=5),
            }
        ]
    },
    # version 1: sent by email only (no `phone`)
    "domain.payments:Payment.ReceiptSent": {
        1: [
            {
                "originator_topic": "domain.payments:Payment",
                "timestamp": datetime(2026, 3, 2, 15, 4, 5, 6, tzinfo=UTC),
                "practice_id": UUID(int=2),
                "at": datetime(2026, 3, 2, 15, 4, 5, 6, tzinfo=UTC),
                "actor": "user:1",
                "email": "ruth@example.com",
                "refund_id": None,
            }
        ]
    },
}


def domain_event_classes() -> list[type]:
    """Every event class defined in the domain's modules (nested in the aggregates too)."""
    found: dict[str, type] = {}

    def visit(owner: Any, module: str) -> None:
        for value in vars(owner).values():
            if not inspect.isclass(value) or value.__module__ != module:
                continue
            if issubclass(value, CanMutateAggregate):
                found[f"{module}:{value.__qualname__}"] = value
            visit(value, module)

    for info in pkgutil.iter_modules(domain.__path__):
        module = importlib.import_module(f"domain.{info.name}")
        visit(module, module.__name__)
    return [found[topic] for topic in sorted(found)]


EVENT_CLASSES = domain_event_classes()
text = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
zones = st.sampled_from([UTC, timezone(timedelta(hours=-5)), timezone(timedelta(minutes=330))])
datetimes = st.datetimes(timezones=zones)
plain = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text
encoded = st.uuids() | datetimes | st.decimals(allow_nan=False, allow_infinity=False)
#: what a free-form field (dict[str, Any]) may hold: JSON, and the transcoder's own types
json_values = st.recursive(
    plain | encoded,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)


def values(hint: Any) -> st.SearchStrategy[Any]:
    """Examples of a field's declared type."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return st.one_of(*(values(a) for a in typing.get_args(hint)))
    if hint is type(None):
        return st.none()
    if hint is bool:
        return st.booleans()
    if hint is int:
        return st.integers(min_value=-(2**70), max_value=2**70)  # beyond 64 bits too
    if hint is str:
        return text
    if hint is UUID:
        return st.uuids()
    if hint is datetime:
        return datetimes
    if hint is Decimal:
        return st.decimals(allow_nan=False, allow_infinity=False)
    if origin is dict:
        key, value = typing.get_args(hint)
        assert key is str, hint
        return st.dictionaries(text, json_values if value in (Any, object) else values(value))
    if origin is list:
        (item,) = typing.get_args(hint)
        return st.lists(values(item), max_size=3)
    raise AssertionError(f"no examples for a field of type {hint!r}: teach `values`")


def fields(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {
        name: hint
        for name, hint in hints.items()
        if typing.get_origin(hint) is not typing.ClassVar
        and name not in ("originator_id", "originator_version")
    }


def events(cls: type) -> st.SearchStrategy[Any]:
    hints = fields(cls)
    drawn = {name: values(hint) for name, hint in hints.items()}
    if "originator_topic" in hints:
        drawn["originator_topic"] = st.just(f"{cls.__module__}:{cls.__qualname__.split('.')[0]}")

    def make(originator_id: UUID, version: int, data: dict[str, Any]) -> Any:
        return cls(originator_id=originator_id, originator_version=version, **data)

    return st.builds(
        make, st.uuids(), st.integers(min_value=1, max_value=2**40), st.fixed_dictionaries(drawn)
    )


@pytest.fixture(scope="module")
def store() -> typing.Iterator[EventStore]:
    app = EventStore(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    yield app
    app.close()


def same(expected: Any, got: Any) -> None:
    assert type(got) is type(expected)
    assert vars(got) == vars(expected)
    for name, value in vars(expected).items():  # 1 == True == 1.0: the types must agree too
        assert type(vars(got)[name]) is type(value), name
    assert repr(vars(got)) == repr(vars(expected))


def test_every_event_type_of_the_domain_is_found() -> None:
    topics = {f"{c.__module__}:{c.__qualname__}" for c in EVENT_CLASSES}
    assert "domain.payments:Payment.Captured" in topics
    assert "domain.receivables:PmsSync.Finished" in topics
    assert len(EVENT_CLASSES) >= 60
    for cls in EVENT_CLASSES:
        for hint in fields(cls).values():
            values(hint)  # every field's type has examples


def test_every_upcast_version_has_older_stored_forms() -> None:
    for cls in EVENT_CLASSES:
        version = getattr(cls, "class_version", 1)
        topic = f"{cls.__module__}:{cls.__qualname__}"
        assert sorted(OLDER.get(topic, {})) == list(range(1, version)), (
            f"{topic} is at class version {version}: put its older stored forms in OLDER"
        )


@pytest.mark.parametrize("cls", EVENT_CLASSES, ids=lambda c: c.__qualname__)
def test_the_fast_decode_makes_the_events_the_mapper_makes(cls: type, store: EventStore) -> None:
    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(event=events(cls))
    def check(event: Any) -> None:
        stored = store.mapper.to_stored_event(event)
        expected = store.mapper.to_domain_event(stored)
        same(expected, Decoder(store.mapper).decode(stored))
        notification = Notification(
            id=7,
            originator_id=stored.originator_id,
            originator_version=stored.originator_version,
            topic=stored.topic,
            state=stored.state,
        )
        ((position, got),) = decode_page(store.mapper, [notification])
        assert position == 7
        same(expected, got)

    check()


def test_older_class_versions_are_upcast_alike(store: EventStore) -> None:
    """Every older stored form (OLDER) decodes as the mapper upcasts it. One test over
    all of them, not one per form: with no upcast in the domain yet, a parametrised test
    would be skipped, and nothing is skipped in CI."""
    for topic, versions in OLDER.items():
        for version, states in versions.items():
            for state in states:
                encoded = store.mapper.transcoder.encode({**state, "class_version": version})
                stored = StoredEvent(UUID(int=1), 1, topic, encoded)
                same(store.mapper.to_domain_event(stored), Decoder(store.mapper).decode(stored))


def test_records_the_fast_path_cannot_read_go_to_the_mapper(store: EventStore) -> None:
    payment = next(c for c in EVENT_CLASSES if c.__qualname__ == "Payment.Settled")
    bad = [
        b'{"at": NaN}',  # json reads it, orjson does not
        b'{"x": {"_type_": "no_such_type", "_data_": 1}}',  # neither reads it
        b"[1, 2]",
    ]
    decoder = Decoder(store.mapper)
    for state in bad:
        stored = StoredEvent(UUID(int=1), 1, f"{payment.__module__}:{payment.__qualname__}", state)
        try:
            expected = store.mapper.to_domain_event(stored)
        except Exception as error:
            with pytest.raises(type(error)):
                decoder.decode(stored)
        else:
            same(expected, decoder.decode(stored))
    assert decoder.fallbacks == len(bad)


@given(instant=datetimes | st.datetimes())
def test_the_views_time_text_is_the_clocks(instant: datetime) -> None:
    """projections.base.iso (a shortcut for UTC times) writes what adapters.clock.iso does."""
    assert views_iso(instant) == clock_iso(instant)
