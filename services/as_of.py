"""Reports as they stood at a past instant: the views replayed up to then, for one practice.

The practice's events that had happened by the instant (by their `at`, the
practice's clock) are replayed through fresh copies of the projections into a
scratch SQLite database, and the report is read from there with the same
queries as the live view. History is never edited, so the answer for a past
instant never changes.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.sqlite import SQLiteDatastore

from adapters.sql import Database
from domain.base import LedgerAggregate
from projections.base import Projection
from projections.deposits import Deposits, list_deposits
from projections.directory import Directory
from projections.requests import PaymentRequests, list_requests
from projections.transactions import Transactions, list_transactions
from services.context import Ledger

PAGE = 1000
VIEWS: dict[str, Callable[[], list[Projection]]] = {
    "transactions": lambda: [Directory(), Transactions()],
    "deposits": lambda: [Directory(), Deposits()],
    "payment-requests": lambda: [Directory(), PaymentRequests()],
}


def replay(
    ledger: Ledger,
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
    applied, start = 0, 0
    while True:
        notifications = ledger.store.recorder.select_notifications(
            start=start, limit=PAGE, inclusive_of_start=False
        )
        if not notifications:
            return applied
        with scratch.transaction() as tx:
            for n in notifications:
                event = ledger.store.mapper.to_domain_event(n)
                if (
                    isinstance(event, LedgerAggregate.Event)
                    and event.practice_id == practice_id
                    and event.at <= as_of
                ):
                    for projection in projections:
                        projection.process(tx, event, n.id)
                    applied += 1
        start = notifications[-1].id


def report_as_of(
    ledger: Ledger,
    practice_id: UUID,
    view: str,
    as_of: datetime,
    date_from: str,
    date_to: str,
    limit: int,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        datastore = SQLiteDatastore(str(Path(folder) / "as-of.sqlite3"))
        try:
            scratch = Database(datastore, postgres=False)
            applied = replay(ledger, practice_id, VIEWS[view](), as_of, scratch)
            rows = read(view, scratch, practice_id, date_from, date_to, limit)
        finally:
            datastore.close()
    return {
        "view": view,
        "as_of": as_of.isoformat(),
        "events_applied": applied,
        "from": date_from,
        "to": date_to,
        "items": rows,
    }


def read(
    view: str, db: Database, practice_id: UUID, date_from: str, date_to: str, limit: int
) -> list[dict[str, Any]]:
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
