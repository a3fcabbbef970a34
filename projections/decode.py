"""Stored events decoded without the library's per-event machinery, to the very objects its
mapper makes.

eventsourcing's `Mapper.to_domain_event` resolves the topic, decodes the state with the
standard `json` module and an object hook called for every JSON object (the transcoder's
``{"_type_": name, "_data_": value}`` encodings of UUIDs, datetimes, decimals), sets the
originator's id and version, upcasts an older class version, and makes the event with
``object.__new__`` and its ``__dict__``. `Decoder` does the same steps with orjson and a
walk that looks only at the JSON objects in the state, using the transcoder's own
transcodings (a UUID or a datetime by a shortcut that gives the same value), and keeps the
topic's class and id convertor from one event to the next.

Where the stored form does not allow it (a cipher or a compressor on the mapper, a
transcoder other than the JSON one) every record goes to the mapper; a record this path
cannot decode (JSON orjson refuses, an unknown ``_type_``, anything that raises) goes to
the mapper too, which decodes it or raises its own error. tests/unit/test_decode_equivalence.py
holds the two to the same result for every event type of the domain.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, cast
from uuid import UUID

import orjson
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    Mapper,
    StoredEvent,
    UUIDAsHex,
)
from eventsourcing.persistence import find_id_convertor as _find_id_convertor
from eventsourcing.utils import resolve_topic

#: UUIDs decoded lately, by their text (a practice's id is in every one of its events);
#: forgotten when it holds more than this
UUID_CACHE = 200_000
#: orjson reads an integer beyond 64 bits as a float (json as an int): a float this large
#: sends the record to the mapper
BIG = 2.0**63

_new_object = object.__new__
_set_attribute = object.__setattr__


def _uuid_maker() -> Callable[[str], UUID]:
    known: dict[str, UUID] = {}

    def make(text: str) -> UUID:
        found = known.get(text)
        if found is None:
            assert isinstance(text, str)  # as UUIDAsHex.decode
            found = UUID(text)
            if len(known) >= UUID_CACHE:
                known.clear()
            known[text] = found
        return found

    return make


def _datetime(text: str) -> datetime:
    assert isinstance(text, str)  # as DatetimeAsISO.decode
    return datetime.fromisoformat(text)


class Decoder:
    """`decode(record)` is `mapper.to_domain_event(record)`, faster (see the module)."""

    def __init__(self, mapper: Mapper[Any]) -> None:
        self.mapper = mapper
        transcoder = mapper.transcoder
        self.fast = (
            not mapper.cipher
            and not mapper.compressor
            and type(transcoder) is JSONTranscoder  # a subclass may decode otherwise
        )
        self.transcodings: dict[str, Callable[[Any], Any]] = {}
        if self.fast:
            assert isinstance(transcoder, JSONTranscoder)
            make_uuid = _uuid_maker()
            for name, transcoding in transcoder.names.items():
                kind = type(transcoding)
                if kind is UUIDAsHex:
                    self.transcodings[name] = make_uuid
                elif kind is DatetimeAsISO:
                    self.transcodings[name] = _datetime
                elif kind is DecimalAsStr:
                    self.transcodings[name] = Decimal
                else:
                    self.transcodings[name] = transcoding.decode
        #: topic -> (class, its class version)
        self.classes: dict[str, tuple[type, int]] = {}
        #: (class, type of the stored originator id) -> id convertor
        self.convertors: dict[tuple[type, type], Callable[[Any], Any]] = {}
        self.fallbacks = 0

    def decode(self, record: StoredEvent) -> Any:
        if not self.fast:
            return self.mapper.to_domain_event(record)
        try:
            return self._decode(record)
        except Exception:
            self.fallbacks += 1
            return self.mapper.to_domain_event(record)

    def _decode(self, record: StoredEvent) -> Any:
        topic = record.topic
        known = self.classes.get(topic)
        if known is None:
            cls = resolve_topic(topic)
            known = self.classes[topic] = (cls, getattr(cls, "class_version", 1))
        cls, class_version = known
        state = orjson.loads(record.state)
        if type(state) is not dict:
            raise TypeError("the state is not a JSON object")
        transcodings = self.transcodings
        for key, value in state.items():
            kind = type(value)
            if kind is dict:
                if len(value) == 2 and "_type_" in value and "_data_" in value:
                    data = value["_data_"]
                    if type(data) is dict or type(data) is list or type(data) is float:
                        data = self._walk(data)
                    state[key] = transcodings[value["_type_"]](data)
                else:
                    state[key] = self._walk(value)
            elif kind is list:
                state[key] = self._walk(value)
            elif kind is float and not -BIG < value < BIG:
                raise ValueError("an integer beyond 64 bits, read by orjson as a float")
        if len(state) == 2 and "_type_" in state and "_data_" in state:
            raise TypeError("the state is one encoded value")  # as the mapper: it fails
        originator_id = record.originator_id
        id_type = type(originator_id)
        convertor = self.convertors.get((cls, id_type))
        if convertor is None:
            convertor = self.convertors[(cls, id_type)] = _find_id_convertor(
                cls, cast(Hashable, id_type)
            )
        state["originator_id"] = convertor(originator_id)
        state["originator_version"] = record.originator_version
        from_version = state.pop("class_version", 1)
        while from_version < class_version:
            getattr(cls, f"upcast_v{from_version}_v{from_version + 1}")(state)
            from_version += 1
        event: Any = _new_object(cls)
        _set_attribute(event, "__dict__", state)
        return event

    def _walk(self, value: Any) -> Any:
        """A JSON value with its encoded objects decoded, innermost first (as the
        transcoder's object hook)."""
        kind = type(value)
        if kind is list:
            return [self._walk(v) for v in value]
        if kind is dict:
            for key, inner in value.items():
                inner_kind = type(inner)
                if inner_kind is dict or inner_kind is list or inner_kind is float:
                    value[key] = self._walk(inner)
            if len(value) == 2 and "_type_" in value and "_data_" in value:
                return self.transcodings[value["_type_"]](value["_data_"])
            return value
        if kind is float and not -BIG < value < BIG:
            raise ValueError("an integer beyond 64 bits, read by orjson as a float")
        return value

    def page(self, records: Iterable[Any]) -> list[tuple[int, Any]]:
        """A page of notifications as (position, event)."""
        decode = self.decode
        return [(n.id, decode(n)) for n in records]


_decoders: dict[int, Decoder] = {}


def decoder(mapper: Mapper[Any]) -> Decoder:
    """The mapper's `Decoder` (one per mapper, kept)."""
    found = _decoders.get(id(mapper))
    if found is None or found.mapper is not mapper:
        found = _decoders[id(mapper)] = Decoder(mapper)
    return found


def decode_page(mapper: Mapper[Any], records: Sequence[Any]) -> list[tuple[int, Any]]:
    """A page of notifications decoded as (position, event), as the mapper would."""
    return decoder(mapper).page(records)
