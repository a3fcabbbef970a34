"""The event store's persistence: eventsourcing's recorders, extended where the library
invites it, so that one command is one transaction.

The event library builds its recorders through an infrastructure factory named by the
``PERSISTENCE_MODULE`` setting (adapters/store.py names ``PostgresLedgerFactory`` or
``SqliteLedgerFactory`` of this module). Their application recorders keep the library's
tables, statements and guarantees (the recorder contract of ``eventsourcing.tests
.persistence`` runs against them in tests/integration/test_recorder_contract.py) and
add three things to the transaction that inserts a save's events:

- **statements of the caller** (``attached``): rows that must commit with the events or
  not at all, e.g. a bulk request's messages; and writes with no events at all
  (``write``: an Idempotency-Key's claim or its kept answer), which share the next
  transaction instead of taking one of their own;
- **the views, inline** (``inline``): the projector's hook applies the transaction's
  events to every view whose position is exactly the last position before them, in the
  same transaction, each view under a savepoint of its own (a view that fails is rolled
  back alone and left to its runner, which catches it up in order); a view behind is
  left to its runner too;
- **group commit** on PostgreSQL: the saves and writes that arrive together are written
  in one transaction (one table lock, one commit, one fsync). A save queues its part;
  the first to find no write in progress becomes the writer, takes everything queued
  so far and writes it; the parts arriving meanwhile go in the next transaction. Each
  caller waits for the commit of its own part and gets its notification ids (or the
  rowcounts of its statements), or its own error: the batch is first written with one
  insert; when that breaks a uniqueness constraint (optimistic concurrency, or a key
  claimed twice), it is written again with a savepoint per part, so that only the
  conflicting parts fail. Any other error (the connection lost, a lock timeout) is
  every part's.

Ids stay gap-free and in commit order: the transaction takes the library's table lock
(EXCLUSIVE), and a batch's ids are issued and committed together.

Every insert also notifies ``payledger_changed`` with the ids of the aggregates whose
events are cached in processes (adapters/changes.py), so that no process serves a stale
practice or user.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    Notification,
    OperationalError,
    StoredEvent,
)
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresFactory
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteFactory
from psycopg.sql import SQL, Identifier

from adapters.sql import Tx, committed, dialect_sql

log = logging.getLogger("payledger.store")

#: at most this many parts go into one transaction
MAX_BATCH = 256
#: how long a writer waits for the parts of callers writing side by side (seconds), and
#: over how many recent transactions it judges how many to wait for
GATHER = 0.002
RECENT = 8
#: the channel that tells processes which cached aggregates changed (adapters/changes.py)
CHANGED_CHANNEL = "payledger_changed"
#: the events of these aggregates are cached in processes: their ids are notified
CACHED_TOPICS = ("domain.practices:Practice.", "domain.users:User.")
#: NOTIFY's payload is limited to 8000 bytes: more ids than fit say "everything changed"
MAX_NOTIFIED = 200

#: a statement with ``?`` placeholders and its parameters
Statement = tuple[str, Sequence[Any]]
#: the views' hook: (the transaction, the last position before it, what it inserted) ->
#: a callback to run once the transaction committed (or None)
Inline = Callable[[Tx, int, list[Notification]], Callable[[], None] | None]

_attached: ContextVar[tuple[Statement, ...]] = ContextVar("attached", default=())


@contextmanager
def attached(*statements: Statement) -> Iterator[None]:
    """The saves inside this block write these statements in their transaction, before
    their events (each save writes them: use it around one save)."""
    token = _attached.set(_attached.get() + statements)
    try:
        yield
    finally:
        _attached.reset(token)


def changed_ids(events: Sequence[StoredEvent]) -> list[str]:
    """The ids of the cached aggregates among these events."""
    ids = {str(e.originator_id) for e in events if e.topic.startswith(CACHED_TOPICS)}
    return sorted(ids)


def changed_payload(ids: list[str]) -> str:
    return "*" if len(ids) > MAX_NOTIFIED else ",".join(ids)


def as_notifications(ids: Sequence[int], events: Sequence[StoredEvent]) -> list[Notification]:
    """Stored events with the positions they were given."""
    return [
        Notification(
            id=i,
            originator_id=e.originator_id,
            originator_version=e.originator_version,
            topic=e.topic,
            state=e.state,
        )
        for i, e in zip(ids, events, strict=True)
    ]


@dataclass
class Part:
    """One caller's part of a transaction: its statements, its events, then its ids
    (and its statements' rowcounts) or its error."""

    events: Sequence[StoredEvent]
    statements: Sequence[Statement] = ()
    ids: list[int] = field(default_factory=list)
    rowcounts: list[int] = field(default_factory=list)
    error: BaseException | None = None
    done: bool = False


class LedgerRecorder:
    """What both recorders add: the views' hook and the counters the bench reads."""

    inline: Inline | None = None
    #: how many transactions wrote how many parts (the bench and tests read them)
    transactions = 0
    saves = 0

    def write(self, statements: Sequence[Statement]) -> list[int]:
        """Run statements that have no events (a key's claim, its answer) in a transaction
        of the store; their rowcounts. A broken uniqueness raises IntegrityError."""
        raise NotImplementedError


class PostgresLedgerRecorder(PostgresApplicationRecorder, LedgerRecorder):
    """The library's PostgreSQL application recorder, with group commit, the caller's
    statements and the inline views in one transaction."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        lock = threading.Lock()
        self._changed = threading.Condition(lock)  # a part is done, or the writer is free
        self._arrived = threading.Condition(lock)  # a part arrived while the writer gathers
        self._gathering = False
        self._recent: collections.deque[int] = collections.deque(maxlen=RECENT)
        self._queue: list[Part] = []
        self._writing = False
        self._table = SQL("{0}.{1}").format(
            Identifier(self.datastore.schema), Identifier(self.events_table_name)
        )

    # -- the recorder's contract ----------------------------------------------------------

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if any(value is not None for value in kwargs.values()):  # a tracking record
            ids: Sequence[int] | None = super().insert_events(stored_events, **kwargs)
            return ids
        statements = _attached.get()
        if not stored_events and not statements:
            return []
        return self._queued(Part(stored_events, statements)).ids

    def write(self, statements: Sequence[Statement]) -> list[int]:
        if not statements:
            return []
        return self._queued(Part((), statements)).rowcounts

    # -- group commit ---------------------------------------------------------------------

    def _queued(self, part: Part) -> Part:
        with self._changed:
            self._queue.append(part)
            if self._gathering:
                self._arrived.notify()
            while not part.done and self._writing:
                self._changed.wait()
            if part.done:
                return self._answer(part)
            self._writing = True
            self._gather()
            batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
            self._recent.append(len(batch))
        try:
            self._write(batch)
        finally:
            for each in batch:  # never a caller left without its answer
                if not each.done:
                    each.error, each.done = RuntimeError("the group commit was interrupted"), True
            with self._changed:
                self._writing = False
                self._changed.notify_all()
        return self._answer(part)

    def _gather(self) -> None:
        """As PostgreSQL's own commit_delay: when the recent transactions were shared
        (callers are writing side by side), wait a moment (GATHER at most) for as many
        parts as the largest of them had, so that they share this one too; a lone caller
        never waits."""
        wanted = min(max(self._recent, default=0), MAX_BATCH)
        if wanted < 2 or len(self._queue) >= wanted:
            return
        deadline = time.monotonic() + GATHER
        self._gathering = True
        try:
            while len(self._queue) < wanted:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._arrived.wait(left)
        finally:
            self._gathering = False

    @staticmethod
    def _answer(part: Part) -> Part:
        if part.error is not None:
            raise part.error
        return part

    def _write(self, batch: list[Part]) -> None:
        """Write one batch, with a few attempts for a lost connection; every part of the
        batch is done afterwards, with its ids or its error."""
        last: BaseException | None = None
        after: Callable[[], None] | None = None
        for _ in range(3):
            for part in batch:
                part.ids, part.rowcounts, part.error = [], [], None
            try:
                try:
                    after = self._write_together(batch)
                except IntegrityError as conflict:
                    log.debug(
                        "a batch of %s parts conflicted (%s): written apart", len(batch), conflict
                    )
                    after = self._write_apart(batch)
            except (InterfaceError, OperationalError) as error:
                last = error
                time.sleep(0.2)  # as the recorder's own retries
                continue
            except BaseException as error:
                last = error
                break
            else:
                last = None
                break
        self.transactions += 1
        self.saves += len(batch)
        if last is None and after is not None:
            try:
                after()
            except Exception:  # the views' bookkeeping; the events are committed
                log.exception("after the inline views")
        for part in batch:
            if last is not None:
                part.ids, part.rowcounts, part.error = [], [], last
            part.done = True

    def _begin(self, curs: psycopg.Cursor[Any], events: Sequence[StoredEvent]) -> None:
        """The table lock (ids in commit order) and the notifications."""
        for statement in self.lock_table_statements:
            curs.execute(statement, prepare=True)
        curs.execute(SQL("NOTIFY {0}").format(Identifier(self.channel_name)))
        ids = changed_ids(events)
        if ids:
            curs.execute("SELECT pg_notify(%s, %s)", (CHANGED_CHANNEL, changed_payload(ids)))

    def _head(self, curs: psycopg.Cursor[Any]) -> None:
        curs.execute(
            SQL("SELECT COALESCE(MAX(notification_id), 0) AS head FROM {0}").format(self._table)
        )

    def _insert(self, curs: psycopg.Cursor[Any], events: Sequence[StoredEvent]) -> None:
        rows = [
            self.construct_pg_stored_event(e.originator_id, e.originator_version, e.topic, e.state)
            for e in events
        ]
        curs.execute(self.insert_events_statement, (rows,))

    def _write_together(self, batch: list[Part]) -> Callable[[], None] | None:
        """The whole batch: its statements and one insert of all its events, pipelined
        with the lock, in one round trip; then the views inline; one commit."""
        events = [e for p in batch for e in p.events]
        failure: Exception | None = None
        ids: list[int] = []
        head = 0
        after: Callable[[], None] | None = None
        with self.datastore.get_connection() as conn, committed(conn):
            statement_cursors: list[list[psycopg.Cursor[Any]]] = []
            with conn.pipeline() as pipeline, conn.cursor() as curs:
                head_cursor = conn.cursor()
                if events:  # statements alone need no lock: they are not in the log
                    self._begin(curs, events)
                    self._head(head_cursor)
                try:
                    for part in batch:
                        mine = []
                        for sql, params in part.statements:
                            each = conn.cursor()
                            each.execute(dialect_sql(sql, postgres=True), tuple(params))
                            mine.append(each)
                        statement_cursors.append(mine)
                    if events:
                        self._insert(curs, events)
                    pipeline.sync()  # a broken uniqueness is raised here, not at commit
                    if events:
                        ids = [int(row["notification_id"]) for row in curs.fetchall()]
                    row = head_cursor.fetchone() if events else None
                    head = int(row["head"]) if row else 0
                except psycopg.errors.IntegrityError as error:
                    failure = IntegrityError(str(error))
                except Exception as error:  # raised once the pipeline is closed
                    failure = error
            if failure is not None:
                raise failure
            start = 0
            for part, mine in zip(batch, statement_cursors, strict=True):
                part.rowcounts = [c.rowcount for c in mine]
                part.ids = ids[start : start + len(part.events)]
                start += len(part.events)
            if ids:
                after = self._inline(conn, head, batch)
        return after

    def _write_apart(self, batch: list[Part]) -> Callable[[], None] | None:
        """A savepoint per part: the conflicting ones fail alone."""
        events = [e for p in batch for e in p.events]
        with self.datastore.get_connection() as conn, committed(conn):
            with conn.cursor() as curs:
                head = 0
                if events:
                    self._begin(curs, events)
                    self._head(curs)
                    row = curs.fetchone()
                    head = int(row["head"]) if row else 0
                for part in batch:
                    try:
                        with conn.transaction():
                            for sql, params in part.statements:
                                curs.execute(dialect_sql(sql, postgres=True), tuple(params))
                                part.rowcounts.append(curs.rowcount)
                            if part.events:
                                self._insert(curs, part.events)
                                part.ids = [int(r["notification_id"]) for r in curs.fetchall()]
                    except psycopg.errors.IntegrityError as error:
                        part.ids, part.rowcounts = [], []
                        part.error = IntegrityError(str(error))
            if any(p.ids for p in batch):
                return self._inline(conn, head, batch)
        return None

    def _inline(
        self, conn: psycopg.Connection[Any], head: int, batch: list[Part]
    ) -> Callable[[], None] | None:
        """The views applied to what this transaction inserted, under a savepoint: an
        error outside the views' own savepoints rolls back the views alone."""
        if self.inline is None:
            return None
        written = [
            n
            for part in batch
            if part.error is None
            for n in as_notifications(part.ids, part.events)
        ]
        if not written:
            return None
        try:
            with conn.transaction(), conn.cursor() as curs:
                return self.inline(Tx(curs, postgres=True), head, written)
        except Exception:
            log.exception("the views were not applied inline; their runners catch them up")
            return None


class SqliteLedgerRecorder(SQLiteApplicationRecorder, LedgerRecorder):
    """The library's SQLite application recorder, with the caller's statements and the
    inline views in its one write transaction (SQLite has one writer at a time)."""

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if any(value is not None for value in kwargs.values()):  # a tracking record
            return super().insert_events(stored_events, **kwargs)
        statements = _attached.get()
        after: Callable[[], None] | None = None
        with self.datastore.transaction(commit=True) as cursor:
            tx = Tx(cursor, postgres=False)
            for sql, params in statements:
                tx.execute(sql, params)
            head_sql = f"SELECT COALESCE(MAX(rowid), 0) AS head FROM {self.events_table_name}"  # noqa: S608
            head_row = tx.one(head_sql)
            head = int(head_row["head"]) if head_row else 0
            ids: list[int] = []
            for e in stored_events:
                originator = e.originator_id
                tx.execute(
                    self.insert_events_statement,
                    (
                        originator.hex if isinstance(originator, UUID) else originator,
                        e.originator_version,
                        e.topic,
                        e.state,
                    ),
                )
                ids.append(int(cursor.lastrowid))
            if ids and self.inline is not None:
                after = self._inline(tx, head, ids, stored_events)
        self.transactions += 1
        self.saves += 1
        if after is not None:
            try:
                after()
            except Exception:
                log.exception("after the inline views")
        return ids

    def _inline(
        self, tx: Tx, head: int, ids: list[int], events: Sequence[StoredEvent]
    ) -> Callable[[], None] | None:
        assert self.inline is not None
        written = as_notifications(ids, events)
        tx.execute("SAVEPOINT inline_views")
        try:
            after = self.inline(tx, head, written)
        except Exception:
            tx.execute("ROLLBACK TO SAVEPOINT inline_views")
            log.exception("the views were not applied inline; their runners catch them up")
            after = None
        tx.execute("RELEASE SAVEPOINT inline_views")
        return after

    def write(self, statements: Sequence[Statement]) -> list[int]:
        if not statements:
            return []
        counts = []
        with self.datastore.transaction(commit=True) as cursor:
            tx = Tx(cursor, postgres=False)
            for sql, params in statements:
                tx.execute(sql, params)
                counts.append(tx.rowcount)
        return counts


class PostgresLedgerFactory(PostgresFactory):
    """The library's PostgreSQL factory, making our application recorder."""

    application_recorder_class = PostgresLedgerRecorder


class SqliteLedgerFactory(SQLiteFactory):
    """The library's SQLite factory, making our application recorder."""

    application_recorder_class = SqliteLedgerRecorder
