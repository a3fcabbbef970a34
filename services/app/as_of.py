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
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.persistence import Notification

from adapters.reads import Reads
from domain.base import PracticeAggregate
from domain.practices import Practice
from domain.schedule import local_date
from projections.base import Projection, iso
from projections.deposits import DepositRow, Deposits, list_deposits
from projections.directory import Directory
from projections.feed import practice_positions
from projections.rebuild import Scratch
from projections.receivables import ArRow, Receivables, list_ar
from projections.requests import PaymentRequestRow, PaymentRequests, list_requests
from projections.transactions import TransactionRow, Transactions, list_transactions
from services.context import Aggregates, EventLog, Reading


class Needs(Aggregates, Reading, EventLog, Protocol):
    """The parts these use cases are given (services/context.py)."""


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
    ctx: Needs, practice_id: UUID, as_of: datetime | None, stop: int | None = None
) -> Iterator[Notification]:
    """The practice's stored events that had happened by `as_of` (default: all), up to
    position `stop` (default: the end of the log), in log order, read by position: the
    event feed's (practice_id, position) index names them, and the few recorded after
    the feed's own position are read from the log's tail (those of other practices among
    them are for the caller to skip). Nothing else of the other practices is read."""
    occurred_by = iso(as_of) if as_of is not None else None
    positions, indexed_to = ctx.reads(practice_positions, practice_id, occurred_by, stop)
    for i in range(0, len(positions), CHUNK):
        yield from ctx.store.notifications_at(positions[i : i + CHUNK])
    start = indexed_to
    while stop is None or start < stop:
        tail = ctx.store.notifications_after(start, PAGE, stop)
        if not tail:
            return
        yield from tail
        start = tail[-1].id


def replay(ctx: Needs, practice_id: UUID, as_of: datetime, scratch: Scratch) -> int:
    """Apply the practice's events up to `as_of` to the scratch database's views; returns
    how many events were applied."""

    def kept(event: Any) -> bool:
        return (
            isinstance(event, PracticeAggregate.Event)
            and event.practice_id == practice_id
            and event.at <= as_of
        )

    applied = 0
    batch: list[Notification] = []
    for notification in practice_notifications(ctx, practice_id, as_of):
        batch.append(notification)
        if len(batch) >= PAGE:
            applied += apply(ctx, scratch, batch, kept)
            batch = []
    return applied + apply(ctx, scratch, batch, kept)


def apply(
    ctx: Needs, scratch: Scratch, batch: list[Notification], kept: Callable[[Any], bool]
) -> int:
    page = [(n.id, ctx.store.mapper.to_domain_event(n)) for n in batch]
    return scratch.apply(page, keep=kept)


def report_as_of(
    ctx: Needs,
    practice_id: UUID,
    view: str,
    as_of: datetime,
    date_from: str,
    date_to: str,
    limit: int,
) -> dict[str, Any]:
    practice = ctx.get(Practice, practice_id, practice_id)
    day = local_date(as_of, practice.timezone).isoformat()
    with Scratch(VIEWS[view]()) as scratch:
        applied = replay(ctx, practice_id, as_of, scratch)
        rows = read(view, scratch.reads, practice_id, date_from, date_to, limit, day)
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
    reads: Reads,
    practice_id: UUID,
    date_from: str,
    date_to: str,
    limit: int,
    day: str,
) -> list[ArRow] | list[TransactionRow] | list[DepositRow] | list[PaymentRequestRow]:
    """The view's rows as its live list reads them (Accounts receivable: every guarantor with
    a balance, by balance, as the list shows it on `day`; the date range does not apply)."""
    if view == "accounts-receivable":
        from services.app.ar_filters import parse_filter

        query, _ = parse_filter({})
        return reads(list_ar, practice_id, query, today=day, sort="-total", after=None, limit=limit)
    if view == "transactions":
        return reads(
            list_transactions,
            practice_id,
            date_from=date_from,
            date_to=date_to,
            association=None,
            patient_id=None,
            after=None,
            limit=limit,
        )
    if view == "deposits":
        return reads(
            list_deposits,
            practice_id,
            date_from=date_from,
            date_to=date_to,
            after=None,
            limit=limit,
        )
    return reads(
        list_requests,
        practice_id,
        date_from=date_from,
        date_to=date_to,
        status=None,
        patient_id=None,
        after=None,
        limit=limit,
    )
