"""Rebuilding views in bulk: the live handlers applied in memory, the finished tables
copied into the database at once.

Applying the handlers to the live database costs a round trip per SQL statement (about
ten per event). A rebuild instead applies the very same handlers (`Projection.process`,
no second implementation of any view's rules) to fresh tables in an in-memory SQLite
database (`Scratch`), a page of events per transaction, then `install` replaces the
view's tables in the target with those rows in one transaction: COPY on PostgreSQL,
executemany on SQLite, the indexes created after the rows.

`install` takes the views' rows in ``projection_tracking`` first and sets each position
to the one the rows were built to. A runner catching up at the same time (this process
or another) moves its position by compare-and-set before it writes: it waits for the
install, then finds its position moved and reads again, from the installed position.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from adapters.sql import Database, Tx
from adapters.store import EventStore
from projections.base import Projection

PAGE = 1000
#: rows written per executemany on SQLite
BATCH = 10_000

#: (position reached, last position) after each page
Progress = Callable[[int, int], None]


def last_position(store: EventStore) -> int:
    return int(store.recorder.max_notification_id() or 0)  # type: ignore[attr-defined]


def pages(store: EventStore, start: int, stop: int) -> Iterable[list[tuple[int, Any]]]:
    """The log's decoded events after `start` up to `stop`, a page at a time."""
    while start < stop:
        notifications = store.recorder.select_notifications(  # type: ignore[attr-defined]
            start=start, limit=PAGE, stop=stop, inclusive_of_start=False
        )
        if not notifications:
            return
        yield [(n.id, store.mapper.to_domain_event(n)) for n in notifications]
        start = notifications[-1].id


def is_table(statement: str) -> bool:
    return statement.lstrip().upper().startswith("CREATE TABLE")


class Scratch:
    """A private in-memory SQLite database for fresh copies of views' tables; `db` is the
    same `Database` interface the handlers and the list queries use everywhere."""

    def __init__(self, projections: Sequence[Projection] = ()) -> None:
        self.connection = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        self.connection.row_factory = sqlite3.Row
        self.connection.execute("PRAGMA journal_mode = OFF")
        self.db = Database(self, postgres=False)
        self.projections = list(projections)
        with self.db.transaction() as tx:
            for projection in self.projections:
                for statement in projection.ddl:
                    tx.execute(statement)

    @contextmanager
    def transaction(self, *, commit: bool) -> Iterator[sqlite3.Cursor]:
        """The datastore side of `Database`: one transaction on the connection."""
        cursor = self.connection.cursor()
        cursor.execute("BEGIN")
        try:
            yield cursor
        except BaseException:
            self.connection.rollback()
            raise
        if commit:
            self.connection.commit()
        else:
            self.connection.rollback()

    def apply(
        self,
        page: Sequence[tuple[int, Any]],
        until: dict[str, int] | None = None,
        keep: Callable[[Any], bool] | None = None,
    ) -> int:
        """Apply a page of events to every view (each up to its position in `until`, when
        given; only those `keep` accepts, when given) in one transaction; how many events
        were kept."""
        kept = 0
        with self.db.transaction() as tx:
            for position, event in page:
                if keep is not None and not keep(event):
                    continue
                kept += 1
                for projection in self.projections:
                    if until is None or position <= until[projection.name]:
                        projection.process(tx, event, position)
        return kept

    def rows(self, table: str) -> tuple[list[str], Iterator[tuple[Any, ...]]]:
        """A table's column names and its rows as plain tuples, streamed."""
        cursor = self.connection.cursor()
        cursor.row_factory = None
        cursor.execute(f"SELECT * FROM {table}")  # noqa: S608 (the projection's own table)
        return [c[0] for c in cursor.description], iter(cursor)

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> Scratch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def build(
    store: EventStore,
    projections: Sequence[Projection],
    stop: int,
    progress: Progress | None = None,
) -> Scratch:
    """The views built from the log up to `stop` in a fresh `Scratch` (the caller closes it)."""
    scratch = Scratch(projections)
    try:
        for page in pages(store, 0, stop):
            scratch.apply(page)
            if progress:
                progress(page[-1][0], stop)
    except BaseException:
        scratch.close()
        raise
    return scratch


def install(
    db: Database,
    scratch: Scratch,
    projections: Sequence[Projection],
    position: int,
    schemas: dict[str, str],
) -> None:
    """Replace the views' tables in `db` by the rows built in `scratch` and set their
    tracking positions to `position`, in one transaction."""
    with db.transaction() as tx:
        for projection in projections:
            # the tracking row first: a runner's compare-and-set waits for this transaction
            tx.execute(
                "INSERT INTO projection_tracking (name, position, schema) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET position = excluded.position, "
                "schema = excluded.schema",
                (projection.name, position, schemas[projection.name]),
            )
        for projection in projections:
            for table in projection.tables:
                tx.execute(f"DROP TABLE IF EXISTS {table}")
            for statement in projection.ddl:
                if is_table(statement):
                    tx.execute(statement)
            for table in projection.tables:
                columns, rows = scratch.rows(table)
                copy_rows(tx, db.postgres, table, columns, rows)
            for statement in projection.ddl:
                if not is_table(statement):
                    tx.execute(statement)


def copy_rows(
    tx: Tx, postgres: bool, table: str, columns: list[str], rows: Iterator[tuple[Any, ...]]
) -> None:
    """Bulk-load rows into a table: COPY on PostgreSQL, executemany in batches on SQLite."""
    names = ", ".join(columns)
    if postgres:
        tx.copy_in(f"COPY {table} ({names}) FROM STDIN", rows)
        return
    sql = f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' for _ in columns)})"  # noqa: S608
    batch: list[tuple[Any, ...]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= BATCH:
            tx.executemany(sql, batch)
            batch = []
    if batch:
        tx.executemany(sql, batch)
