"""Stripe's webhook events as received: each recorded once by its id, then applied (or
found not applicable) once, with the outcome."""

from __future__ import annotations

from dataclasses import dataclass

from adapters.sql import Database


@dataclass(frozen=True)
class ReceivedEvent:
    id: str
    type: str
    account: str | None
    payload: str


class StripeEvents:
    def __init__(self, db: Database) -> None:
        self._db = db

    def record(
        self, event_id: str, kind: str, account: str | None, created: int, at: str, payload: str
    ) -> bool:
        """Record a received event; False when its id was recorded before."""
        with self._db.transaction() as tx:
            tx.execute(
                "INSERT INTO stripe_events (id, type, account, created, received_at, payload) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                (event_id, kind, account, created, at, payload),
            )
            return tx.rowcount == 1

    def pending(self, limit: int) -> list[ReceivedEvent]:
        """The events not applied yet, oldest first."""
        rows = self._db.query(
            "SELECT id, type, account, payload FROM stripe_events WHERE applied_at IS NULL "
            "ORDER BY received_at, id LIMIT ?",
            (limit,),
        )
        return [ReceivedEvent(**row) for row in rows]

    def applied(self, event_id: str, at: str, outcome: str) -> None:
        with self._db.transaction() as tx:
            tx.execute(
                "UPDATE stripe_events SET applied_at = ?, outcome = ? WHERE id = ?",
                (at, outcome, event_id),
            )
