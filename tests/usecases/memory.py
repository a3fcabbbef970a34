"""The ledger in memory, as the use cases ask for it (their `Needs`, services/context.py).

- **Aggregates** in a dict: each aggregate's events, kept in their stored form (the
  event library's own mapper encodes and decodes them, as the store does), under the
  store's rule: a version is taken once, so a save whose aggregate another writer saved
  first fails with the library's IntegrityError and saves nothing, and `change` decides
  again on the aggregate as saved (the service's own `Components.change`, run over
  this ledger).
- **The views** are the real projections (services/bootstrap.py's list, and the
  writeback intake) on an SQLite database in memory: every save applies its events to
  them in one transaction with its attached statements, as the store applies a
  command's events inline. The database's tables (the durable ones, by the Alembic
  revisions, and the views') are made once per process in a file and copied into memory
  for each ledger, so a ledger costs milliseconds.
- **The outside**: a clock the test moves, the sandbox processor (or a faulty one), email
  and text recorders, and a PMS in memory behind the writer port.
"""

from __future__ import annotations

import sqlite3
import tempfile
import threading
from collections.abc import Callable, Container, Iterator, Sequence
from contextlib import AbstractContextManager, closing, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any, Generic, TypeVar, cast
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    IntegrityError,
    JSONTranscoder,
    Mapper,
    StoredEvent,
    UUIDAsHex,
)

from adapters.bank_calendar import FederalReserveHolidays
from adapters.clock import Clock, SandboxClock
from adapters.due_work import DueWorkStatus
from adapters.messaging.email import Email, EmailSender, SendFailed
from adapters.messaging.sms import Sms, SmsSender
from adapters.migrations import migrate
from adapters.persistence import Statement
from adapters.pms.addresses import AllowedHosts
from adapters.pms.connections import PmsConnections
from adapters.pms.journal import Journal
from adapters.pms.port import Commlog, PmsEntry, PmsWriteError, PmsWriter, Written
from adapters.processor.port import CardProcessor
from adapters.processor.sandbox import SandboxProcessor
from adapters.reads import Reads
from adapters.sealed import Sealer
from adapters.sql import Database
from adapters.store import StoreConfig, mutate_all, open_store
from domain.base import PracticeAggregate
from domain.errors import NotFound
from projections.base import Projection
from projections.catalog import all_projections
from projections.runner import Projector
from projections.writeback_intake import WritebackIntake
from services.context import Components, noun
from services.settings import Settings
from services.workers.writeback import take_in

A = TypeVar("A", bound=PracticeAggregate)
R = TypeVar("R")
M = TypeVar("M")

SECRET = b"use-case tests: a key of their own"


def projections() -> list[Projection]:
    """The views the service keeps, and the embedded default's writeback intake."""
    return [*all_projections(), WritebackIntake(take_in)]


@lru_cache(maxsize=1)
def template() -> sqlite3.Connection:
    """A database with every table the ledger's SQLite file has (the durable tables by
    their migrations, the views' by their projections), made once per process in a file
    and kept in memory."""
    with tempfile.TemporaryDirectory(prefix="payledger-usecases-") as folder:
        path = Path(folder) / "template.sqlite3"
        store = open_store(StoreConfig(None, str(path)))
        try:
            migrate(store)
            Projector(store, store.database(), projections())
        finally:
            store.close()
        kept = sqlite3.connect(":memory:", check_same_thread=False)
        with closing(sqlite3.connect(path)) as made:
            made.backup(kept)
    return kept


class OneConnection:
    """The event library's SQLite datastore as `adapters.sql.Database` uses it (a cursor
    in a transaction), over one connection to a database in memory."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.lock = threading.RLock()

    @contextmanager
    def transaction(self, commit: bool) -> Iterator[sqlite3.Cursor]:
        with self.lock:
            cursor = self.conn.cursor()
            cursor.execute("BEGIN")
            try:
                yield cursor
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
            else:
                cursor.execute("COMMIT" if commit else "ROLLBACK")
            finally:
                cursor.close()


def memory_database() -> Database:
    """A fresh copy of the template, in memory."""
    conn = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
    template().backup(conn)
    conn.row_factory = sqlite3.Row
    return Database(OneConnection(conn), postgres=False)


def event_mapper() -> Mapper[UUID]:
    """The mapper the event store's application makes (JSON, with its transcodings)."""
    transcoder = JSONTranscoder()
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
        transcoder.register(transcoding)
    return Mapper(transcoder=transcoder)


class EventLog:
    """Every aggregate's stored events by id, and the ordered log of them all."""

    def __init__(self) -> None:
        self.streams: dict[UUID | str, list[StoredEvent]] = {}
        self.log: list[StoredEvent] = []

    def check(self, events: Sequence[StoredEvent]) -> None:
        """As the store's unique (aggregate, version): each event's version must be the
        next of its aggregate, else nothing is saved."""
        versions: dict[UUID | str, int] = {k: len(s) for k, s in self.streams.items()}
        for event in events:
            expected = versions.get(event.originator_id, 0) + 1
            if event.originator_version != expected:
                raise IntegrityError(
                    f"version {event.originator_version} of {event.originator_id} is taken"
                )
            versions[event.originator_id] = expected

    def append(self, events: Sequence[StoredEvent]) -> None:
        for event in events:
            self.streams.setdefault(event.originator_id, []).append(event)
            self.log.append(event)


@dataclass
class Handed(Generic[M]):
    """Messages as handed over; the next `failing` hand-overs are refused."""

    sent: list[M] = field(default_factory=list)
    failing: int = 0

    def hand_over(self, message: M, what: str) -> str:
        if self.failing > 0:
            self.failing -= 1
            raise SendFailed(f"the {what} was refused (test)")
        self.sent.append(message)
        return f"{what}-{len(self.sent)}"


class Mailbox(Handed[Email], EmailSender):
    """Emails as the mail server took them."""

    def send(self, message: Email) -> str:
        return self.hand_over(message, "email")


class Phone(Handed[Sms], SmsSender):
    """Texts as the gateway took them."""

    def send(self, message: Sms) -> str:
        return self.hand_over(message, "text")


@dataclass
class PmsLedger(PmsWriter):
    """A PMS's ledger in memory, behind the writer port: entries and commlogs by marker
    (found again by it, as Open Dental's are by the `[ref:…]` in their note). `refusing`:
    every write is refused with this reason (a wrong key: nothing lands, and trying again
    will not help); `answers_lost`: the next writes land, and their answers are lost (the
    outcome is unknown until read back)."""

    entries: dict[str, PmsEntry] = field(default_factory=dict)
    commlogs: dict[str, Commlog] = field(default_factory=dict)
    posts: list[str] = field(default_factory=list)
    refusing: str | None = None
    answers_lost: int = 0

    def reference(self, marker: str) -> Written:
        return Written(f"PayNum {list(self.entries).index(marker) + 1}")

    def post_entry(self, entry: PmsEntry) -> Written:
        self.posts.append(entry.marker)
        if self.refusing is not None:
            raise PmsWriteError(self.refusing, retryable=False)
        self.entries[entry.marker] = entry
        if self.answers_lost > 0:
            self.answers_lost -= 1
            raise PmsWriteError(
                "the connection dropped (test)", retryable=True, outcome_unknown=True
            )
        return self.reference(entry.marker)

    def find_entry(self, entry: PmsEntry) -> Written | None:
        found = self.entries.get(entry.marker)
        return self.reference(entry.marker) if found is not None else None

    def post_commlog(self, commlog: Commlog) -> Written | None:
        self.commlogs[commlog.marker] = commlog
        return Written(f"CommlogNum {len(self.commlogs)}")

    def find_commlog(self, commlog: Commlog) -> Written | None:
        return Written("CommlogNum") if commlog.marker in self.commlogs else None


class MemoryLedger:
    """Every part the use cases ask for (the union of their `Needs`), in memory."""

    def __init__(
        self,
        clock: Clock,
        processor: CardProcessor | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.clock = clock
        self.processor: CardProcessor = processor or SandboxProcessor()
        self.settings = settings or Settings(
            data_dir=Path(tempfile.gettempdir()) / "payledger-usecases", secret_key=SECRET.decode()
        )
        self.secret = SECRET
        self.email = Mailbox()
        self.sms = Phone()
        self.bank_holidays: Container[date] = FederalReserveHolidays()
        self.db = memory_database()
        self.reads = Reads(self.db)
        self.journal = Journal(self.db)
        self.pms_connections = PmsConnections(
            self.db, Sealer(SECRET, "pms-connection"), AllowedHosts()
        )
        self.due_work = DueWorkStatus(self.db)
        self.events = EventLog()
        self.mapper = event_mapper()
        self.views = projections()
        self._saving = threading.Lock()
        #: writes of "another writer", each run just before the next save of its aggregate
        self._first: dict[UUID, Callable[[], object]] = {}

    @property
    def sandbox_clock(self) -> SandboxClock | None:
        return None

    def before_next_save_of(self, aggregate_id: UUID, write: Callable[[], object]) -> None:
        """Another writer saves the aggregate just before the next save of it here (which
        then meets a version conflict, as two processes racing would)."""
        self._first[aggregate_id] = write

    # -- Aggregates ------------------------------------------------------------------

    def load(self, aggregate_id: UUID) -> Any:
        stored = self.events.streams.get(aggregate_id)
        if not stored:
            raise AggregateNotFoundError(aggregate_id)
        return mutate_all(None, (self.mapper.to_domain_event(e) for e in stored))

    def history(self, aggregate_id: UUID) -> list[Any]:
        """An aggregate's events, oldest first, as stored."""
        return [self.mapper.to_domain_event(e) for e in self.events.streams.get(aggregate_id, [])]

    def get(self, kind: type[A], aggregate_id: UUID, practice_id: UUID | None) -> A:
        found = self.find(kind, aggregate_id)
        if found is None or (practice_id is not None and found.practice_id != practice_id):
            raise NotFound(f"no {noun(kind)} {aggregate_id}")
        return found

    def find(self, kind: type[A], aggregate_id: UUID) -> A | None:
        try:
            aggregate = self.load(aggregate_id)
        except AggregateNotFoundError:
            return None
        return aggregate if isinstance(aggregate, kind) else None

    def get_many(
        self, kind: type[A], aggregate_ids: list[UUID], practice_id: UUID
    ) -> dict[UUID, A]:
        loaded = {i: self.find(kind, i) for i in aggregate_ids}
        return {i: a for i, a in loaded.items() if a is not None and a.practice_id == practice_id}

    def save(
        self, *aggregates: PracticeAggregate, show: bool = True, attach: Sequence[Statement] = ()
    ) -> int:
        """The aggregates' pending events, all or none: the version check first, then the
        attached statements and the views in one transaction, then the log."""
        for aggregate in aggregates:
            other = self._first.pop(aggregate.id, None)
            if other is not None:
                other()
        events = [e for a in aggregates if a is not None for e in a.collect_events()]
        stored = [self.mapper.to_stored_event(e) for e in events]
        with self._saving:
            self.events.check(stored)
            first = len(self.events.log) + 1
            with self.db.transaction() as tx:
                for sql, params in attach:
                    tx.execute(sql, params)
                for position, event in enumerate(stored, start=first):
                    decoded = self.mapper.to_domain_event(event)
                    for view in self.views:
                        view.process(tx, decoded, position)
                if stored:
                    tx.execute(
                        "UPDATE projection_tracking SET position = ?", (first + len(stored) - 1,)
                    )
            self.events.append(stored)
            return len(self.events.log) if stored else 0

    def change(
        self,
        kind: type[A],
        aggregate_id: UUID,
        practice_id: UUID | None,
        decide: Callable[[A], R],
        *,
        show: bool = True,
    ) -> R:
        """The service's own command shape (`Components.change`: load, decide, save what
        was recorded, and all of it again on a version conflict), over this ledger."""
        real = cast(Components, self)  # it uses only `get` and `save`, which are here
        return Components.change(real, kind, aggregate_id, practice_id, decide, show=show)

    def show(self, position: int) -> None:
        """The views show every save as it returns (applied in its transaction)."""

    def catch_up(self) -> None:
        """Nothing is ever behind."""

    def unwaited(self) -> AbstractContextManager[None]:
        return nullcontext()
