"""Each practice's due work, as last run: failing or not, failures in a row and in all,
the last error. Written by the due-work runner (services/app/due.py), read on the
practice and by /metrics.

And who runs a job now (`JobClaims`): the scheduler runs each practice's work as a job of
its own, and a job is claimed first, so that two schedulers (two threads, or two
processes on PostgreSQL) never run one practice's job at once. On PostgreSQL a claim is a
session-level advisory lock on a connection of the scheduler's own (a process that dies
lets go of its claims with its connection); the embedded default, one process on its
SQLite file, keeps its claims in memory, per database file.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import psycopg

from adapters.sql import Database

log = logging.getLogger("payledger.due")

#: any constant: the first half of the advisory lock's key (the second is the job's key,
#: hashed), so that these locks do not meet the single-key locks taken elsewhere
CLAIM_NAMESPACE = 7_242_019


class JobClaims(Protocol):
    """Who runs a job now. `claim` answers at once (it never waits for the holder)."""

    def claim(self, key: str) -> bool: ...
    def release(self, key: str) -> None: ...
    def close(self) -> None: ...


class ProcessClaims:
    """Claims held in this process's memory, shared by every scheduler of the process on
    the same database (`scope`: the SQLite file). Enough for the embedded default, which
    runs one process on its file; PostgreSQL's processes use `AdvisoryClaims`."""

    _held: ClassVar[dict[str, set[str]]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, scope: str) -> None:
        self._scope = scope

    def claim(self, key: str) -> bool:
        with self._lock:
            held = self._held.setdefault(self._scope, set())
            if key in held:
                return False
            held.add(key)
            return True

    def release(self, key: str) -> None:
        with self._lock:
            self._held.get(self._scope, set()).discard(key)

    def close(self) -> None:
        """Nothing to close: a claim is let go of by its job."""


class AdvisoryClaims:
    """PostgreSQL: a claim is a session-level advisory lock (`pg_try_advisory_lock`) on one
    connection of its own, opened at the first claim. It holds however long the job takes
    (no lease to renew) and ends with the process: a process that dies, or whose
    connection drops, lets go of its claims at once. After a dropped connection the claims
    of the jobs still running here are taken again on the new one; one that another
    process took meanwhile is logged (both may then run that job once at the same time,
    which the work itself tolerates: batch ids, message claims and journal claims)."""

    def __init__(self, conninfo: dict[str, Any]) -> None:
        self._conninfo = {
            **conninfo,
            "autocommit": True,
            "keepalives": 1,
            "keepalives_idle": 30,
            "keepalives_interval": 10,
            "keepalives_count": 3,
        }
        self._conn: psycopg.Connection[Any] | None = None
        self._held: set[str] = set()
        self._lock = threading.Lock()

    def claim(self, key: str) -> bool:
        with self._lock:
            if key in self._held:
                return False
            try:
                taken = self._try(self._connection(), key)
            except psycopg.OperationalError:  # the server ended it: once more, on a new one
                taken = self._try(self._connection(), key)
            if taken:
                self._held.add(key)
            return taken

    def release(self, key: str) -> None:
        with self._lock:
            if key not in self._held:
                return
            self._held.discard(key)
            if self._conn is None or self._conn.closed:
                return  # the session ended: so did its locks
            try:
                self._conn.execute(
                    "SELECT pg_advisory_unlock(%s, hashtext(%s))", (CLAIM_NAMESPACE, key)
                )
            except psycopg.Error:
                self._drop()

    def close(self) -> None:
        with self._lock:
            self._held.clear()
            self._drop()

    def _try(self, conn: psycopg.Connection[Any], key: str) -> bool:
        try:
            row = conn.execute(
                "SELECT pg_try_advisory_lock(%s, hashtext(%s))", (CLAIM_NAMESPACE, key)
            ).fetchone()
        except psycopg.Error:
            self._drop()
            raise
        return bool(row and row[0])

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        self._conn = psycopg.connect(**self._conninfo)
        for key in sorted(self._held):  # running jobs whose claims ended with the old session
            if not self._try(self._conn, key):
                log.warning(
                    "the claim of %s was lost with a connection; another process has it", key
                )
        return self._conn

    def _drop(self) -> None:
        if self._conn is not None:
            with suppress(psycopg.Error):
                self._conn.close()
        self._conn = None


@dataclass(frozen=True)
class DueWorkRow:
    practice_id: str
    failing: bool
    consecutive: int
    failures: int
    last_error: str | None
    failed_at: str | None


@dataclass(frozen=True)
class DueWorkTotals:
    """Over all practices: how many are failing now, how many runs failed in all."""

    failing: int
    failures: int


class DueWorkStatus:
    def __init__(self, db: Database, claims: JobClaims | None = None) -> None:
        self._db = db
        #: who runs each job now (see the module's docstring)
        self.claims: JobClaims = claims or ProcessClaims(str(id(db)))

    @contextmanager
    def claimed(self, key: str) -> Iterator[bool]:
        """Claim the job `key` for the time of the block: True when this caller has it,
        False when another scheduler runs it now (the caller skips it)."""
        if not self.claims.claim(key):
            yield False
            return
        try:
            yield True
        finally:
            self.claims.release(key)

    def record_failure(self, practice_id: str, error: str, at: str) -> None:
        with self._db.transaction() as tx:
            tx.execute(
                "INSERT INTO due_work_status "
                "(practice_id, failing, consecutive, failures, last_error, failed_at) "
                "VALUES (?, 1, 1, 1, ?, ?) ON CONFLICT (practice_id) DO UPDATE SET failing = 1, "
                "consecutive = due_work_status.consecutive + 1, "
                "failures = due_work_status.failures + 1, "
                "last_error = excluded.last_error, failed_at = excluded.failed_at",
                (practice_id, error, at),
            )

    def record_success(self, practice_id: str) -> None:
        with self._db.transaction() as tx:
            tx.execute(
                "UPDATE due_work_status SET failing = 0, consecutive = 0 "
                "WHERE practice_id = ? AND failing = 1",
                (practice_id,),
            )

    def of_practice(self, practice_id: str) -> DueWorkRow | None:
        row = self._db.query_one(
            "SELECT practice_id, failing, consecutive, failures, last_error, failed_at "
            "FROM due_work_status WHERE practice_id = ?",
            (practice_id,),
        )
        if row is None:
            return None
        return DueWorkRow(
            practice_id=row["practice_id"],
            failing=bool(row["failing"]),
            consecutive=int(row["consecutive"]),
            failures=int(row["failures"]),
            last_error=row["last_error"],
            failed_at=row["failed_at"],
        )

    def totals(self) -> DueWorkTotals:
        row = self._db.query_one(
            "SELECT COALESCE(SUM(failing), 0) AS failing, COALESCE(SUM(failures), 0) AS failures "
            "FROM due_work_status"
        )
        return (
            DueWorkTotals(int(row["failing"]), int(row["failures"])) if row else DueWorkTotals(0, 0)
        )
