"""The ordered event feed per practice (auditors) and each aggregate's history."""

from __future__ import annotations

import json
from hashlib import sha1
from typing import Any, TypedDict
from uuid import NAMESPACE_URL, UUID, uuid5

from adapters.sql import Database, Tx, columns_of, rows_as
from domain.base import PracticeAggregate, event_data, event_type
from projections.base import Projection, dumps, iso

#: fields that never leave the service (the feed, history, published events): a pay link's
#: token hash and nonce, and the processor's token of a card on file (a handle to charge it)
PRIVATE_FIELDS = {"token_hash", "token_nonce", "token"}


def event_id(aggregate_id: UUID, version: int) -> UUID:
    """A stable id for an event (consumers deduplicate on it)."""
    return uuid5(NAMESPACE_URL, f"payledger:event:{aggregate_id}:{version}")


_URL = NAMESPACE_URL.bytes


def event_id_text(aggregate: str, version: int) -> str:
    """`str(event_id(UUID(aggregate), version))`, without the two UUID objects (uuid5:
    the name's SHA-1 in the URL namespace, its version and variant bits set)."""
    name = f"payledger:event:{aggregate}:{version}".encode()
    digest = bytearray(sha1(_URL + name, usedforsecurity=False).digest())
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    h = digest[:16].hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_TEXTS: dict[UUID, str] = {}


def practice_text(practice_id: UUID) -> str:
    """`str(practice_id)`, kept (a few practices, many events each)."""
    found = _TEXTS.get(practice_id)
    if found is None:
        if len(_TEXTS) >= 10_000:
            _TEXTS.clear()
        found = _TEXTS[practice_id] = str(practice_id)
    return found


class EventFeed(Projection):
    name = "event_feed"
    #: a row per event of a practice's aggregate, from that event alone (projections/rebuild.py)
    per_practice = True
    tables = ("event_feed",)
    ddl = (
        """CREATE TABLE IF NOT EXISTS event_feed (
            position BIGINT PRIMARY KEY,
            practice_id TEXT NOT NULL,
            event_id TEXT NOT NULL,
            type TEXT NOT NULL,
            aggregate_id TEXT NOT NULL,
            aggregate_version BIGINT NOT NULL,
            occurred_at TEXT NOT NULL,
            actor TEXT NOT NULL,
            data TEXT NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS event_feed_practice ON event_feed (practice_id, position)",
        "CREATE INDEX IF NOT EXISTS event_feed_aggregate ON event_feed (aggregate_id, position)",
    )

    def process(self, tx: Tx, event: Any, position: int) -> None:
        if not isinstance(event, PracticeAggregate.Event):
            return
        data = event_data(event)
        practice_id = data.pop("practice_id")
        occurred_at = data.pop("at")
        actor = data.pop("actor")
        for name in PRIVATE_FIELDS:
            data.pop(name, None)
        aggregate = str(event.originator_id)
        version = event.originator_version
        tx.execute(
            "INSERT INTO event_feed (position, practice_id, event_id, type, aggregate_id, "
            "aggregate_version, occurred_at, actor, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                position,
                practice_text(practice_id) if type(practice_id) is UUID else str(practice_id),
                event_id_text(aggregate, version)
                if type(event.originator_id) is UUID
                else str(event_id(event.originator_id, version)),
                event_type(event),
                aggregate,
                version,
                iso(occurred_at),
                actor,
                dumps(data),
            ),
        )


class FeedRow(TypedDict):
    """What the feed's reads select of a row of ``event_feed``."""

    position: int
    event_id: str
    type: str
    aggregate_id: str
    occurred_at: str
    actor: str
    data: str  # JSON: the event's fields, less the private ones


class FeedItem(TypedDict):
    """One event as the feed and the histories show it."""

    position: int
    id: str
    type: str
    aggregate_id: str
    occurred_at: str
    actor: str
    data: dict[str, Any]


def feed_item(row: FeedRow) -> FeedItem:
    return {
        "position": int(row["position"]),
        "id": row["event_id"],
        "type": row["type"],
        "aggregate_id": row["aggregate_id"],
        "occurred_at": row["occurred_at"],
        "actor": row["actor"],
        "data": json.loads(row["data"]),
    }


COLUMNS = columns_of(FeedRow)


def read_feed(db: Database, practice_id: UUID, after: int, limit: int) -> list[FeedItem]:
    rows = rows_as(
        FeedRow,
        db.query(
            f"SELECT {COLUMNS} FROM event_feed WHERE practice_id = ? AND position > ? "  # noqa: S608
            "ORDER BY position LIMIT ?",
            (str(practice_id), after, limit),
        ),
    )
    return [feed_item(r) for r in rows]


def read_history(
    db: Database, practice_id: UUID, aggregate_id: UUID, after: int, limit: int
) -> list[FeedItem]:
    rows = rows_as(
        FeedRow,
        db.query(
            f"SELECT {COLUMNS} FROM event_feed WHERE practice_id = ? AND aggregate_id = ? "  # noqa: S608
            "AND position > ? ORDER BY position LIMIT ?",
            (str(practice_id), str(aggregate_id), after, limit),
        ),
    )
    return [feed_item(r) for r in rows]


def practice_positions(
    db: Database, practice_id: UUID, occurred_by: str | None, stop: int | None
) -> tuple[list[int], int]:
    """The log positions of the practice's events that had happened by `occurred_by` (an
    ISO instant; default: all), up to `stop` (default: as far as the feed has got), read
    from the feed's (practice_id, position) index; and the position the feed has got to:
    events after it are not indexed yet (the caller reads them from the log's tail)."""
    tracked = db.query_one("SELECT position FROM projection_tracking WHERE name = 'event_feed'")
    indexed_to = int(tracked["position"]) if tracked else 0
    if stop is not None:
        indexed_to = min(indexed_to, stop)
    sql = "SELECT position FROM event_feed WHERE practice_id = ? AND position <= ?"
    params: list[Any] = [str(practice_id), indexed_to]
    if occurred_by is not None:
        sql += " AND occurred_at <= ?"
        params.append(occurred_by)
    rows = db.query(sql + " ORDER BY position", params)
    return [int(r["position"]) for r in rows], indexed_to
