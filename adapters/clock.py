"""The clock port. In sandbox mode each practice has a test clock that can be advanced.

A test clock is real time plus an offset kept in the database, so it moves
with real time between advances, survives restarts and is shared by every
process of the service. Advancing one practice's clock leaves the others alone.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from adapters.sql import Database, dialect_sql

OFFSET = "SELECT offset_seconds FROM sandbox_clock WHERE practice_id = ?"
#: how far a test clock may run ahead of real time: ten years (dates stay sane)
MAX_OFFSET_SECONDS = 10 * 366 * 86400


def iso(instant: datetime) -> str:
    """A time as stored (TEXT): UTC ISO 8601 with microseconds and a Z, so that text order
    is time order."""
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def now_text(at: datetime | None = None) -> str:
    """The real time now (or ``at``), as stored."""
    return iso(at or datetime.now(UTC))


class ClockOutOfRange(ValueError):
    """An advance would take a test clock more than MAX_OFFSET_SECONDS ahead."""


class Clock(ABC):
    @abstractmethod
    def now(self, practice_id: UUID | None = None) -> datetime:
        """The current instant (UTC) as the practice sees it."""

    @contextmanager
    def held(self) -> Iterator[None]:
        """A block of work (a bulk command) that reads the time many times: a test clock
        reads each practice's offset once in it instead of at every `now`."""
        yield


class SystemClock(Clock):
    def now(self, practice_id: UUID | None = None) -> datetime:
        return datetime.now(UTC)


#: the offsets read in the current `held` block (None outside one)
_held: ContextVar[dict[UUID, float] | None] = ContextVar("sandbox_offsets", default=None)


class SandboxClock(Clock):
    def __init__(self, db: Database, real: Clock | None = None) -> None:
        self._db = db
        self._real = real or SystemClock()

    @contextmanager
    def held(self) -> Iterator[None]:
        if _held.get() is not None:
            yield  # nested: the outer block keeps the offsets
            return
        token = _held.set({})
        try:
            yield
        finally:
            _held.reset(token)

    def now(self, practice_id: UUID | None = None) -> datetime:
        real = self._real.now()
        if practice_id is None:
            return real
        return real + timedelta(seconds=self.offset(practice_id))

    def offset(self, practice_id: UUID) -> float:
        """The practice's offset (one stored out of range, by an older version, is capped);
        inside a `held` block, read once per practice."""
        held = _held.get()
        if held is not None and practice_id in held:
            return held[practice_id]
        row = self._read(practice_id)
        found = min(float(row["offset_seconds"]), MAX_OFFSET_SECONDS) if row else 0.0
        if held is not None:
            held[practice_id] = found
        return found

    def _read(self, practice_id: UUID) -> dict[str, Any] | None:
        """The stored offset. On PostgreSQL one statement outside a transaction (it is its
        own snapshot): one round trip instead of three (BEGIN, SELECT, ROLLBACK)."""
        if not self._db.postgres:
            return self._db.query_one(OFFSET, (str(practice_id),))
        with self._db._datastore.cursor() as cursor:  # the pool's connections autocommit
            cursor.execute(dialect_sql(OFFSET, postgres=True), (str(practice_id),))
            row: dict[str, Any] | None = cursor.fetchone()
            return row

    @staticmethod
    def _forget(practice_id: UUID) -> None:
        held = _held.get()
        if held is not None:
            held.pop(practice_id, None)

    def advance(self, practice_id: UUID, seconds: float) -> datetime:
        """Move the practice's clock forward; the clock never goes back, and never more
        than MAX_OFFSET_SECONDS ahead of real time (checked in the same statement)."""
        if seconds < 0:
            raise ValueError("the sandbox clock only moves forward")
        if seconds > MAX_OFFSET_SECONDS:
            raise ClockOutOfRange(too_far())
        with self._db.transaction() as tx:
            tx.execute(
                "INSERT INTO sandbox_clock (practice_id, offset_seconds) VALUES (?, ?) "
                "ON CONFLICT (practice_id) DO UPDATE "
                "SET offset_seconds = sandbox_clock.offset_seconds + excluded.offset_seconds "
                "WHERE sandbox_clock.offset_seconds + excluded.offset_seconds <= ?",
                (str(practice_id), seconds, MAX_OFFSET_SECONDS),
            )
            if tx.rowcount != 1:
                raise ClockOutOfRange(too_far())
        self._forget(practice_id)
        return self.now(practice_id)

    def set_offset(self, practice_id: UUID, seconds: float) -> None:
        """Start a practice's clock at an offset (used to seed demo history)."""
        with self._db.transaction() as tx:
            tx.execute(
                "INSERT INTO sandbox_clock (practice_id, offset_seconds) VALUES (?, ?) "
                "ON CONFLICT (practice_id) DO UPDATE SET offset_seconds = excluded.offset_seconds",
                (str(practice_id), seconds),
            )
        self._forget(practice_id)


def too_far() -> str:
    return (
        f"the test clock runs at most {MAX_OFFSET_SECONDS // (366 * 86400)} years ahead of "
        "real time; nothing was changed"
    )
