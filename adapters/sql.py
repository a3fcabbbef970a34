"""One small SQL interface for the tables beside the events.

Projections, idempotency records, the sandbox clock and the sandbox mailbox live in
the same database as the events (the SQLite file or the PostgreSQL
database). Writes go through the event store's pool, so that a projection's
rows and its tracking position commit in one transaction; reads take a
connection from a pool of their own (``ReadPool``). SQL is written once with
``?`` placeholders; ``dialect_sql`` turns them into ``%s`` for PostgreSQL,
leaving string literals, quoted names and comments alone.
"""

from __future__ import annotations

import queue
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, ParamSpec, TypeVar, cast

import psycopg
from eventsourcing.persistence import IntegrityError, OperationalError
from psycopg.rows import dict_row

Row = dict[str, Any]
P = ParamSpec("P")
R = TypeVar("R")
#: a query's row type: a TypedDict beside the query, one key per column it selects
RowT = TypeVar("RowT", bound=Mapping[str, object])


def rows_as(kind: type[RowT], rows: list[Row]) -> list[RowT]:
    """The rows as the query's row type. A cast, not a check (nothing is spent per row):
    tests/unit/test_typed_rows.py holds each row type to the columns its query returns."""
    return cast("list[RowT]", rows)


def row_as(kind: type[RowT], row: Row | None) -> RowT | None:
    """One row (or None) as the query's row type; a cast, as ``rows_as``."""
    return cast("RowT | None", row)


def columns_of(kind: type[Mapping[str, object]], prefix: str = "") -> str:
    """A row type's keys as a select list, in the order the type declares them (each
    after ``prefix``, e.g. a table's alias and a dot)."""
    return ", ".join(prefix + name for name in kind.__annotations__)


@lru_cache(maxsize=4096)
def dialect_sql(sql: str, *, postgres: bool) -> str:
    """The statement for the dialect: for PostgreSQL (psycopg's ``%s`` placeholders) each
    ``?`` placeholder becomes ``%s`` and each literal ``%`` becomes ``%%``; a ``?`` inside
    a string literal, a quoted name or a comment stays as it is. SQLite takes ``?`` as is."""
    if not postgres:
        return sql
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c in ("'", '"'):  # a literal or a quoted name, to its closing quote ('' is a quote)
            end = i + 1
            while end < n:
                if sql[end] == c:
                    if end + 1 < n and sql[end + 1] == c:
                        end += 2
                        continue
                    break
                end += 1
            out.append(sql[i : end + 1].replace("%", "%%"))
            i = end + 1
        elif sql.startswith("--", i):  # a comment to the end of the line
            end = sql.find("\n", i)
            end = n if end == -1 else end
            out.append(sql[i:end].replace("%", "%%"))
            i = end
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            end = n if end == -1 else end + 2
            out.append(sql[i:end].replace("%", "%%"))
            i = end
        else:
            out.append("%s" if c == "?" else "%%" if c == "%" else c)
            i += 1
    return "".join(out)


class Tx:
    """A cursor inside one transaction."""

    def __init__(self, cursor: Any, *, postgres: bool) -> None:
        self._cursor = cursor
        self._postgres = postgres
        self.rowcount = 0

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        try:
            self._cursor.execute(dialect_sql(sql, postgres=self._postgres), tuple(params))
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
        try:
            self._cursor.executemany(
                dialect_sql(sql, postgres=self._postgres), [tuple(r) for r in rows]
            )
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


class ReadPool:
    """Connections for reading, ours (not the event store's): opened when needed, kept
    open between reads (at most ``size`` idle ones), each read in a transaction that is
    rolled back at its end. A connection that failed is closed, not kept."""

    def __init__(self, connect: Callable[[], Any], *, postgres: bool, size: int = 5) -> None:
        self._connect = connect
        self.postgres = postgres
        self._idle: queue.LifoQueue[Any] = queue.LifoQueue(maxsize=size)
        self._closed = threading.Event()

    @classmethod
    def sqlite(cls, path: str, *, timeout: float, size: int = 5) -> ReadPool:
        def connect() -> sqlite3.Connection:
            conn = sqlite3.connect(
                path, uri=True, check_same_thread=False, isolation_level=None, timeout=timeout
            )
            conn.row_factory = sqlite3.Row
            return conn

        return cls(connect, postgres=False, size=size)

    @classmethod
    def postgresql(cls, conninfo: dict[str, Any], *, size: int = 5) -> ReadPool:
        def connect() -> psycopg.Connection[Row]:
            return psycopg.connect(
                **conninfo,
                autocommit=True,
                row_factory=dict_row,
                options="-c idle_in_transaction_session_timeout=10000",
            )

        return cls(connect, postgres=True, size=size)

    @contextmanager
    def reading(self) -> Iterator[Tx]:
        conn = self._take()
        try:
            if self.postgres:
                with conn.transaction(force_rollback=True), conn.cursor() as cursor:
                    yield Tx(cursor, postgres=True)
            else:
                cursor = conn.cursor()
                cursor.execute("BEGIN")
                try:
                    yield Tx(cursor, postgres=False)
                finally:
                    conn.rollback()
                    cursor.close()
        except (sqlite3.OperationalError, sqlite3.InterfaceError, psycopg.OperationalError):
            conn.close()
            raise
        except BaseException:
            self._give_back(conn)
            raise
        else:
            self._give_back(conn)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """One statement. On PostgreSQL a SELECT is sent alone in autocommit, its own
        snapshot: one round trip instead of three (BEGIN, the statement, ROLLBACK). A
        pooled connection that the server ended (a restart) is dropped and the statement
        sent again on a new one, once (the other idle ones, as old, are dropped too): a
        read can always be repeated."""
        if not (self.postgres and sql.lstrip()[:6].upper() == "SELECT"):
            with self.reading() as tx:
                return tx.execute(sql, params)
        for attempt in (1, 2):
            pooled, conn = self._take_marked()
            try:
                with conn.cursor() as cursor:
                    rows = Tx(cursor, postgres=True).execute(sql, params)
            except psycopg.OperationalError:
                conn.close()
                if pooled and attempt == 1:
                    self._drop_idle()
                    continue
                raise
            except BaseException:
                self._give_back(conn)
                raise
            self._give_back(conn)
            return rows
        raise AssertionError("unreachable")

    def _take(self) -> Any:
        return self._take_marked()[1]

    def _take_marked(self) -> tuple[bool, Any]:
        """A connection, and whether it came from the pool (it may have gone stale)."""
        try:
            return True, self._idle.get_nowait()
        except queue.Empty:
            return False, self._connect()

    def _give_back(self, conn: Any) -> None:
        if self._closed.is_set() or getattr(conn, "closed", False):
            conn.close()
            return
        try:
            self._idle.put_nowait(conn)
        except queue.Full:
            conn.close()

    def close(self) -> None:
        self._closed.set()
        self._drop_idle()

    def _drop_idle(self) -> None:
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return


@contextmanager
def committed(conn: psycopg.Connection[Any]) -> Iterator[psycopg.Transaction]:
    """``conn.transaction()``, which raises when its block ends without an error but the
    transaction was not committed. psycopg leaves the transaction of a broken connection
    alone (no COMMIT, no error) when the block ends normally: a block that caught the
    break itself (the inline views catch their failures, so that they never undo the
    events) would otherwise tell its callers that a write happened that did not. Nothing
    was sent to commit, so the write can be made again."""
    with conn.transaction() as txn:
        yield txn
    if txn.status is not psycopg.Transaction.Status.COMMITTED:
        raise OperationalError(
            f"the transaction was not committed ({txn.status.value}): its connection was "
            "lost, and nothing of it was written"
        )


class Database:
    """Write transactions on the event store's pool; reads on ``reads`` when given (a
    scratch database of one connection, e.g. in memory, reads on its own pool)."""

    def __init__(self, datastore: Any, *, postgres: bool, reads: ReadPool | None = None) -> None:
        self._datastore = datastore
        self.postgres = postgres
        self._reads = reads

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        """A read-write transaction: committed on success, rolled back on error (and an
        OperationalError when its connection broke inside, even if the block caught the
        break: see `committed`)."""
        if not self.postgres:
            with self._datastore.transaction(commit=True) as cursor:
                yield Tx(cursor, postgres=False)
            return
        with self._datastore.get_connection() as conn, committed(conn):
            yield Tx(conn.cursor(), postgres=True)

    @contextmanager
    def reading(self) -> Iterator[Tx]:
        if self._reads is not None:
            with self._reads.reading() as tx:
                yield tx
            return
        with self._datastore.transaction(commit=False) as cursor:
            yield Tx(cursor, postgres=self.postgres)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        if self._reads is not None:
            return self._reads.query(sql, params)
        with self.reading() as tx:
            return tx.execute(sql, params)

    def query_one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def close(self) -> None:
        if self._reads is not None:
            self._reads.close()


#: statements that return nothing: held, and sent with the next one that does (or at commit)
HELD = ("INSERT", "UPDATE", "DELETE", "SAVEPO", "RELEAS")


class PipelinedTx(Tx):
    """A page's transaction on PostgreSQL, in fewer round trips: a write that returns
    nothing (INSERT, UPDATE, DELETE without RETURNING) is held and sent together with the
    next statement that returns something, or at the end of the page, in one round trip
    (psycopg's pipeline mode). The handlers see no difference: a read sees every write
    before it, in order; `rowcount` is that of the last statement; an error in a held
    write fails the page's transaction as it did before."""

    def __init__(self, tx: Tx) -> None:
        super().__init__(tx._cursor, postgres=True)
        self._held: list[tuple[str, tuple[Any, ...]]] = []
        #: what the page's handlers keep for the rest of it (projections.base.page_memo)
        self.memo: dict[Any, Any] = {}

    @property  # type: ignore[override]
    def rowcount(self) -> int:
        self.flush()
        return self._rowcount

    @rowcount.setter
    def rowcount(self, value: int) -> None:
        self._rowcount = value

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        head = sql.lstrip()[:6].upper()
        if head in HELD and "RETURNING" not in sql.upper():
            self._held.append((dialect_sql(sql, postgres=True), tuple(params)))
            return []
        if not self._held:
            return super().execute(sql, params)
        with self._pipeline() as pipeline:
            self._send_held()
            self._cursor.execute(dialect_sql(sql, postgres=True), tuple(params))
            pipeline.sync()  # one round trip: the held writes and this statement
            self._rowcount = self._cursor.rowcount
            if self._cursor.description is None:
                return []
            return [dict(row) for row in self._cursor.fetchall()]

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.flush()
        super().executemany(sql, rows)

    def copy_in(self, statement: str, rows: Any) -> None:
        self.flush()
        super().copy_in(statement, rows)

    def flush(self) -> None:
        """Send the held writes now (one round trip)."""
        if not self._held:
            return
        with self._pipeline():
            self._send_held()
        self._rowcount = self._cursor.rowcount

    def _send_held(self) -> None:
        held, self._held = self._held, []
        for sql, params in held:
            self._cursor.execute(sql, params)

    @contextmanager
    def _pipeline(self) -> Iterator[Any]:
        try:
            with self._cursor.connection.pipeline() as pipeline:
                yield pipeline
        except psycopg.errors.IntegrityError as error:
            raise IntegrityError(str(error)) from error
