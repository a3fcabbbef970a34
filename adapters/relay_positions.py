"""The relays' positions: for each relay (by name), the last position of the log that its
broker acknowledged."""

from __future__ import annotations

from adapters.sql import Database


class RelayPositions:
    def __init__(self, db: Database) -> None:
        self._db = db

    def of(self, name: str) -> int:
        """The relay's position, 0 before its first acknowledgement."""
        row = self._db.query_one("SELECT position FROM relay_position WHERE name = ?", (name,))
        return int(row["position"]) if row else 0

    def remember(self, name: str, position: int) -> None:
        with self._db.transaction() as tx:
            tx.execute(
                "INSERT INTO relay_position (name, position) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET position = excluded.position",
                (name, position),
            )
