"""The views applied inline (in the transaction of their events: adapters/persistence.py,
``Projector.apply_inline``) hold exactly what the runners alone build from the log, on
SQLite and PostgreSQL, for any sequence of commands Hypothesis picks: patients
registered, payments collected (approved, declined, several at once: a group commit on
PostgreSQL), voided, refunded and associated, requests sent, time moved on.

Along the way one handler of one projection may fail for a while ("break" .. "mend"):

- while it fails, every other view stays at the head of the log after each command, and
  the failing view stays behind the first event it failed on (never past it);
- once mended, its runner catches it up (``Projector.catch_up``): every view at the head,
  no error kept;
- at the end, every view's tables equal, row for row, the tables its runner builds alone
  from position 0 (the same store, the views dropped and made again, ``inline`` off,
  the in-memory bulk build kept out so that it is the runners' page-by-page path).

``PAYLEDGER_INLINE_EXAMPLES`` sets the number of examples per backend (15 by default).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.processor.port import CardInput
from domain.errors import PaymentsError
from domain.payments import AssociationSource, Method
from domain.practices import DepositAccount, PmsKind
from domain.requests import Channel
from domain.schedule import parse_cutoff
from projections import runner as runner_module
from projections.base import Handler, Projection
from services.app.payments import associate_payment, collect_payment, refund_payment
from services.app.practices import create_practice, register_patient
from services.app.requests import send_request
from services.bootstrap import build_components
from services.context import Components
from services.settings import Settings
from tests.conftest import BACKENDS, OPERATOR_TOKEN, PinnedClock

EXAMPLES = int(os.environ.get("PAYLEDGER_INLINE_EXAMPLES", "15"))
APPROVE = CardInput("4242424242424242", 12, 2030, "123")
DECLINE = CardInput("4000000000000002", 12, 2030, "123")
ACTOR = "user:property"

#: the handlers that may fail for a while: (projection name, event class name); each is
#: reached by the commands below
BREAKABLE = [
    ("transactions", "Payment.Captured"),
    ("transactions", "Payment.Refunded"),
    ("transactions", "Payment.Associated"),
    ("deposits", "Payment.Captured"),
    ("receivables", "Patient.Registered"),
    ("payment_requests", "PaymentRequest.Sent"),
    ("open_intents", "Payment.VoidRequested"),
    ("ledger_queue", "Payment.Associated"),
    ("directory", "Patient.Registered"),
]

step = st.one_of(
    st.tuples(st.just("patient"), st.integers(0, 10**6)),
    st.tuples(st.just("pay"), st.integers(1, 250_000)),
    st.tuples(st.just("decline"), st.integers(1, 9_000)),
    st.tuples(st.just("burst"), st.integers(2, 6)),
    st.tuples(st.just("void"), st.integers(0, 50)),
    st.tuples(st.just("refund"), st.integers(1, 5_000)),
    st.tuples(st.just("associate"), st.integers(0, 50)),
    st.tuples(st.just("request"), st.integers(100, 90_000)),
    st.tuples(st.just("advance"), st.integers(1, 40)),
    st.tuples(st.just("break"), st.integers(0, len(BREAKABLE) - 1)),
    st.tuples(st.just("mend"), st.just(0)),
)


@dataclass
class Breakage:
    """One handler failing: where it was patched, and the positions it failed on."""

    projection: type[Projection]
    event_class: type
    original: Handler
    failed_at: list[int] = field(default_factory=list)


@dataclass
class Ledger:
    ctx: Components
    clock: PinnedClock
    practice_id: UUID
    patients: list[UUID] = field(default_factory=list)
    payments: list[UUID] = field(default_factory=list)
    broken: Breakage | None = None

    # -- the commands ---------------------------------------------------------------------

    def run(self, action: str, n: int) -> None:
        if action == "patient":
            self.patient(n)
        elif action in ("pay", "decline"):
            self.pay(n, APPROVE if action == "pay" else DECLINE)
        elif action == "burst":
            self.burst(n)
        elif action in ("void", "refund") and self.payments:
            target = self.payments[n % len(self.payments)]
            amount = None if action == "void" else n
            self.attempt(
                lambda: refund_payment(
                    self.ctx,
                    practice_id=self.practice_id,
                    payment_id=target,
                    amount=amount,
                    actor=ACTOR,
                )
            )
        elif action == "associate" and self.payments:
            target = self.payments[n % len(self.payments)]
            self.attempt(
                lambda: associate_payment(
                    self.ctx,
                    practice_id=self.practice_id,
                    payment_id=target,
                    source=AssociationSource.MANUAL,
                    pms_reference=f"PayNum {n}",
                    actor=ACTOR,
                )
            )
        elif action == "request" and self.patients:
            patient = self.patients[n % len(self.patients)]
            self.attempt(
                lambda: send_request(
                    self.ctx,
                    practice_id=self.practice_id,
                    patient_id=patient,
                    amount=n,
                    channel=Channel.EMAIL,
                    actor=ACTOR,
                    override_snooze=True,
                )
            )
        elif action == "advance":
            self.clock.move(hours=n)
        elif action == "break":
            self.break_handler(*BREAKABLE[n])
        elif action == "mend":
            self.mend()

    @staticmethod
    def attempt(command: Callable[[], object]) -> None:
        # a rule may refuse it (a refund above what is left, associated twice...)
        with contextlib.suppress(PaymentsError):
            command()

    def patient(self, n: int) -> None:
        created = register_patient(
            self.ctx,
            practice_id=self.practice_id,
            pms_patient_id=f"p{len(self.patients)}-{n}",
            first_name="Ann",
            last_name=f"Lee{n % 7}",
            email=f"ann{n}@example.com",
            phone="+16175550100",
            guarantor_id=None,
            actor=ACTOR,
        )
        self.patients.append(created.id)

    def pay(self, amount: int, card: CardInput) -> None:
        patient = self.patients[amount % len(self.patients)] if self.patients else None
        payment = collect_payment(
            self.ctx,
            practice_id=self.practice_id,
            amount=amount,
            method=Method.VIRTUAL_TERMINAL,
            card=card,
            patient_id=patient,
            actor=ACTOR,
        )
        if card is APPROVE:
            self.payments.append(payment.id)

    def burst(self, k: int) -> None:
        """k payments at once, from k threads (their saves share transactions on
        PostgreSQL, and the views applied inline take all their events together)."""
        errors: list[BaseException] = []
        start = threading.Barrier(k)

        def one(amount: int) -> None:
            try:
                start.wait()
                self.pay(amount, APPROVE)
            except BaseException as error:
                errors.append(error)

        threads = [threading.Thread(target=one, args=(1000 + i,)) for i in range(k)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []

    # -- a view failing for a while -------------------------------------------------------

    def break_handler(self, name: str, event_name: str) -> None:
        if self.broken is not None:
            return  # one failing view at a time
        projection = type(next(p for p in self.ctx.projector.projections if p.name == name))
        event_class = next(k for k in projection._handlers if k.__qualname__ == event_name)
        breakage = Breakage(projection, event_class, projection._handlers[event_class])

        def broken(view: Projection, tx: object, event: object, position: int) -> None:
            breakage.failed_at.append(position)
            raise RuntimeError(f"{name} cannot take {event_name} now")

        projection._handlers[event_class] = broken
        self.broken = breakage

    def restore(self) -> None:
        if self.broken is not None:
            self.broken.projection._handlers[self.broken.event_class] = self.broken.original

    def mend(self) -> None:
        """The handler works again: its runner catches the view up."""
        if self.broken is None:
            return
        self.restore()
        self.broken = None
        self.ctx.projector.catch_up()
        rows = self.ctx.store.database().query(
            "SELECT name FROM projection_tracking WHERE error IS NOT NULL"
        )
        assert rows == [], rows

    # -- what must hold after every command -----------------------------------------------

    def check_positions(self) -> None:
        head = self.ctx.store.last_position()
        positions = self.ctx.projector.positions()
        names = [p.name for p in self.ctx.projector.projections]
        failing = self.broken.projection.name if self.broken is not None else None
        for name in names:
            if name == failing and self.broken is not None and self.broken.failed_at:
                # behind the first event it failed on, never past it
                assert positions[name] < min(self.broken.failed_at), (name, positions, head)
            else:
                assert positions[name] == head, (name, positions, head, failing)


def dump(ctx: Components) -> dict[str, list[str]]:
    """Every view's rows (types included), in a fixed order (as test_bulk_rebuild.py)."""
    return {
        table: sorted(
            repr(sorted(r.items())) for r in ctx.store.database().query(f"SELECT * FROM {table}")
        )
        for p in ctx.projector.projections
        for table in p.tables
    }


def built_by_the_runners_alone(ctx: Components) -> dict[str, list[str]]:
    """The views dropped, made again at position 0 and caught up by their runners, page by
    page (no inline application, no in-memory build): their rows."""
    ctx.store.ledger_recorder.inline = None
    projector = ctx.projector
    for projection in projector.projections:
        if not projection.tables:
            continue  # the writeback intake writes durable, keyed tables: not rebuilt
        with ctx.store.database().transaction() as tx:
            projector._drop(tx, projection)
        projector.create(projection)
        assert projector.runner(projection.name).load_position() == 0
    projector.catch_up()
    head = ctx.store.last_position()
    assert set(projector.positions().values()) == {head}
    return dump(ctx)


def new_practice(ctx: Components) -> UUID:
    practice = create_practice(
        ctx,
        name="Inline Dental",
        timezone="America/Chicago",
        pms=PmsKind.DENTRIX,
        auto_writeback=False,
        deposit_account=DepositAccount("Checking", "1234"),
        batch_cutoff=parse_cutoff("23:59"),
        actor="operator",
    )
    return practice.id


@contextmanager
def fresh_ledger(backend: str, admin_url: str | None) -> Iterator[Ledger]:
    """A ledger of its own for one example: a temporary SQLite file, or a PostgreSQL
    database created and dropped here."""
    name = f"payledger_inline_{uuid.uuid4().hex[:12]}"
    url = None
    if backend == "postgres":
        assert admin_url is not None
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = f"{admin_url.rsplit('/', 1)[0]}/{name}"
    clock = PinnedClock(datetime(2026, 3, 4, 15, 0, tzinfo=UTC))
    try:
        with tempfile.TemporaryDirectory() as folder:
            ctx = build_components(
                Settings(
                    data_dir=Path(folder),
                    database_url=url,
                    operator_token=OPERATOR_TOKEN,
                    run_scheduler=False,
                ),
                real_clock=clock,
            )
            try:
                yield Ledger(ctx, clock, new_practice(ctx))
            finally:
                ctx.store.close()
    finally:
        if url is not None and admin_url is not None:
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.parametrize("backend", BACKENDS)
def test_inline_views_equal_the_views_the_runners_build(
    backend: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin_url = str(request.getfixturevalue("postgres_server")) if backend == "postgres" else None
    # the runners rebuild from position 0 event by event, never in memory
    monkeypatch.setattr(runner_module, "BULK_FROM", 10**9)

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(steps=st.lists(step, min_size=3, max_size=25))
    def same(steps: list[tuple[str, int]]) -> None:
        with fresh_ledger(backend, admin_url) as ledger:
            try:
                ledger.check_positions()
                for action, n in steps:
                    ledger.run(action, n)
                    ledger.check_positions()
                ledger.mend()
            finally:
                ledger.restore()
            ledger.check_positions()
            inline = dump(ledger.ctx)
            assert inline["transactions"] or not ledger.payments
            assert built_by_the_runners_alone(ledger.ctx) == inline

    same()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_failing_view_stays_behind_and_catches_up(
    backend: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fixed sequence through the failure (the property's case made explicit): while
    transactions fails on Payment.Captured, each new payment moves every other view to
    the head and leaves transactions at the position before the first capture it failed
    on, without its rows; mended, it catches up and every table equals the runners'."""
    admin_url = str(request.getfixturevalue("postgres_server")) if backend == "postgres" else None
    monkeypatch.setattr(runner_module, "BULK_FROM", 10**9)
    with fresh_ledger(backend, admin_url) as ledger:
        try:
            ledger.patient(1)
            ledger.pay(1500, APPROVE)
            before = ledger.ctx.store.last_position()
            ledger.break_handler("transactions", "Payment.Captured")
            for amount in (2000, 2100):
                ledger.pay(amount, APPROVE)
                ledger.check_positions()
            ledger.burst(3)
            ledger.check_positions()
            assert ledger.broken is not None and ledger.broken.failed_at
            behind = ledger.ctx.projector.position("transactions")
            assert before <= behind < min(ledger.broken.failed_at)
            amounts = ledger.ctx.store.database().query("SELECT amount FROM transactions")
            assert sorted(int(r["amount"]) for r in amounts) == [1500]
            error = ledger.ctx.store.database().query_one(
                "SELECT error FROM projection_tracking WHERE name = 'transactions'"
            )
            assert error is not None and "cannot take" in str(error["error"])
            ledger.mend()
        finally:
            ledger.restore()
        ledger.check_positions()
        amounts = ledger.ctx.store.database().query("SELECT amount FROM transactions")
        assert sorted(int(r["amount"]) for r in amounts) == [1000, 1001, 1002, 1500, 2000, 2100]
        inline = dump(ledger.ctx)
        assert built_by_the_runners_alone(ledger.ctx) == inline
