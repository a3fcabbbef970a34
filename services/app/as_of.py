"""Reports as they stood at a past instant: the views replayed up to then, for one practice.

The practice's events that had happened by the instant (by their `at`, the
practice's clock) are replayed through fresh copies of the projections into an
in-memory SQLite database (projections/rebuild.py), and the report is read from there with the same
queries as the live view. Only the practice's own events are read: the event
feed's index on (practice_id, position) names their positions, and the stored
events are fetched by position (the few recorded after the feed's position are
read from the log's tail), so the time grows with the practice's history, not
with the store's. History is never edited, so the answer for a past
instant never changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification

from adapters.sql import Database
from domain.base import LedgerAggregate
from domain.practices import Practice
from domain.schedule import local_date
from projections.base import Projection, iso
from projections.deposits import DepositRow, Deposits, list_deposits
from projections.directory import Directory
from projections.rebuild import Scratch
from projections.receivables import ArRow, Receivables, list_ar
from projections.requests import PaymentRequestRow, PaymentRequests, list_requests
from projections.transactions import TransactionRow, Transactions, list_transactions
from services.context import Components

PAGE = 1000
#: positions fetched in one statement
CHUNK = 500
VIEWS: dict[str, Callable[[], list[Projection]]] = {
    "transactions": lambda: [Directory(), Transactions()],
    "deposits": lambda: [Directory(), Deposits()],
    "payment-requests": lambda: [Directory(), PaymentRequests()],
    "accounts-receivable": lambda: [Directory(), Receivables()],
}


def practice_notifications(
    ctx: Components, practice_id: UUID, as_of: datetime | None, stop: int | None = None
) -> Iterator[Notification]:
    """The practice's stored events that had happened by `as_of` (default: all), up to
    position `stop` (default: the end of the log), in log order, read by position: the
    event feed's (practice_id, position) index names them, and the few recorded after
    the feed's own position are read from the log's tail (those of other practices among
    them are for the caller to skip). Nothing else of the other practices is read."""
    db = ctx.db
    tracked = db.query_one("SELECT position FROM projection_tracking WHERE name = 'event_feed'")
    indexed_to = int(tracked["position"]) if tracked else 0
    if stop is not None:
        indexed_to = min(indexed_to, stop)
    sql = "SELECT position FROM event_feed WHERE practice_id = ? AND position <= ?"
    params: list[Any] = [str(practice_id), indexed_to]
    if as_of is not None:
        sql += " AND occurred_at <= ?"
        params.append(iso(as_of))
    rows = db.query(sql + " ORDER BY position", params)
    positions = [int(r["position"]) for r in rows]
    for i in range(0, len(positions), CHUNK):
        yield from stored_events(ctx, positions[i : i + CHUNK])
    start = indexed_to
    while stop is None or start < stop:
        tail = ctx.store.recorder.select_notifications(
            start=start, limit=PAGE, stop=stop, inclusive_of_start=False
        )
        if not tail:
            return
        yield from tail
        start = tail[-1].id


def stored_events(ctx: Components, positions: list[int]) -> list[Notification]:
    """The stored events at these positions, in order, as the recorder would give them."""
    recorder: Any = ctx.store.recorder
    marks = ", ".join("?" for _ in positions)
    if ctx.db.postgres:
        table = f'"{recorder.datastore.schema}"."{recorder.events_table_name}"'
        key = "notification_id"
    else:
        table, key = recorder.events_table_name, "rowid"
    rows = ctx.db.query(
        f"SELECT {key} AS position, originator_id, originator_version, topic, state "  # noqa: S608 (the recorder's own table)
        f"FROM {table} WHERE {key} IN ({marks}) ORDER BY {key}",
        positions,
    )
    return [
        Notification(
            id=int(r["position"]),
            originator_id=r["originator_id"]
            if isinstance(r["originator_id"], UUID)
            else recorder.convert_originator_id(r["originator_id"]),
            originator_version=int(r["originator_version"]),
            topic=r["topic"],
            state=bytes(r["state"]),
        )
        for r in rows
    ]


def replay(
    ctx: Components,
    practice_id: UUID,
    projections: list[Projection],
    as_of: datetime,
    scratch: Database,
) -> int:
    """Apply the practice's events up to `as_of` to `projections` in `scratch`; returns how
    many events were applied."""
    with scratch.transaction() as tx:
        for projection in projections:
            for statement in projection.ddl:
                tx.execute(statement)
    applied = 0
    batch: list[Notification] = []
    for notification in practice_notifications(ctx, practice_id, as_of):
        batch.append(notification)
        if len(batch) >= PAGE:
            applied += apply(ctx, practice_id, projections, as_of, scratch, batch)
            batch = []
    return applied + apply(ctx, practice_id, projections, as_of, scratch, batch)


def apply(
    ctx: Components,
    practice_id: UUID,
    projections: list[Projection],
    as_of: datetime,
    scratch: Database,
    batch: list[Notification],
) -> int:
    applied = 0
    with scratch.transaction() as tx:
        for n in batch:
            event = ctx.store.mapper.to_domain_event(n)
            if (
                isinstance(event, LedgerAggregate.Event)
                and event.practice_id == practice_id
                and event.at <= as_of
            ):
                for projection in projections:
                    projection.process(tx, event, n.id)
                applied += 1
    return applied


def report_as_of(
    ctx: Components,
    practice_id: UUID,
    view: str,
    as_of: datetime,
    date_from: str,
    date_to: str,
    limit: int,
) -> dict[str, Any]:
    practice = ctx.get(Practice, practice_id, practice_id)
    day = local_date(as_of, practice.timezone).isoformat()
    with Scratch() as scratch:
        applied = replay(ctx, practice_id, VIEWS[view](), as_of, scratch.db)
        rows = read(view, scratch.db, practice_id, date_from, date_to, limit, day)
    return {
        "view": view,
        "as_of": as_of.isoformat(),
        "events_applied": applied,
        "from": date_from,
        "to": date_to,
        "day": day,
        "items": rows,
    }


def read(
    view: str,
    db: Database,
    practice_id: UUID,
    date_from: str,
    date_to: str,
    limit: int,
    day: str,
) -> list[ArRow] | list[TransactionRow] | list[DepositRow] | list[PaymentRequestRow]:
    """The view's rows as its live list reads them (Accounts receivable: every guarantor with
    a balance, by balance, as the list shows it on `day`; the date range does not apply)."""
    if view == "accounts-receivable":
        from services.app.receivables import parse_filter

        query, _ = parse_filter({})
        return list_ar(db, practice_id, query, today=day, sort="-total", after=None, limit=limit)
    if view == "transactions":
        return list_transactions(
            db,
            practice_id,
            date_from=date_from,
            date_to=date_to,
            association=None,
            patient_id=None,
            after=None,
            limit=limit,
        )
    if view == "deposits":
        return list_deposits(
            db, practice_id, date_from=date_from, date_to=date_to, after=None, limit=limit
        )
    return list_requests(
        db,
        practice_id,
        date_from=date_from,
        date_to=date_to,
        status=None,
        patient_id=None,
        after=None,
        limit=limit,
    )
