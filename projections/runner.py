"""Runs projections over the event store's ordered notification log.

Each projection has its own row in ``projection_tracking``. A catch-up reads
a page of notifications, and for each projection behind it applies the
events and moves the position in one transaction: the position moves by
compare-and-set first, so two processes catching up at once never apply an
event twice (the loser rolls back and reads again).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import OperationalError

from adapters.sql import Database, Tx
from adapters.store import EventStore
from projections.base import Projection

TRACKING_DDL = (
    """CREATE TABLE IF NOT EXISTS projection_tracking (
        name TEXT PRIMARY KEY,
        position BIGINT NOT NULL,
        schema TEXT NOT NULL DEFAULT ''
    )""",
)

PAGE = 500

log = logging.getLogger("payledger.projections")


def schema_hash(projection: Projection) -> str:
    text = "\n".join((f"version {projection.version}", *projection.ddl))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class PositionMoved(Exception):
    """Another process applied this page first."""


class Projector:
    def __init__(self, store: EventStore, db: Database, projections: Sequence[Projection]) -> None:
        self.store = store
        self.db = db
        self.projections = list(projections)
        self._lock = threading.Lock()
        db.run_ddl(TRACKING_DDL)
        for projection in self.projections:
            self.create(projection)

    def create(self, projection: Projection) -> None:
        """Create the projection's tables; when their definition changed, start it afresh."""
        schema = schema_hash(projection)
        existing = self.db.query_one(
            "SELECT schema FROM projection_tracking WHERE name = ?", (projection.name,)
        )
        if existing is not None and existing["schema"] == schema:
            return  # no DDL: it would lock tables other processes are writing
        with self.db.transaction() as tx:
            row = tx.one(
                "SELECT schema FROM projection_tracking WHERE name = ?", (projection.name,)
            )
            if row is not None and row["schema"] != schema:
                log.info("projection %s changed its tables: rebuilding it", projection.name)
                self._drop(tx, projection)
            for statement in projection.ddl:
                tx.execute(statement)
            tx.execute(
                "INSERT INTO projection_tracking (name, position, schema) VALUES (?, 0, ?) "
                "ON CONFLICT (name) DO NOTHING",
                (projection.name, schema),
            )

    @staticmethod
    def _drop(tx: Tx, projection: Projection) -> None:
        for table in projection.tables:
            tx.execute(f"DROP TABLE IF EXISTS {table}")
        tx.execute("DELETE FROM projection_tracking WHERE name = ?", (projection.name,))

    def position(self, name: str) -> int:
        return self.positions().get(name, 0)

    def positions(self) -> dict[str, int]:
        rows = self.db.query("SELECT name, position FROM projection_tracking")
        return {str(r["name"]): int(r["position"]) for r in rows}

    def catch_up(self) -> int:
        """Apply every recorded event to every projection; returns the last position."""
        with self._lock:
            while True:
                stored = self.positions()
                positions = {p.name: stored.get(p.name, 0) for p in self.projections}
                start = min(positions.values(), default=0)
                notifications = self.store.recorder.select_notifications(
                    start=start, limit=PAGE, inclusive_of_start=False
                )
                if not notifications:
                    return start
                events = [(n.id, self.store.mapper.to_domain_event(n)) for n in notifications]
                self._apply(positions, events)

    def _apply(self, positions: dict[str, int], events: list[tuple[int, Any]]) -> None:
        """One transaction for the page: each projection's rows and its position."""
        try:
            with self.db.transaction() as tx:
                for projection in self.projections:
                    old = positions[projection.name]
                    behind = [(pos, e) for pos, e in events if pos > old]
                    if not behind:
                        continue
                    self._move(tx, projection.name, old, behind[-1][0])
                    for position, event in behind:
                        projection.process(tx, event, position)
        except PositionMoved:
            return  # another process got there first; the next loop reads again
        except OperationalError as error:
            if "deadlock" not in str(error):
                raise
            log.info("projection catch-up deadlocked with another process; reading again")

    @staticmethod
    def _move(tx: Tx, name: str, old: int, new: int) -> None:
        tx.execute(
            "UPDATE projection_tracking SET position = ? WHERE name = ? AND position = ?",
            (new, name, old),
        )
        if tx.rowcount != 1:
            raise PositionMoved(name)

    def rebuild(self, name: str) -> None:
        """Drop one projection's tables and position and replay it from position 0."""
        projection = next(p for p in self.projections if p.name == name)
        with self._lock, self.db.transaction() as tx:
            self._drop(tx, projection)
        self.create(projection)
        self.catch_up()
