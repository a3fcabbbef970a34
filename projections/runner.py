"""Runs projections over the event store's ordered notification log.

A command's events are applied to the views **inline**, in the transaction that inserts
them (`Projector.apply_inline`, the event store's hook: adapters/persistence.py), for
every view whose position is exactly the last position before them; the command's own
read of its writes then waits for nothing. A view that is behind (new, rebuilt, failing,
or left behind by a process that does not apply views inline) is caught up by its
**runner**, which applies the log in order from its position in ``projection_tracking``.

The runners behind are caught up together (``catch_up_together``): each page of
notifications after the lowest of their positions is read and decoded once and applied
to every runner behind it in ONE transaction, each view under a savepoint of its own
with its own position (so a view that fails is rolled back alone and the others move
on, at one commit per page). Positions move by compare-and-set, inline and in the
runners alike, so two processes never apply an event twice (the loser rolls back its
savepoint and reads again). ``projection_tracking`` itself is a durable table
(adapters/migrations/); each projection's own tables are created from its definition
and rebuilt when that changes.

Runners are independent: a projection that fails on an event stops only itself. Its
error is kept (``/healthz`` and ``/metrics`` show it), it is no longer applied inline,
and it is tried again after a growing pause, while every other view, the work lists and
the writeback intake go on.

In a server the runners are driven by one background thread beside the API
(``Projector.start``); a command whose views were not all applied inline waits, with a
bound, until they reach the position of its events (``wait_for``). Without the thread
(tests, the CLI) the caller catches the runners up itself. In production the runners
run in processes of their own (``payledger projections run``, ``--role`` to split the
display views, the work lists and the intake): a projector made ``elsewhere`` runs no
runner and waits by reading the positions those processes commit (the API processes
still apply their own commands' events inline).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from eventsourcing.persistence import Notification, OperationalError

from adapters.sql import Database, PipelinedTx, Tx
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

    def state(self) -> RunnerState:
        return RunnerState(
            self.name, self.projection.role, self.position, self.error, self.failures
        )


def _move(tx: Tx, name: str, old: int, new: int) -> None:
    tx.execute(
        "UPDATE projection_tracking SET position = ? WHERE name = ? AND position = ?",
        (new, name, old),
    )
    if tx.rowcount != 1:
        raise PositionMoved(name)


def catch_up_together(
    store: EventStore,
    db: Database,
    runners: Sequence[Runner],
    moved: Callable[[], None] | None = None,
) -> dict[str, Exception]:
    """Catch the runners up on one read of the log: each page after the lowest of their
    positions is read and decoded once, and applied to every runner behind it in ONE
    transaction, each view under a savepoint of its own with its own position: a view
    that fails is rolled back alone (its error is recorded on it and returned, by name)
    and the others move on, at one commit per page. `moved` is called after each page."""
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
        _apply_page(db, active, start, events, failures)
        active = [r for r in active if r.name not in failures]
        if moved is not None:
            moved()
        if len(events) < PAGE and all(r.position >= last for r in active):
            break
    for runner in active:
        runner._recovered()
    return failures


def _apply_page(
    db: Database,
    runners: Sequence[Runner],
    start: int,
    events: list[tuple[int, Any]],
    failures: dict[str, Exception],
) -> None:
    """One transaction for the page: every runner behind applies its part and moves its
    position under a savepoint of its own. A runner that fails is rolled back to its
    savepoint and recorded as failed (after the commit); one whose position another
    process moved first reads it again."""
    held = ExitStack()
    applied: list[tuple[Runner, int]] = []
    failed: list[tuple[Runner, Exception]] = []
    reread: list[Runner] = []
    try:
        with held:
            for runner in runners:
                held.enter_context(runner.lock)
            with db.transaction() as plain:
                for runner in runners:
                    if runner.position < start:
                        continue  # moved back meanwhile (rebuilt): the next page starts at it
                    behind = [(i, e) for i, e in events if i > runner.position]
                    if not behind:
                        continue
                    outcome = apply_under_savepoint(
                        plain, db.postgres, runner, runner.position, behind
                    )
                    if outcome is None:
                        applied.append((runner, behind[-1][0]))
                    elif isinstance(outcome, PositionMoved):
                        reread.append(runner)
                    else:
                        failed.append((runner, outcome))
            for runner, position in applied:
                runner.position = position
    except Exception as error:  # the page's transaction itself: every view of it
        if not (isinstance(error, OperationalError) and "deadlock" in str(error)):
            for runner in runners:
                runner._failed(error)
                failures[runner.name] = error
            return
        log.info("the views' page deadlocked with another process; reading again")
        reread, failed = list(runners), []
    for runner in reread:
        runner.load_position()
    for runner, problem in failed:
        runner._failed(problem)
        failures[runner.name] = problem


def wants(projection: Projection, event: Any) -> bool:
    """Whether the projection does anything with the event (one with its own `process`,
    such as the event feed, takes every event)."""
    return type(projection).process is not Projection.process or (
        type(event) in projection._handlers
    )


def apply_inline_savepoint(
    page: Tx, runner: Runner, events: list[tuple[int, Any]]
) -> Exception | None:
    """Apply events to one view inline, under a savepoint (its position was moved by the
    caller): None when applied, else the error, the view's part rolled back. On
    PostgreSQL the savepoint, the view's writes and the release go in one round trip."""
    if isinstance(page, PipelinedTx):
        page.memo = {}
    page.execute("SAVEPOINT view_inline")
    try:
        for position, event in events:
            runner.projection.process(page, event, position)
        page.execute("RELEASE SAVEPOINT view_inline")
        if isinstance(page, PipelinedTx):
            page.flush()  # a broken write is raised here, inside this view's savepoint
    except Exception as error:
        if isinstance(page, PipelinedTx):
            unsent, page._held = page._held, []
            if any(sql.startswith("SAVEPOINT") for sql, _ in unsent):
                return error  # nothing of this view reached the database
        page.execute("ROLLBACK TO SAVEPOINT view_inline")
        page.execute("RELEASE SAVEPOINT view_inline")
        return error
    return None


def apply_under_savepoint(
    plain: Tx, postgres: bool, runner: Runner, old: int, events: list[tuple[int, Any]]
) -> Exception | None:
    """Apply events to one view inside the caller's transaction, its position moved from
    `old` to the last event's by compare-and-set, under a savepoint: None when applied,
    else the error (PositionMoved when another process got there first), the view's
    part rolled back and the transaction still usable."""
    plain.execute("SAVEPOINT view_page")
    tx = PipelinedTx(plain) if postgres else plain
    try:
        _move(tx, runner.name, old, events[-1][0])
        for position, event in events:
            runner.projection.process(tx, event, position)
        if isinstance(tx, PipelinedTx):
            tx.flush()
    except Exception as error:
        plain.execute("ROLLBACK TO SAVEPOINT view_page")
        plain.execute("RELEASE SAVEPOINT view_page")
        return error
    plain.execute("RELEASE SAVEPOINT view_page")
    return None


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

    def apply_inline(
        self, tx: Tx, head: int, written: list[Notification]
    ) -> Callable[[], None] | None:
        """The event store's hook (adapters/persistence.py), inside the transaction that
        inserted `written` right after position `head`: every view whose position is
        exactly `head` (and not failing) applies them here, under a savepoint of its own,
        its position moved with them. A view behind, failing or being rebuilt is left to
        its runner, which catches it up in order. Returns what to do once committed: the
        runners' positions in this process follow, so a command's read of its own writes
        waits for nothing."""
        events = [(n.id, self.store.mapper.to_domain_event(n)) for n in written]
        last = events[-1][0]
        page = PipelinedTx(tx) if self.db.postgres else tx
        # the views at `head` move with the events (compare-and-set, as the runners do)
        # (only this projector's views: a view another process keeps is not moved here)
        names = [r.name for r in self.runners]
        marks = ", ".join("?" for _ in names)
        rows = page.execute(
            "UPDATE projection_tracking SET position = ? WHERE position = ? AND error IS NULL "  # noqa: S608
            f"AND name IN ({marks}) RETURNING name",
            (last, head, *names),
        )
        at_head = {str(r["name"]) for r in rows}
        moved: list[Runner] = []
        for runner in self.runners:
            if runner.name not in at_head:
                continue
            mine = [e for e in events if wants(runner.projection, e[1])]
            if mine:
                failure = apply_inline_savepoint(page, runner, mine)
                if failure is not None:
                    page.execute(
                        "UPDATE projection_tracking SET position = ? WHERE name = ?",
                        (head, runner.name),
                    )
                    log.warning(
                        "projection %s was not applied inline (%s: %s); its runner catches it up",
                        runner.name,
                        type(failure).__name__,
                        failure,
                    )
                    continue
            moved.append(runner)
        if isinstance(page, PipelinedTx):
            page.flush()

        def committed() -> None:
            for runner in moved:
                if runner.position < last:
                    runner.position = last
            if moved:
                self._notify_moved()

        return committed

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
        if self._reached(position):  # applied inline with the events: nothing to wait for
            return True
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
            try:
                catch_up_together(self.store, self.db, due, self._notify_moved)
            except Exception:  # the database away (a restart): the next round tries again
                log.exception("the views could not catch up; trying again")
                self._stop.wait(min(1.0, 10 * interval))
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
