"""A projection: tables, one handler per event type, and a tracking position."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, ClassVar

import orjson

from adapters.encoding import iso as iso  # the views use these names from here too
from adapters.encoding import jsonable as jsonable
from adapters.encoding import parse_iso as parse_iso
from adapters.sql import Tx

Handler = Callable[[Any, Tx, Any, int], None]


class Projection:
    """Subclasses name their tables and register handlers with @handles."""

    name: ClassVar[str]
    #: bump when the handlers change what they write: the projection then rebuilds itself
    version: ClassVar[int] = 1
    #: what the runner serves: "view" (display), "work" (what is due), "intake" (writeback)
    role: ClassVar[str] = "view"
    tables: ClassVar[tuple[str, ...]]
    ddl: ClassVar[tuple[str, ...]]
    _handlers: ClassVar[dict[type, Handler]]

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        cls._handlers = {}
        for attr in vars(cls).values():
            for event_class in getattr(attr, "_handles", ()):
                cls._handlers[event_class] = attr

    def process(self, tx: Tx, event: Any, position: int) -> None:
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(self, tx, event, position)


def page_memo(tx: Tx) -> dict[Any, Any] | None:
    """Values the handlers of one page keep for the rest of its transaction (on PostgreSQL,
    where each read is a round trip), or None: a handler that writes what it keeps there
    forgets it. Gone with the transaction, so never stale across pages or processes."""
    memo: dict[Any, Any] | None = getattr(tx, "memo", None)
    return memo


def remembered(tx: Tx, key: Any, load: Callable[[], Any]) -> Any:
    """`load()`, kept for the rest of the page where its transaction keeps values."""
    memo = page_memo(tx)
    if memo is None:
        return load()
    if key not in memo:
        memo[key] = load()
    return memo[key]


def forget(tx: Tx, key: Any) -> None:
    """A handler that writes what is kept under `key` forgets it."""
    memo = page_memo(tx)
    if memo is not None:
        memo.pop(key, None)


def handles(*event_classes: type) -> Callable[[Handler], Handler]:
    def mark(function: Handler) -> Handler:
        function._handles = event_classes  # type: ignore[attr-defined]
        return function

    return mark


_ENCODER = json.JSONEncoder(separators=(",", ":"), sort_keys=True)


def dumps(value: Any) -> str:
    """`json.dumps(jsonable(value), separators=(",", ":"), sort_keys=True)`: by orjson
    where that is the same text (no float, every integer within 64 bits, all ASCII but
    DEL, text keys), else by `json`."""
    plain = _plain(value)
    if plain is not _NOT_PLAIN:
        try:
            text = orjson.dumps(plain, option=orjson.OPT_SORT_KEYS)
        except TypeError:  # an integer beyond 64 bits
            pass
        else:
            if text.isascii() and b"\x7f" not in text:  # `json` escapes DEL and beyond
                return text.decode()
    return _ENCODER.encode(jsonable(value))


_NOT_PLAIN = object()


def _plain(value: Any) -> Any:
    """`jsonable(value)`, or `_NOT_PLAIN` where it holds a float (orjson spells some
    floats otherwise) or a key that is not text."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is dict:
        out = {}
        for k, v in value.items():
            if type(k) is not str:
                return _NOT_PLAIN
            item = _plain(v)
            if item is _NOT_PLAIN:
                return _NOT_PLAIN
            out[k] = item
        return out
    if kind is list or kind is tuple:
        items = [_plain(v) for v in value]
        return _NOT_PLAIN if any(v is _NOT_PLAIN for v in items) else items
    if isinstance(value, float):
        return _NOT_PLAIN
    if isinstance(value, dict | list | tuple | str | int):  # a subclass: as `jsonable`
        return _NOT_PLAIN
    return jsonable(value)
