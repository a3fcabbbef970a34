"""Verified replay: rebuild the views from the event log and prove they say what the events say.

A view's **checksum** is a SHA-256 over its rows in a canonical order: each table of the
view in name order, each row as canonical JSON (keys sorted, integers as integers, text as
text; the columns holding a secret's hash, which is never published, left out), the rows
sorted by that text. It does not depend on the backend (SQLite or
PostgreSQL), on the order rows were written, or on the database's collation, so the same
events give the same checksum wherever they are replayed.

- `rebuild`: replay the whole log through the views' own handlers into fresh tables in
  memory, then replace the live tables with them and move the tracking positions in one
  transaction (COPY on PostgreSQL; projections/rebuild.py). A running service catching up
  at the same time waits for that transaction, then goes on from the installed position,
  so no event is applied twice or missed.
- `verify`: replay the log, up to the position the live views are at, into fresh tables in
  an in-memory SQLite database beside the live ones, which are only read; compare row by row.

Only the read models are replayed (`all_projections`); the writeback intake has effects
outside the database and is never replayed here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from uuid import UUID

from adapters.sql import Database, Tx
from adapters.store import EventStore
from projections import rebuild as bulk
from projections.base import Projection
from projections.feed import PRIVATE_FIELDS
from projections.runner import Projector

PAGE = bulk.PAGE

#: rows of a practice in the tables that have no practice_id column of their own
SCOPES: dict[str, str] = {
    "practices": "id = ?",
    "deposit_items": "deposit_id IN (SELECT id FROM deposits WHERE practice_id = ?)",
    "deposit_sources": "id IN (SELECT id FROM transactions WHERE practice_id = ?)",
    "deposit_patients": "id IN (SELECT id FROM patients WHERE practice_id = ?)",
    "transaction_patients": "id IN (SELECT id FROM patients WHERE practice_id = ?)",
    "request_patients": "id IN (SELECT id FROM patients WHERE practice_id = ?)",
    "ledger_queue_patients": "id IN (SELECT id FROM patients WHERE practice_id = ?)",
}

#: (position reached, last position) after each page
Progress = bulk.Progress


def canonical(value: Any) -> Any:
    """One spelling of a column's value, whichever database returned it."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, UUID):
        return str(value)
    return value


def row_text(row: dict[str, Any]) -> str:
    """A row as canonical JSON, without the columns that hold secrets' hashes (a pay link's
    token hash): they are never published, so a checksum anyone can recompute from the
    public events leaves them out."""
    return json.dumps(
        {k: canonical(v) for k, v in row.items() if k not in PRIVATE_FIELDS},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )


def table_rows(tx: Tx, table: str, practice_id: UUID | None = None) -> list[str]:
    """The table's rows (of one practice, or all), canonical and sorted."""
    return sorted(row_text(r) for r in select_rows(tx, table, practice_id))


def select_rows(tx: Tx, table: str, practice_id: UUID | None = None) -> list[dict[str, Any]]:
    """The table's rows (of one practice, or all) as the database gives them. Table names
    come from the projections' own definitions, never from a request."""
    if practice_id is None:
        return tx.execute(f"SELECT * FROM {table}")  # noqa: S608
    where = SCOPES.get(table, "practice_id = ?")
    sql = f"SELECT * FROM {table} WHERE {where}"  # noqa: S608
    return tx.execute(sql, (str(practice_id),))


@dataclass
class ViewRows:
    """A view's rows, table by table, and its checksum."""

    name: str
    tables: dict[str, list[str]] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return sum(len(rows) for rows in self.tables.values())

    @property
    def checksum(self) -> str:
        digest = hashlib.sha256()
        for table in sorted(self.tables):
            digest.update(f"table {table}\n".encode())
            for line in self.tables[table]:
                digest.update(line.encode())
                digest.update(b"\n")
        return digest.hexdigest()


def view_rows(tx: Tx, projection: Projection, practice_id: UUID | None = None) -> ViewRows:
    return ViewRows(projection.name, {t: table_rows(tx, t, practice_id) for t in projection.tables})


def read_view(db: Database, projection: Projection, practice_id: UUID | None = None) -> ViewRows:
    """A live view's rows, each table read in its own short transaction and put in canonical
    form after it (PostgreSQL ends a transaction left idle for long: eventsourcing's
    idle-in-transaction timeout). A view's rows change only together with its position,
    so the callers read the positions before and after and read again when they moved."""
    tables = {}
    for table in projection.tables:
        with db.reading() as tx:
            rows = select_rows(tx, table, practice_id)
        tables[table] = sorted(row_text(r) for r in rows)
    return ViewRows(projection.name, tables)


def positions(db: Database) -> dict[str, int]:
    rows = db.query("SELECT name, position FROM projection_tracking")
    return {str(r["name"]): int(r["position"]) for r in rows}


def live_checksums(
    db: Database, projections: Sequence[Projection], practice_id: UUID | None = None
) -> dict[str, dict[str, Any]]:
    """Each view's checksum, row count and the position it is at (the read is repeated
    when a view moved while it was read). Right after a rebuild on PostgreSQL, those the
    rebuild computed from the rows it copied in (`bulk.installed_checksums`: the same
    rows, when no view moved since)."""
    if practice_id is None:
        installed = bulk.installed_checksums(db, projections)
        if installed is not None:
            return installed
    while True:
        before = positions(db)
        # one view's rows at a time: only their checksum and count are kept
        views = {p.name: summary(read_view(db, p, practice_id)) for p in projections}
        if positions(db) == before:
            break
    return {name: {**v, "position": before.get(name, 0)} for name, v in views.items()}


def summary(view: ViewRows) -> dict[str, Any]:
    return {"checksum": view.checksum, "rows": view.count}


def last_position(store: EventStore) -> int:
    return bulk.last_position(store)


def pages(store: EventStore, start: int, stop: int) -> Iterable[list[tuple[int, Any]]]:
    """The log's decoded events after `start` up to `stop`, a page at a time."""
    return bulk.pages(store, start, stop)


# -- rebuilding in place ------------------------------------------------------------------


def rebuild(
    store: EventStore,
    db: Database,
    projector: Projector,
    projections: Sequence[Projection],
    progress: Progress | None = None,
) -> dict[str, int]:
    """Replay the whole log into fresh tables and put them in place of the views; their
    positions."""
    projector.install(last_position(store), projections, progress)
    final = positions(db)
    return {p.name: final.get(p.name, 0) for p in projections}


# -- verifying beside the live views ------------------------------------------------------


@dataclass
class Difference:
    view: str
    table: str
    side: str  # "live" (the row is only in the live view) or "replay"
    row: str


@dataclass
class Verification:
    live: dict[str, dict[str, Any]]
    replayed: dict[str, str]
    differences: list[Difference]

    @property
    def ok(self) -> bool:
        return not self.differences and all(
            self.live[name]["checksum"] == checksum for name, checksum in self.replayed.items()
        )


def replay_into(
    store: EventStore,
    scratch: Database,
    projections: Sequence[Projection],
    until: dict[str, int],
    progress: Progress | None = None,
    keep: Callable[[Any], bool] | None = None,
) -> None:
    """Replay the log into fresh tables in `scratch`, each view up to its position in
    `until`; `keep` picks the events to apply (default: all)."""
    with scratch.transaction() as tx:
        for projection in projections:
            for statement in projection.ddl:
                tx.execute(statement)
    stop = max(until.values(), default=0)
    for page in pages(store, 0, stop):
        with scratch.transaction() as tx:
            for position, event in page:
                if keep is not None and not keep(event):
                    continue
                for projection in projections:
                    if position <= until[projection.name]:
                        projection.process(tx, event, position)
        if progress:
            progress(page[-1][0], stop)


def replay_in_memory(
    store: EventStore,
    projections: Sequence[Projection],
    until: dict[str, int],
    progress: Progress | None = None,
) -> dict[str, ViewRows]:
    """The views replayed up to their positions in `until` in an in-memory database: their
    rows."""
    stop = max(until.values(), default=0)
    with bulk.Scratch(projections) as scratch:
        for page in pages(store, 0, stop):
            scratch.apply(page, until)
            if progress:
                progress(page[-1][0], stop)
        with scratch.db.reading() as tx:
            return {p.name: view_rows(tx, p) for p in projections}


def verify(
    store: EventStore,
    db: Database,
    projections: Sequence[Projection],
    progress: Progress | None = None,
) -> Verification:
    """Replay beside the live views (read only) and report every row that differs."""
    while True:
        before = positions(db)
        live = {p.name: read_view(db, p) for p in projections}
        if positions(db) == before:
            break
    until = {p.name: before.get(p.name, 0) for p in projections}
    replayed = replay_in_memory(store, projections, until, progress)
    differences = [d for p in projections for d in compare(p.name, live[p.name], replayed[p.name])]
    return Verification(
        live={
            name: {"checksum": v.checksum, "rows": v.count, "position": until[name]}
            for name, v in live.items()
        },
        replayed={name: v.checksum for name, v in replayed.items()},
        differences=differences,
    )


def compare(view: str, live: ViewRows, replayed: ViewRows) -> list[Difference]:
    found: list[Difference] = []
    for table in sorted(set(live.tables) | set(replayed.tables)):
        mine, theirs = _counts(live.tables.get(table, [])), _counts(replayed.tables.get(table, []))
        for row in sorted(set(mine) | set(theirs)):
            extra = mine.get(row, 0) - theirs.get(row, 0)
            side = "live" if extra > 0 else "replay"
            found.extend(Difference(view, table, side, row) for _ in range(abs(extra)))
    return found


def _counts(rows: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in rows:
        counts[row] = counts.get(row, 0) + 1
    return counts


def scratch_checksums(
    scratch: bulk.Scratch, projections: Sequence[Projection], practice_id: UUID | None = None
) -> dict[str, str]:
    """Each view's checksum over its rows (of one practice, or all) in a scratch database."""
    with scratch.db.reading() as tx:
        return {p.name: view_rows(tx, p, practice_id).checksum for p in projections}


class ViewTables:
    """The live views' tables taken as a whole, for the auditors' tools and `payledger
    replay`: their checksums, a verified replay beside them, a rebuild in their place. The
    use cases and the command line hold this, never the database under it."""

    def __init__(self, store: EventStore, projector: Projector) -> None:
        self._store, self._projector = store, projector

    def checksums(
        self, projections: Sequence[Projection], practice_id: UUID | None = None
    ) -> dict[str, dict[str, Any]]:
        return live_checksums(self._store.database(), projections, practice_id)

    def verify(
        self, projections: Sequence[Projection], progress: Progress | None = None
    ) -> Verification:
        return verify(self._store, self._store.database(), projections, progress)

    def rebuild(
        self, projections: Sequence[Projection], progress: Progress | None = None
    ) -> dict[str, int]:
        return rebuild(self._store, self._store.database(), self._projector, projections, progress)

    def last_position(self) -> int:
        return last_position(self._store)
