"""Group commit: the saves that arrive together are written in one PostgreSQL transaction.

eventsourcing's PostgreSQL recorder keeps notification ids gap-free (a reader
tailing the log never passes an id that commits later) by taking the events
table in EXCLUSIVE mode in every inserting transaction. That serialises the
writers of all processes: each save holds the lock for its round trips and its
commit's fsync while every other save waits.

`GroupCommit` takes the place of the recorder's `insert_events` in one process.
A save queues its events; the first save to find no write in progress becomes
the writer, takes every save queued so far and writes them in one transaction
(one table lock, one commit, one fsync); the saves that arrive meanwhile queue
up behind it and go in the next transaction. Each caller waits for the commit of
its own events and gets their notification ids, or its own error:

- The batch is first inserted with one statement. When that breaks a
  uniqueness constraint (another writer saved the same aggregate version:
  optimistic concurrency), the transaction is rolled back and the batch is
  written again with a savepoint per save, so that only the conflicting saves
  get their IntegrityError and the others commit.
- Any other error (the connection lost, a lock timeout) is given to every save
  of the batch: none of its events were committed.

Ids stay gap-free and in commit order: the transaction still takes the table
lock, and a batch's ids are issued and committed together. Across processes
the table lock serialises batches exactly as it serialised single saves.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    OperationalError,
    StoredEvent,
)
from eventsourcing.postgres import PostgresAggregateRecorder, PostgresApplicationRecorder

#: at most this many saves go into one transaction
MAX_BATCH = 256


@dataclass
class Pending:
    """One caller's save: its events, then its notification ids or its error."""

    events: Sequence[StoredEvent]
    ids: list[int] = field(default_factory=list)
    error: BaseException | None = None
    done: bool = False


class GroupCommit:
    """Writes the concurrent saves of one process in shared transactions."""

    def __init__(self, recorder: PostgresApplicationRecorder) -> None:
        self._recorder = recorder
        self._single: Callable[..., Sequence[int] | None] = recorder.insert_events
        self._changed = threading.Condition()
        self._queue: list[Pending] = []
        self._writing = False
        #: how many transactions and saves were written (for the bench and tests)
        self.transactions = 0
        self.saves = 0

    def install(self) -> GroupCommit:
        """Route the recorder's inserts through this group commit."""
        self._recorder.insert_events = self.insert_events  # type: ignore[method-assign]
        return self

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        plain = all(value is None for value in kwargs.values())  # no tracking record
        if not plain or self._recorder.datastore.enable_db_functions:
            return self._single(stored_events, **kwargs)  # as the recorder does
        if not stored_events:
            return []
        pending = Pending(stored_events)
        with self._changed:
            self._queue.append(pending)
            while not pending.done and self._writing:
                self._changed.wait()
            if pending.done:
                return self._answer(pending)
            self._writing = True
            batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
        try:
            self._write(batch)
        finally:
            for each in batch:  # never a caller left without its answer
                if not each.done:
                    each.error, each.done = RuntimeError("the group commit was interrupted"), True
            with self._changed:
                self._writing = False
                self._changed.notify_all()
        return self._answer(pending)

    @staticmethod
    def _answer(pending: Pending) -> list[int]:
        if pending.error is not None:
            raise pending.error
        return pending.ids

    def _write(self, batch: list[Pending]) -> None:
        """Write one batch, with a few attempts for a lost connection; every pending save
        of the batch is done afterwards, with its ids or its error."""
        last: BaseException | None = None
        for _ in range(3):
            for pending in batch:
                pending.ids, pending.error = [], None
            try:
                try:
                    self._write_together(batch)
                except IntegrityError:
                    self._write_apart(batch)
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
        for pending in batch:
            if last is not None:
                pending.ids, pending.error = [], last
            pending.done = True

    def _write_together(self, batch: list[Pending]) -> None:
        """The whole batch in one statement, pipelined with the lock and the commit (one
        round trip for the statements, as the recorder's own insert)."""
        events = [e for p in batch for e in p.events]
        recorder = self._recorder
        failure: Exception | None = None
        ids: list[int] = []
        with recorder.datastore.get_connection() as conn:
            with conn.pipeline() as pipeline, conn.transaction(), conn.cursor() as curs:
                recorder._lock_table(curs)
                recorder._notify_channel(curs)
                try:
                    PostgresAggregateRecorder._insert_stored_events(recorder, curs, events)
                    pipeline.sync()  # a broken uniqueness is raised here, not at commit
                    ids = [int(row["notification_id"]) for row in curs.fetchall()]
                except Exception as error:  # raised once the pipeline is closed
                    failure = error
            if failure is not None:
                raise failure
        start = 0
        for pending in batch:
            pending.ids = ids[start : start + len(pending.events)]
            start += len(pending.events)

    def _write_apart(self, batch: list[Pending]) -> None:
        """A savepoint per save: the conflicting ones fail alone."""
        with self._transaction() as curs:
            conn = curs.connection
            for pending in batch:
                try:
                    with conn.transaction():
                        pending.ids = self._insert(curs, pending.events)
                except psycopg.IntegrityError as error:
                    pending.ids, pending.error = [], IntegrityError(str(error))

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Cursor[Any]]:
        """A connection of the store's pool, in one transaction holding the table lock."""
        recorder = self._recorder
        with (
            recorder.datastore.get_connection() as conn,
            conn.transaction(),
            conn.cursor() as curs,
        ):
            recorder._lock_table(curs)
            recorder._notify_channel(curs)
            yield curs

    def _insert(self, curs: psycopg.Cursor[Any], events: Sequence[StoredEvent]) -> list[int]:
        PostgresAggregateRecorder._insert_stored_events(self._recorder, curs, events)
        return [int(row["notification_id"]) for row in curs.fetchall()]
