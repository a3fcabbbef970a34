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
from uuid import UUID, uuid5

from adapters.changes import AggregateCache
from adapters.persistence import CHANGED_CHANNEL
from adapters.sql import Database, Tx

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
    """Each practice's offset is read from the database, or from `cache` (adapters/
    changes.py) when given: a change of an offset notifies every process, as the cached
    aggregates' changes do."""

    def __init__(
        self, db: Database, real: Clock | None = None, cache: AggregateCache | None = None
    ) -> None:
        self._db = db
        self._real = real or SystemClock()
        self._cache = cache

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
        if self._cache is not None:
            found = self._cache.get(
                offset_key(practice_id), lambda: self._stored(practice_id), lambda _: True
            )
        else:
            found = self._stored(practice_id)
        if held is not None:
            held[practice_id] = found
        return found

    def _stored(self, practice_id: UUID) -> float:
        """The stored offset (one statement, its own snapshot, on the read pool)."""
        row = self._db.query_one(OFFSET, (str(practice_id),))
        return min(float(row["offset_seconds"]), MAX_OFFSET_SECONDS) if row else 0.0

    def _forget(self, practice_id: UUID) -> None:
        held = _held.get()
        if held is not None:
            held.pop(practice_id, None)
        if self._cache is not None:
            self._cache.evict([offset_key(practice_id)])

    def _tell_others(self, tx: Tx, practice_id: UUID) -> None:
        """Other processes forget the offset when this transaction commits."""
        if self._db.postgres and self._cache is not None:
            tx.execute("SELECT pg_notify(?, ?)", (CHANGED_CHANNEL, str(offset_key(practice_id))))

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
            self._tell_others(tx, practice_id)
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
            self._tell_others(tx, practice_id)
        self._forget(practice_id)


def offset_key(practice_id: UUID) -> UUID:
    """The cache's key of a practice's offset (not the practice's own id)."""
    return uuid5(practice_id, "sandbox-clock-offset")


def too_far() -> str:
    return (
        f"the test clock runs at most {MAX_OFFSET_SECONDS // (366 * 86400)} years ahead of "
        "real time; nothing was changed"
    )
