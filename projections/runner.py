"""Runs projections over the event store's ordered notification log, one runner each.

Each projection has its own runner and its own row in ``projection_tracking``.
The runners behind are caught up together (``catch_up_together``): each page of
notifications after the lowest of their positions is read and decoded once and
handed to every runner, which applies its part and moves its own position in
one transaction of its own (on PostgreSQL a few runners side by side, each on
its own connection, with the page's writes pipelined: ``PipelinedTx``). The
position moves by compare-and-set first, so two processes catching up at once
never apply an event twice (the loser rolls back and reads again). ``projection_tracking`` itself
is a durable table (adapters/migrations/); each projection's own tables are
created from its definition and rebuilt when that changes.

Runners are independent: a projection that fails on an event stops only
itself. Its error is kept (``/healthz`` and ``/metrics`` show it) and it is
tried again after a growing pause, while every other view, the work lists
and the writeback intake go on.

In a server the runners are driven by one background thread beside the API
(``Projector.start``); a command that must show its own result waits, with a
bound, until the views reach the position of its events (``wait_for``).
Without the thread (tests, the CLI) the caller catches the runners up itself.
In production the runners run in processes of their own (``payledger
projections run``, ``--role`` to split the display views, the work lists and
the intake): a projector made ``elsewhere`` applies nothing and waits by
reading the positions those processes commit.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import psycopg
from eventsourcing.persistence import IntegrityError, OperationalError

from adapters.sql import Database, Tx, dialect_sql
from adapters.store import CREATE_LOCK_KEY, EventStore
from projections import rebuild as bulk
from projections.base import Projection

PAGE = 500
#: pauses before a failing runner is tried again by the background thread
FIRST_RETRY = 1.0
LAST_RETRY = 60.0
#: how long a command waits for the views to show its events
WAIT_BOUND = 5.0
#: a view at position 0 (new, or its tables changed) on a log longer than this is built in
#: memory and copied in (projections/rebuild.py) instead of applied event by event
BULK_FROM = 1000

log = logging.getLogger("payledger.projections")


def schema_hash(projection: Projection) -> str:
    text = "\n".join((f"version {projection.version}", *projection.ddl))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class PositionMoved(Exception):
    """Another process applied this page first."""


@dataclass(frozen=True)
class RunnerState:
    """What /healthz and /metrics show of one runner."""

    name: str
    role: str
    position: int
    error: str | None
    failures: int


class Runner:
    """One projection's catch-up: its own position, its own transactions, its own failure."""

    def __init__(self, store: EventStore, db: Database, projection: Projection) -> None:
        self.store = store
        self.db = db
        self.projection = projection
        self.name = projection.name
        self.lock = threading.Lock()
        self.position = 0
        self.error: str | None = None
        self.failures = 0
        self.retry_at = 0.0

    def load_position(self) -> int:
        """The position (and any failure) the database has for this runner."""
        row = self.db.query_one(
            "SELECT position, error, failures FROM projection_tracking WHERE name = ?",
            (self.name,),
        )
        self.position = int(row["position"]) if row else 0
        self.error = row["error"] if row else None
        self.failures = int(row["failures"]) if row else 0
        return self.position

    def catch_up(self) -> int:
        """Apply every recorded event after this runner's position; returns the position.
        A failure is recorded on the runner, then raised."""
        failure = self.try_catch_up()
        if failure is not None:
            raise failure
        return self.position

    def try_catch_up(self) -> Exception | None:
        """As `catch_up`, but a failure is recorded on the runner and returned."""
        return catch_up_together(self.store, self.db, [self]).get(self.name)

    def _recovered(self) -> None:
        if self.error is not None:
            log.info("projection %s recovered at position %s", self.name, self.position)
            self.error, self.failures = None, 0
            self._record_failure()
        self.retry_at = 0.0

    def _failed(self, error: Exception) -> None:
        self.failures += 1
        self.error = f"{type(error).__name__}: {error}"
        pause = min(LAST_RETRY, FIRST_RETRY * 2 ** (self.failures - 1))
        self.retry_at = time.monotonic() + pause
        self._record_failure()
        log.error(
            "projection %s failed after position %s (%s); the other views go on, "
            "it is tried again in %.0fs",
            self.name,
            self.position,
            self.error,
            pause,
        )

    def _record_failure(self) -> None:
        """Keep the runner's error (or its recovery) beside its position, where processes
        that do not run it read it (their /healthz, and commands that would wait for it).
        A database that cannot take it now is told at the next failure or recovery."""
        try:
            with self.db.transaction() as tx:
                tx.execute(
                    "UPDATE projection_tracking SET error = ?, failures = ? WHERE name = ?",
                    (self.error, self.failures, self.name),
                )
        except Exception as error:  # the runner's own state stays right; this is a report
            log.warning("could not record projection %s's state: %s", self.name, error)

    def _apply(self, events: list[tuple[int, Any]]) -> None:
        """One transaction for the page: the projection's rows and its position. The
        position kept in memory follows; when another process applied the page first
        (or a deadlock rolled it back) it is read again."""
        try:
            with self.db.transaction() as plain:
                tx = PipelinedTx(plain) if self.db.postgres else plain
                _move(tx, self.name, self.position, events[-1][0])
                for position, event in events:
                    self.projection.process(tx, event, position)
                if isinstance(tx, PipelinedTx):
                    tx.flush()
        except PositionMoved:
            self.load_position()  # another process got there first; go on from there
            return
        except OperationalError as error:
            if "deadlock" not in str(error):
                raise
            log.info("projection %s deadlocked with another process; reading again", self.name)
            self.load_position()
            return
        self.position = events[-1][0]

    def state(self) -> RunnerState:
        return RunnerState(
            self.name, self.projection.role, self.position, self.error, self.failures
        )


#: statements that return nothing: held, and sent with the next one that does (or at commit)
HELD = ("INSERT", "UPDATE", "DELETE")


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


def _move(tx: Tx, name: str, old: int, new: int) -> None:
    tx.execute(
        "UPDATE projection_tracking SET position = ? WHERE name = ? AND position = ?",
        (new, name, old),
    )
    if tx.rowcount != 1:
        raise PositionMoved(name)


#: the views applying one page side by side on PostgreSQL (each on a pooled connection,
#: so a few: the pool serves the commands too)
APPLIERS = 4
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _appliers() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(APPLIERS, thread_name_prefix="payledger-view")
        return _pool


def catch_up_together(
    store: EventStore,
    db: Database,
    runners: Sequence[Runner],
    moved: Callable[[], None] | None = None,
) -> dict[str, Exception]:
    """Catch the runners up on one read of the log: each page after the lowest of their
    positions is read and decoded once and handed to every runner behind it, which applies
    its part in its own transaction with its own position. A runner that fails stops only
    itself (its error is recorded on it and returned, by name); the others go on.
    `moved` is called after each page."""
    failures: dict[str, Exception] = {}
    positions = {
        str(r["name"]): int(r["position"])
        for r in db.query("SELECT name, position FROM projection_tracking")
    }
    active: list[Runner] = []
    for runner in runners:
        with runner.lock:
            runner.position = positions.get(runner.name, 0)
        active.append(runner)
    while active:
        start = min(r.position for r in active)
        try:
            notifications = store.recorder.select_notifications(
                start=start, limit=PAGE, inclusive_of_start=False
            )
            events = [(n.id, store.mapper.to_domain_event(n)) for n in notifications]
        except Exception as error:
            for runner in active:
                runner._failed(error)
                failures[runner.name] = error
            return failures
        if not events:
            break
        last = events[-1][0]

        apply = partial(_apply_page, start=start, events=events, failures=failures)

        if db.postgres and len(active) > 1:
            # side by side, each on its own connection: a page costs about the slowest
            # view's round trips, not the sum of all of them
            list(_appliers().map(apply, active))
        else:
            for runner in active:
                apply(runner)
        active = [r for r in active if r.name not in failures]
        if moved is not None:
            moved()
        if len(events) < PAGE and all(r.position >= last for r in active):
            break
    for runner in active:
        runner._recovered()
    return failures


def _apply_page(
    runner: Runner, *, start: int, events: list[tuple[int, Any]], failures: dict[str, Exception]
) -> None:
    """The runner's part of a page read from after `start`; a failure is recorded."""
    with runner.lock:
        if runner.position < start:
            return  # moved back meanwhile (rebuilt): the next page starts at it
        behind = [(i, e) for i, e in events if i > runner.position]
        if not behind:
            return
        try:
            runner._apply(behind)
        except Exception as error:
            runner._failed(error)
            failures[runner.name] = error


class Projector:
    """The runners of every projection, and the background thread that drives them."""

    def __init__(
        self,
        store: EventStore,
        db: Database,
        projections: Sequence[Projection],
        *,
        elsewhere: bool = False,
    ) -> None:
        self.store = store
        self.db = db
        self.projections = list(projections)
        #: the runners run in other processes: wait for the positions they commit
        self.elsewhere = elsewhere
        self.runners = [Runner(store, db, p) for p in self.projections]
        for projection in self.projections:
            self.create(projection)
        for runner in self.runners:
            runner.load_position()
        self._wake = threading.Event()
        self._moved = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def create(self, projection: Projection) -> None:
        """Create the projection's tables; when their definition changed, start it afresh."""
        schema = schema_hash(projection)
        existing = self.db.query_one(
            "SELECT schema FROM projection_tracking WHERE name = ?", (projection.name,)
        )
        if existing is not None and existing["schema"] == schema:
            return  # no DDL: it would lock tables other processes are writing
        with self.db.transaction() as tx:
            if self.db.postgres:  # processes starting at once make the tables once
                tx.execute("SELECT pg_advisory_xact_lock(?)", (CREATE_LOCK_KEY,))
            row = tx.one(
                "SELECT schema FROM projection_tracking WHERE name = ?", (projection.name,)
            )
            if row is not None and row["schema"] == schema:
                return  # another process made them meanwhile
            if row is not None and row["schema"] != schema:
                log.info("projection %s changed its tables: rebuilding it", projection.name)
                self._drop(tx, projection)
            for statement in projection.ddl:
                tx.execute(statement)
            tx.execute(
                "INSERT INTO projection_tracking (name, position, schema) VALUES (?, 0, ?) "
                "ON CONFLICT (name) DO NOTHING",
                (projection.name, schema),
            )

    @staticmethod
    def _drop(tx: Tx, projection: Projection) -> None:
        for table in projection.tables:
            tx.execute(f"DROP TABLE IF EXISTS {table}")
        tx.execute("DELETE FROM projection_tracking WHERE name = ?", (projection.name,))

    def runner(self, name: str) -> Runner:
        return next(r for r in self.runners if r.name == name)

    def position(self, name: str) -> int:
        return self.positions().get(name, 0)

    def positions(self) -> dict[str, int]:
        rows = self.db.query("SELECT name, position FROM projection_tracking")
        return {str(r["name"]): int(r["position"]) for r in rows}

    def states(self) -> list[RunnerState]:
        if self.elsewhere:
            self._refresh()
        return [r.state() for r in self.runners]

    def only(self, roles: Sequence[str]) -> Projector:
        """A projector of the runners of these roles (view, work, intake) alone, for a
        process that runs them."""
        return Projector(self.store, self.db, [p for p in self.projections if p.role in roles])

    def _refresh(self) -> None:
        """The positions, errors and failure counts the runners' own processes committed."""
        rows = {
            str(r["name"]): r
            for r in self.db.query(
                "SELECT name, position, error, failures FROM projection_tracking"
            )
        }
        for runner in self.runners:
            row = rows.get(runner.name)
            runner.position = int(row["position"]) if row else 0
            runner.error = row["error"] if row else None
            runner.failures = int(row["failures"]) if row else 0

    def catch_up(self) -> int:
        """Bring every runner up to date now, each on its own; returns the lowest position.
        Every runner runs even when one fails; the first failure is then raised."""
        self.build_fresh()
        failures = catch_up_together(self.store, self.db, self.runners, self._notify_moved)
        self._notify_moved()
        failure = next((failures[r.name] for r in self.runners if r.name in failures), None)
        if failure is not None:
            raise failure
        return min((r.position for r in self.runners), default=0)

    def catch_up_quietly(self) -> None:
        """Bring the views up to date, or wait for the background thread to; a failing
        runner is recorded (and shown on /healthz and /metrics), not raised."""
        target = self.store.last_position()
        if self.running or self.elsewhere:
            self.wait_for(target)
            return
        self.build_fresh()
        # a failure is kept (and logged) on its runner
        catch_up_together(self.store, self.db, self.runners, self._notify_moved)
        self._notify_moved()

    def wait_for(self, position: int, bound: float | None = None) -> bool:
        """Wait until every runner that is not failing has reached `position` (at most
        `bound` seconds); without the background thread, catch up here instead. When the
        runners run elsewhere, read their positions until they get there."""
        bound = WAIT_BOUND if bound is None else bound
        if self.elsewhere:
            return self._poll_until(position, bound)
        if not self.running:
            self.catch_up_quietly()
            return self._reached(position)
        deadline = time.monotonic() + bound
        self._wake.set()
        with self._moved:
            while not self._reached(position):
                left = deadline - time.monotonic()
                if left <= 0:
                    log.warning("the views did not reach position %s in %ss", position, bound)
                    return False
                self._moved.wait(left)
        return True

    def _poll_until(self, position: int, bound: float) -> bool:
        deadline = time.monotonic() + bound
        pause = 0.002
        while True:
            self._refresh()
            if self._reached(position):
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                log.warning("the views did not reach position %s in %ss", position, bound)
                return False
            time.sleep(min(pause, left))
            pause = min(pause * 2, 0.05)

    def _reached(self, position: int) -> bool:
        return all(r.position >= position for r in self.runners if r.error is None)

    def _notify_moved(self) -> None:
        with self._moved:
            self._moved.notify_all()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, interval: float = 0.5) -> None:
        """Drive the runners from a background thread beside the API (not when they run
        in processes of their own)."""
        if self.running or self.elsewhere:
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, args=(interval,), name="payledger-projections", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._thread = None

    def _run(self, interval: float) -> None:
        while not self._stop.is_set():
            self._wake.wait(interval)
            self._wake.clear()
            now = time.monotonic()
            due = [r for r in self.runners if r.error is None or now >= r.retry_at]
            # a failure is kept on its runner; the others go on
            catch_up_together(self.store, self.db, due, self._notify_moved)
            self._notify_moved()

    def rebuild(self, name: str) -> None:
        """Replay one projection from position 0: built in memory with its own handlers,
        then its tables replaced at once (projections/rebuild.py); then caught up. One
        without tables of its own (the writeback intake writes durable, keyed tables) is
        replayed through the live database instead."""
        projection = next(p for p in self.projections if p.name == name)
        runner = self.runner(name)
        if projection.tables:
            self.install(bulk.last_position(self.store), [projection])
        else:
            with runner.lock, self.db.transaction() as tx:
                self._drop(tx, projection)
            self.create(projection)
        runner.catch_up()

    def build_fresh(self) -> None:
        """The views starting afresh on a long log (at position 0: new, or their tables
        changed), built in memory together and copied in; a failure is logged and leaves
        them to catch up event by event (where it is recorded on the runner, which is then
        not built in memory again)."""
        fresh = [
            r.projection
            for r in self.runners
            if r.projection.tables and r.position == 0 and r.error is None
        ]
        if not fresh:
            return
        stop = bulk.last_position(self.store)
        if stop < BULK_FROM:
            return
        names = ", ".join(p.name for p in fresh)
        log.info("building %s in memory up to position %s", names, stop)
        try:
            self.install(stop, fresh)
        except Exception:
            log.exception("building %s in memory failed; they catch up event by event", names)

    def install(
        self,
        stop: int,
        projections: Sequence[Projection],
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        """Build the projections up to `stop` in memory and replace their tables and
        positions with the result; their runners wait meanwhile (only for the copy)."""
        if not all(p.tables for p in projections):
            raise ValueError("only projections with tables of their own are built in memory")
        with bulk.build(self.store, projections, stop, progress) as scratch:
            runners = [self.runner(p.name) for p in projections]
            with ExitStack() as held:
                for runner in runners:
                    held.enter_context(runner.lock)
                schemas = {p.name: schema_hash(p) for p in projections}
                bulk.install(self.db, scratch, projections, stop, schemas)
                for runner in runners:
                    runner.load_position()
        self._notify_moved()
