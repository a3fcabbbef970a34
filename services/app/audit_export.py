"""A practice's history as a portable, checkable file: JSON lines chained by SHA-256.

Each line is one event of the practice, in log order, in the public event schema
(docs/events.md), with the hash of the line before it and its own hash:

    {"event": {...}, "hash": H(n), "prev_hash": H(n-1)}
    H(n) = sha256(H(n-1) + canonical JSON of the event), H(0) = 64 zeros

The last line is chained the same way and holds, instead of an event, the count, the last
event's hash, the position and the checksum of every view over the practice's rows as of
the end (projections/replay.py). `verify` checks the chain line by line, then rebuilds the
events from the file, replays them into an empty in-memory database and compares the
checksums: someone holding only the file and this program can tell whether it is whole
and whether the views the service showed are what its events say.
"""

from __future__ import annotations

import hashlib
import json
import types
import typing
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from itertools import islice
from typing import Any, Protocol
from uuid import UUID

from domain.base import PracticeAggregate, event_type
from projections import replay
from projections.base import parse_iso
from projections.catalog import all_projections
from projections.feed import PRIVATE_FIELDS
from projections.rebuild import PAGE, Scratch
from services.app import as_of
from services.app.as_of import practice_notifications
from services.app.publish import to_public
from services.context import EventLog, ViewsKept


class Needs(as_of.Needs, EventLog, ViewsKept, Protocol):
    """The parts these use cases are given (services/context.py)."""


GENESIS = "0" * 64
FORMAT = "payledger-audit-export/1"


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def chained(prev: str, body: dict[str, Any]) -> str:
    return hashlib.sha256((prev + canonical(body)).encode()).hexdigest()


# -- export -------------------------------------------------------------------------------


def export_lines(ctx: Needs, practice_id: UUID, until: datetime | None = None) -> Iterator[str]:
    """The practice's events up to `until` (by when they happened; default: all), one line
    each, then the closing line; replayed on the way into an in-memory database for the
    closing line's checksums. Only the practice's own records are read and decoded
    (services/app/as_of.py, `practice_notifications`)."""
    views = all_projections()
    stop = ctx.views.last_position()
    prev, count, position = GENESIS, 0, 0

    def mine(event: Any) -> bool:
        return (
            isinstance(event, PracticeAggregate.Event)
            and event.practice_id == practice_id
            and (until is None or event.at <= until)
        )

    with Scratch(views) as scratch:
        for batch in batches(practice_notifications(ctx, practice_id, until, stop), PAGE):
            page = [(n.id, ctx.store.mapper.to_domain_event(n)) for n in batch]
            page = [(pos, event) for pos, event in page if mine(event)]
            if not page:
                continue
            scratch.apply(page)
            lines = []
            for pos, event in page:
                public = to_public(event, pos)
                assert public is not None
                body = public.model_dump(mode="json")
                digest = chained(prev, body)
                lines.append(canonical({"event": body, "hash": digest, "prev_hash": prev}))
                prev, count, position = digest, count + 1, pos
            yield "".join(line + "\n" for line in lines)
        checksums = replay.scratch_checksums(scratch, views, practice_id)
    end = {
        "format": FORMAT,
        "practice_id": str(practice_id),
        "until": until.isoformat() if until else None,
        "count": count,
        "last_hash": prev,
        "position": position,
        "checksums": checksums,
    }
    yield canonical({"end": end, "hash": chained(prev, end), "prev_hash": prev}) + "\n"


def batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


# -- verify -------------------------------------------------------------------------------


@dataclass
class Verdict:
    count: int = 0
    last_hash: str = GENESIS
    errors: list[str] = field(default_factory=list)
    checksums: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


def verify_lines(lines: Iterable[str]) -> Verdict:
    """Check the chain, line by line, then replay the events and compare the checksums."""
    verdict = Verdict()
    events: list[dict[str, Any]] = []
    end: dict[str, Any] | None = None
    prev = GENESIS
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        if end is not None:
            verdict.errors.append(f"line {number}: a line after the closing line")
            break
        try:
            line = json.loads(text)
            body = line["event"] if "event" in line else line["end"]
            stated, before = line["hash"], line["prev_hash"]
        except (ValueError, KeyError, TypeError):
            verdict.errors.append(f"line {number}: not a line of an audit export (bad JSON)")
            break
        if before != prev:
            verdict.errors.append(
                f"line {number}: does not follow the line before it (prev_hash {before} "
                f"instead of {prev}): a line was removed, added or changed"
            )
            break
        if chained(prev, body) != stated:
            verdict.errors.append(
                f"line {number}: its hash does not match its content: the line was changed"
            )
            break
        prev = stated
        if "event" in line:
            events.append(body)
        else:
            end = body
    verdict.count, verdict.last_hash = len(events), prev
    if verdict.errors:
        return verdict
    if end is None:
        verdict.errors.append("the closing line is missing: the file was cut short")
        return verdict
    if end.get("count") != len(events):
        verdict.errors.append(f"the closing line counts {end.get('count')}, the file holds "
                              f"{len(events)} events")  # fmt: skip
    expected = end.get("checksums") or {}
    verdict.checksums = replayed_checksums(events, UUID(end["practice_id"]))
    for name in sorted(set(expected) | set(verdict.checksums)):
        if expected.get(name) != verdict.checksums.get(name):
            verdict.errors.append(
                f"view {name}: replaying the file gives {verdict.checksums.get(name)}, the "
                f"export says {expected.get(name)}"
            )
    return verdict


def replayed_checksums(events: list[dict[str, Any]], practice_id: UUID) -> dict[str, str]:
    """The events rebuilt from their public form and replayed into an empty in-memory
    database: each view's checksum over the practice's rows."""
    views = all_projections()
    with Scratch(views) as scratch:
        scratch.apply([(int(public["position"]), from_public(public)) for public in events])
        return replay.scratch_checksums(scratch, views, practice_id)


def event_classes() -> dict[str, type[PracticeAggregate.Event]]:
    """Every event class of the domain, by its public type name."""
    found: dict[str, type[PracticeAggregate.Event]] = {}
    for aggregate in _subclasses(PracticeAggregate):
        for value in vars(aggregate).values():
            if isinstance(value, type) and issubclass(value, PracticeAggregate.Event):
                owner, _, name = value.__qualname__.rpartition(".")
                found[f"{owner.rpartition('.')[2]}{name}"] = value
    return found


def _subclasses(cls: type) -> list[type]:
    import domain.batches
    import domain.deposits
    import domain.patients
    import domain.payments
    import domain.practices
    import domain.receivables
    import domain.requests
    import domain.users  # noqa: F401  (every aggregate, registered)

    out: list[type] = []
    todo: list[type] = list(cls.__subclasses__())
    while todo:
        sub = todo.pop()
        out.append(sub)
        todo.extend(sub.__subclasses__())
    return out


def from_public(public: dict[str, Any]) -> PracticeAggregate.Event:
    """A domain event rebuilt from its public form, for the projections to apply: each field
    decoded by its declared type (the private fields, never published, stay empty)."""
    kind = event_classes().get(public["type"])
    if kind is None:
        raise ValueError(f"unknown event type {public['type']!r}")
    hints = typing.get_type_hints(kind)
    values: dict[str, Any] = {
        "originator_id": UUID(public["aggregate_id"]),
        "originator_version": int(public["aggregate_version"]),
        "timestamp": parse_iso(public["occurred_at"]),
        "practice_id": UUID(public["practice_id"]),
        "at": parse_iso(public["occurred_at"]),
        "actor": public["actor"],
    }
    for name, value in public["data"].items():
        values[name] = decode(hints.get(name, Any), value)
    for name in PRIVATE_FIELDS & set(hints):
        # never published; a stand-in unique to the object (checksums leave it out)
        values[name] = f"unpublished:{public['aggregate_id']}"
    event = object.__new__(kind)
    for name, value in values.items():
        object.__setattr__(event, name, value)
    assert event_type(event) == public["type"]
    return event


def decode(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        return decode(options[0], value) if len(options) == 1 else value
    if hint is UUID:
        return UUID(value)
    if hint is datetime:
        return parse_iso(value)
    if hint is date:
        return date.fromisoformat(value)
    if hint is time:
        return time.fromisoformat(value)
    if origin in (list, tuple) and isinstance(value, list):
        args = typing.get_args(hint)
        items = [decode(args[0] if args else Any, v) for v in value]
        return tuple(items) if origin is tuple else items
    return value
