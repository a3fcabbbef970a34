"""Values as events and views store them in JSON: times in one text (adapters.clock's),
identifiers as text, dates as ISO dates."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

from adapters.clock import iso as clock_iso  # times are stored in one format, defined there


def iso(instant: datetime) -> str:
    """A time as stored: `adapters.clock.iso`, the same text, sooner for a UTC time (every
    time an event holds; tests/unit/test_decode_equivalence.py holds the two together)."""
    if instant.tzinfo is UTC and instant.year >= 1000:
        return instant.isoformat(timespec="microseconds")[:-6] + "Z"
    return clock_iso(instant)


def jsonable(value: Any) -> Any:
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
