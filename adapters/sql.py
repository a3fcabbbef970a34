"""One small SQL interface over the event store's own connection pool.

Projections, idempotency records, the sandbox clock and the outbox live in
the same database as the events (the SQLite file or the PostgreSQL
database), so a projection's rows and its tracking position commit in one
transaction. SQL is written once with ``?`` placeholders; for PostgreSQL
they become ``%s``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from eventsourcing.persistence import IntegrityError

Row = dict[str, Any]


class Tx:
    """A cursor inside one transaction."""

    def __init__(self, cursor: Any, *, postgres: bool) -> None:
        self._cursor = cursor
        self._postgres = postgres
        self.rowcount = 0

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        if self._postgres:
            sql = sql.replace("?", "%s")
        try:
            self._cursor.execute(sql, tuple(params))
        except (sqlite3.IntegrityError, psycopg.errors.IntegrityError) as error:
            raise IntegrityError(str(error)) from error
        raw = self._raw_cursor()
        self.rowcount = raw.rowcount
        if raw.description is None:
            return []
        return [dict(row) for row in raw.fetchall()]

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        rows = self.execute(sql, params)
        return rows[0] if rows else None

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if self._postgres:
            sql = sql.replace("?", "%s")
        try:
            self._cursor.executemany(sql, [tuple(r) for r in rows])
        except (sqlite3.IntegrityError, psycopg.errors.IntegrityError) as error:
            raise IntegrityError(str(error)) from error

    def copy_in(self, statement: str, rows: Iterable[Sequence[Any]]) -> None:
        """PostgreSQL only: stream rows into a `COPY ... FROM STDIN` statement."""
        assert self._postgres, "COPY is PostgreSQL's"
        try:
            with self._cursor.copy(statement) as copy:
                for row in rows:
                    copy.write_row(row)
        except psycopg.errors.IntegrityError as error:
            raise IntegrityError(str(error)) from error

    def _raw_cursor(self) -> Any:
        return getattr(self._cursor, "sqlite_cursor", self._cursor)


class Database:
    def __init__(self, datastore: Any, *, postgres: bool) -> None:
        self._datastore = datastore
        self.postgres = postgres

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        """A read-write transaction: committed on success, rolled back on error."""
        with self._datastore.transaction(commit=True) as cursor:
            yield Tx(cursor, postgres=self.postgres)

    @contextmanager
    def reading(self) -> Iterator[Tx]:
        with self._datastore.transaction(commit=False) as cursor:
            yield Tx(cursor, postgres=self.postgres)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        with self.reading() as tx:
            return tx.execute(sql, params)

    def query_one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None
