"""The clock port. In sandbox mode each practice has a test clock that can be advanced.

A test clock is real time plus an offset kept in the database, so it moves
with real time between advances, survives restarts and is shared by every
process of the service. Advancing one practice's clock leaves the others alone.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import UTC, datetime, timedelta
from uuid import UUID

from adapters.sql import Database

DDL = (
    """CREATE TABLE IF NOT EXISTS sandbox_clock (
        practice_id TEXT PRIMARY KEY,
        offset_seconds DOUBLE PRECISION NOT NULL
    )""",
)


class Clock(ABC):
    @abstractmethod
    def now(self, practice_id: UUID | None = None) -> datetime:
        """The current instant (UTC) as the practice sees it."""


class SystemClock(Clock):
    def now(self, practice_id: UUID | None = None) -> datetime:
        return datetime.now(UTC)


class SandboxClock(Clock):
    def __init__(self, db: Database, real: Clock | None = None) -> None:
        self._db = db
        self._real = real or SystemClock()
        db.run_ddl(DDL)

    def now(self, practice_id: UUID | None = None) -> datetime:
        real = self._real.now()
        if practice_id is None:
            return real
        return real + timedelta(seconds=self.offset(practice_id))

    def offset(self, practice_id: UUID) -> float:
        row = self._db.query_one(
            "SELECT offset_seconds FROM sandbox_clock WHERE practice_id = ?", (str(practice_id),)
        )
        return float(row["offset_seconds"]) if row else 0.0

    def advance(self, practice_id: UUID, seconds: float) -> datetime:
        """Move the practice's clock forward; the clock never goes back."""
        if seconds < 0:
            raise ValueError("the sandbox clock only moves forward")
        with self._db.transaction() as tx:
            tx.execute(
                "INSERT INTO sandbox_clock (practice_id, offset_seconds) VALUES (?, ?) "
                "ON CONFLICT (practice_id) DO UPDATE "
                "SET offset_seconds = sandbox_clock.offset_seconds + excluded.offset_seconds",
                (str(practice_id), seconds),
            )
        return self.now(practice_id)

    def set_offset(self, practice_id: UUID, seconds: float) -> None:
        """Start a practice's clock at an offset (used to seed demo history)."""
        with self._db.transaction() as tx:
            tx.execute(
                "INSERT INTO sandbox_clock (practice_id, offset_seconds) VALUES (?, ?) "
                "ON CONFLICT (practice_id) DO UPDATE SET offset_seconds = excluded.offset_seconds",
                (str(practice_id), seconds),
            )
