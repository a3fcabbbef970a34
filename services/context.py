"""The components the use cases are given, the roles they ask for, and the load/save helpers."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Container, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date
from typing import Protocol, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from adapters.accounts import Accounts
from adapters.clock import Clock, SandboxClock
from adapters.due_work import DueWorkStatus
from adapters.effects import deciding
from adapters.idempotency_keys import IdempotencyKeys
from adapters.messaging.email import EmailSender
from adapters.messaging.sms import SmsSender
from adapters.pay_attempts import PayAttemptWindows
from adapters.persistence import Statement, attached
from adapters.pms.connections import PmsConnections
from adapters.pms.journal import Journal
from adapters.processor.port import CardProcessor
from adapters.processor_keys import ProcessorKeys
from adapters.reads import Reads
from adapters.relay_positions import RelayPositions
from adapters.store import EventStore
from adapters.stripe_events import StripeEvents
from domain.base import PracticeAggregate
from domain.errors import Conflict, NotFound
from projections.replay import ViewTables
from projections.runner import Projector
from services.settings import Settings

log = logging.getLogger("payledger")

_unwaited: ContextVar[bool] = ContextVar("unwaited", default=False)

A = TypeVar("A", bound=PracticeAggregate)
R = TypeVar("R")


@dataclass
class Components:
    """What the use cases, routes, pages and workers are given (built once, by
    services/bootstrap.py): the event store, the views' runners, the outside services,
    and the read side and durable tables as query objects. No database or connection is
    among them. Each use-case module states the part it needs as a protocol (`Aggregates`,
    `Reading`, `Timed`, …, below), so that its functions can use nothing else."""

    settings: Settings
    store: EventStore
    clock: Clock
    processor: CardProcessor
    email: EmailSender
    projector: Projector
    bank_holidays: Container[date]
    sms: SmsSender
    secret: bytes
    journal: Journal
    pms_connections: PmsConnections
    accounts: Accounts
    reads: Reads
    idempotency_keys: IdempotencyKeys
    pay_attempts: PayAttemptWindows
    stripe_events: StripeEvents
    due_work: DueWorkStatus
    relay_positions: RelayPositions
    views: ViewTables
    #: each practice's own key at the processor (Clearent), sealed; None on the others
    processor_keys: ProcessorKeys | None = None

    @property
    def sandbox_clock(self) -> SandboxClock | None:
        return self.clock if isinstance(self.clock, SandboxClock) else None

    def get(self, kind: type[A], aggregate_id: UUID, practice_id: UUID | None) -> A:
        """Load an aggregate; another practice's aggregate is as absent as a missing one."""
        try:
            aggregate: object = self.store.load(aggregate_id)
        except AggregateNotFoundError:
            raise NotFound(f"no {noun(kind)} {aggregate_id}") from None
        if not isinstance(aggregate, kind) or (
            practice_id is not None and aggregate.practice_id != practice_id
        ):
            raise NotFound(f"no {noun(kind)} {aggregate_id}")
        return aggregate

    def find(self, kind: type[A], aggregate_id: UUID) -> A | None:
        try:
            aggregate: object = self.store.load(aggregate_id)
        except AggregateNotFoundError:
            return None
        return aggregate if isinstance(aggregate, kind) else None

    def get_many(
        self, kind: type[A], aggregate_ids: list[UUID], practice_id: UUID
    ) -> dict[UUID, A]:
        """Load many aggregates of one practice in a few queries; an id that is missing,
        of another kind or of another practice is absent from the answer."""
        return {
            key: aggregate
            for key, aggregate in self.store.get_many(aggregate_ids).items()
            if isinstance(aggregate, kind) and aggregate.practice_id == practice_id
        }

    def save(
        self, *aggregates: PracticeAggregate, show: bool = True, attach: Sequence[Statement] = ()
    ) -> int:
        """Save all pending events in one transaction, then wait (with a bound) until the
        views show them, so that the command's answer and the next read agree. Returns the
        position of the last event saved (0 when there was none). A command saving in
        several steps passes `show=False` and calls `show` once with the last position.
        `attach`: statements of the durable tables (made by their adapters) that commit
        with the events or not at all."""
        with attached(*attach):
            recordings = self.store.save(*aggregates)
        position = max((r.notification.id for r in recordings), default=0)
        if show:
            self.show(position)
        return position

    def change(
        self,
        kind: type[A],
        aggregate_id: UUID,
        practice_id: UUID | None,
        decide: Callable[[A], R],
        *,
        show: bool = True,
    ) -> R:
        """The shape of a command on one aggregate: load it, decide (its methods check a
        rule and record events), save what was recorded, answer what `decide` returned.
        On a version conflict all of it runs again with the aggregate as saved by the
        other writer: decisions only, since no call to a processor or a PMS may be made
        inside (adapters/effects.py). Nothing recorded, nothing saved."""

        def attempt() -> R:
            aggregate = self.get(kind, aggregate_id, practice_id)
            answer = decide(aggregate)
            if aggregate.pending_events:
                self.save(aggregate, show=show)
            return answer

        return retry_on_conflict(attempt)

    def show(self, position: int) -> None:
        """Wait (with a bound) until the views show the events up to `position`; not
        inside `unwaited` while the views' runners work in the background or elsewhere."""
        if not self.settings.maintain_views or not position:
            return
        if _unwaited.get() and (self.projector.running or self.projector.elsewhere):
            return
        self.projector.wait_for(position)

    @contextmanager
    def unwaited(self) -> Iterator[None]:
        """Work that nobody waits on (the writeback worker): its saves do not wait for
        the views, which show them as soon as their background runners get there."""
        token = _unwaited.set(True)
        try:
            yield
        finally:
            _unwaited.reset(token)

    def catch_up(self) -> None:
        """Bring the views up to date. The command's events are already saved: a view that
        fails to apply them must not fail (or repeat) the command; its runner keeps the
        error (shown on /healthz and /metrics) and tries again, the other views go on."""
        self.projector.catch_up_quietly()


# -- the parts, as the use cases ask for them ----------------------------------------------
#
# Each use-case module names what it needs as one protocol made of these roles, e.g.
# ``class Needs(Aggregates, Reading, Timed, Protocol)``, and its functions take
# ``ctx: Needs``: the type checker then refuses any use of a part the module did not ask
# for. `Components` has every part; the routes, pages and workers pass it on.


class Aggregates(Protocol):
    """Load and save aggregates; wait until the views show what was saved."""

    def get(self, kind: type[A], aggregate_id: UUID, practice_id: UUID | None) -> A: ...
    def find(self, kind: type[A], aggregate_id: UUID) -> A | None: ...
    def get_many(
        self, kind: type[A], aggregate_ids: list[UUID], practice_id: UUID
    ) -> dict[UUID, A]: ...
    def save(
        self, *aggregates: PracticeAggregate, show: bool = True, attach: Sequence[Statement] = ()
    ) -> int: ...
    def change(
        self,
        kind: type[A],
        aggregate_id: UUID,
        practice_id: UUID | None,
        decide: Callable[[A], R],
        *,
        show: bool = True,
    ) -> R: ...
    def show(self, position: int) -> None: ...
    def catch_up(self) -> None: ...
    def unwaited(self) -> AbstractContextManager[None]: ...


class Reading(Protocol):
    """The views' and tables' queries (adapters/reads.py)."""

    @property
    def reads(self) -> Reads: ...


class Timed(Protocol):
    """The clock (per practice in the sandbox)."""

    @property
    def clock(self) -> Clock: ...
    @property
    def sandbox_clock(self) -> SandboxClock | None: ...


class Configured(Protocol):
    @property
    def settings(self) -> Settings: ...


class Charging(Protocol):
    """The card processor."""

    @property
    def processor(self) -> CardProcessor: ...


class Messaging(Protocol):
    """Email and text messages to patients and staff."""

    @property
    def email(self) -> EmailSender: ...
    @property
    def sms(self) -> SmsSender: ...


class Signing(Protocol):
    """The service's secret key (pay-link tokens, cookies)."""

    @property
    def secret(self) -> bytes: ...


class Journaled(Protocol):
    """The writeback journal."""

    @property
    def journal(self) -> Journal: ...


class PmsConnected(Protocol):
    """The practices' PMS connection settings (sealed at rest)."""

    @property
    def pms_connections(self) -> PmsConnections: ...


class AccountsKept(Protocol):
    """Passwords, sign-in attempts and sessions."""

    @property
    def accounts(self) -> Accounts: ...


class Calendared(Protocol):
    """The banks' holidays (deposit dates)."""

    @property
    def bank_holidays(self) -> Container[date]: ...


class DueWorkKept(Protocol):
    @property
    def due_work(self) -> DueWorkStatus: ...


class StripeEventsKept(Protocol):
    @property
    def stripe_events(self) -> StripeEvents: ...


class EventLog(Protocol):
    """The event store itself, read by position (the auditors' tools)."""

    @property
    def store(self) -> EventStore: ...


class ViewsKept(Protocol):
    """The views' tables as a whole: checksums, verified replay, rebuild."""

    @property
    def views(self) -> ViewTables: ...


def noun(kind: type) -> str:
    return {"Payment": "payment", "Patient": "patient", "Practice": "practice"}.get(
        kind.__name__, kind.__name__.lower()
    )


def retry_on_conflict(action: Callable[[], R], attempts: int = 6) -> R:
    """Run a load-decide-save action again when another writer saved the aggregate first
    (after a short random pause, so that racing writers spread out). The action decides and
    saves only: a call to a processor or a PMS inside it is refused (adapters/effects.py)."""
    for attempt in range(attempts):
        try:
            with deciding():
                return action()
        except IntegrityError:
            if attempt == attempts - 1:
                raise Conflict(
                    "another change to the same object was saved at the same moment; try again"
                ) from None
            log.info("version conflict, retrying (attempt %s)", attempt + 2)
            time.sleep(random.uniform(0.002, 0.02) * (attempt + 1))  # noqa: S311
    raise AssertionError("unreachable")
