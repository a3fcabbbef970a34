"""The protocol of every effect (intent, one call, an outcome always) under a gateway's faults.

One Hypothesis state machine, made for each processor (`outcome_machine`) and run by the
per-processor test files in tests/integration: test_outcome_machine.py (the sandbox with a
gateway's faults), test_outcome_machine_stripe.py and _clearent.py (against the fake of
that processor's API, served on a loopback port: `run_served`). It drives one
practice through the use cases: payments collected (with the Idempotency-Key of an
earlier request, or a new one), the refund action (a void before the cut-off, a refund
after; the same key again or a new one; partial amounts), the clock moving over the
cut-off (the batch close captures), and the reconciler (`reconcile_due`, once the
intents have settled in). Each processor's file adds what happens on the processor's own
side (authorisations cancelled there, refunds failed, payouts, webhooks, batches closed,
cards kept).

At every call the gateway may answer as its fake's faults say: OK, refused, 429, 500
before or after acting, a timeout or a dropped connection before or after acting, or
late (the request acts only later, before the intent's settling time is over: no call
lasts that long); reads fail now and then.

After every step, from the fake's own state (a `Gateway`'s view of it):
- at most one authorisation per ledger payment (by its reference); each captured at most
  once, never both voided and captured; none captured that the ledger does not hold;
  one the ledger never recorded is held only while its attempt is open;
- what the ledger records as settled was captured (for its amount), as voided was voided;
- the refunds of a sale never exceed what was captured of it; each was asked by one
  refund intent of the ledger, for its amount, and made at most once; what the ledger
  records as refunded was made, what it records as refused was not (or failed).

At the end of each example the gateway answers again and the reconciler and the batch
closes run a bounded number of passes (the clock moving as needed): every intent has
ended (`open_intents` empty, no pending refund or void on any payment), and the money
moved at the processor equals the ledger's.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, TypeVar
from uuid import UUID

from hypothesis import event as hypothesis_event
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from adapters.processor.port import CardProcessor
from domain.charges import ChargeAttempt, attempt_id_of
from domain.errors import PaymentsError
from domain.payments import Method, Payment, Status
from domain.practices import DepositAccount, PmsKind
from domain.schedule import batch_date_for, cutoff_instant, parse_cutoff
from projections.intents import open_intents
from services.app.payments import collect_payment, refund_payment
from services.app.practices import create_practice, keyed_id
from services.app.reconcile import SETTLE_AFTER, reconcile_due
from services.app.settlement import close_due_batches
from services.bootstrap import build_components
from services.context import Components
from services.settings import Settings
from tests.conftest import PinnedClock
from tests.fakes.opendental import Served
from tests.integration.test_product_rules_machine import run

ACTOR = "user:front-desk"
START = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)  # a Wednesday, 10:00 in New York
TIMEZONE = "America/New_York"
CUTOFF = "18:00"
#: the adapter's attempts per call (fewer: more outcomes stay unknown)
ATTEMPTS = 2
#: clock moves, in minutes: a little, past an intent's settling time, hours, a day and
#: more (past a processor's key memory); None: just over the next cut-off
MOVES = st.sampled_from([2, 16, 180, None, None, None, 24 * 60 + 30])

T = TypeVar("T")


@dataclass(frozen=True)
class Gateway:
    """What the machine needs to know of a processor's fake to fault it."""

    #: which POSTs a fault is for (path prefixes: any, a refund, an authorisation's own)
    targets: tuple[str, ...]
    #: the faults a POST may meet, and a read (a GET under `read_prefix`)
    faults: tuple[str, ...]
    read_faults: tuple[str, ...]
    read_prefix: str
    #: the cards people pay with (as the API's payment_method), repeated to weigh them
    cards: tuple[str, ...]


@dataclass(frozen=True)
class Authorisation:
    """An authorisation at the processor, as the fake holds it."""

    id: str
    #: the ledger's payment id it was made under (None: made elsewhere)
    reference: str | None
    captures: int
    voids: int
    captured: bool
    captured_amount: int
    #: authorised, neither captured nor voided
    held: bool
    voided: bool


@dataclass(frozen=True)
class RefundMade:
    """A refund at the processor, as the fake holds it."""

    id: str
    #: the ledger's refund intent it was made under
    reference: UUID
    amount: int
    failed: bool


@dataclass
class Asked:
    """A request the office sent, kept to send again with the same key."""

    key: str
    amount: int | None
    card: str = ""


def event(value: str) -> None:
    """Count what happened in Hypothesis's statistics (nothing outside a Hypothesis run,
    as when a worked example drives the machine's steps itself)."""
    with contextlib.suppress(InvalidArgument):
        hypothesis_event(value)


class OutcomesAtAGateway(RuleBasedStateMachine):
    """The machine's state, steps and checks; `outcome_machine` adds its rules."""

    fake: ClassVar[Any]
    base_url: ClassVar[str]
    #: the processor's faults and cards
    gateway: ClassVar[Gateway]

    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="payledger-outcomes-"))
        self.ctx: Components | None = None
        self.collects: list[Asked] = []
        self.refunds: dict[UUID, list[Asked]] = {}
        self.fake.faults.clear()
        self.fake.late.clear()

    # -- the processor's part (each processor's machine says) ------------------------

    def settings(self) -> dict[str, Any]:
        """The settings that select the processor and its fake."""
        raise NotImplementedError

    def processor(self) -> CardProcessor:
        """The adapter, talking to the fake, with no pause between its `ATTEMPTS`."""
        raise NotImplementedError

    def connect(self, practice_id: UUID) -> None:
        """The practice's account at the processor, as the operator connects it."""
        raise NotImplementedError

    def authorisations(self) -> list[Authorisation]:
        raise NotImplementedError

    def authorisation(self, transaction_id: str) -> Authorisation | None:
        raise NotImplementedError

    def refunds_made(self, auth: Authorisation) -> list[RefundMade]:
        raise NotImplementedError

    def collected(self, asked: Asked, payment: Payment) -> None:
        """What the processor's answer to a collect must be."""

    def ticked(self, reads: list[str]) -> None:
        """After the scheduler's tick (the batch close)."""

    def before_checks(self) -> None:
        """Before the checks after every step."""

    def each_final_pass(self) -> None:
        """In each of the last passes, after the batch close and the reconciler."""

    def after_final_passes(self) -> None:
        """After the last passes, before the final checks."""

    def final_checks(self) -> None:
        """After the final checks of the money."""

    def torn_down(self) -> None:
        """Last of all."""

    # -- set-up ----------------------------------------------------------------------

    @initialize()
    def open_the_office(self) -> None:
        self.clock = PinnedClock(START)
        self.ctx = build_components(
            Settings(data_dir=self.tmp, run_scheduler=False, **self.settings()),
            real_clock=self.clock,
        )
        practice = create_practice(
            self.ctx,
            name="Outcome Dental",
            timezone=TIMEZONE,
            pms=PmsKind.DENTRIX,
            auto_writeback=False,
            deposit_account=DepositAccount("Checking", "1234"),
            batch_cutoff=parse_cutoff(CUTOFF),
            actor="operator",
        )
        self.practice_id = practice.id
        self.ctx.processor = self.processor()
        self.connect(practice.id)

    @property
    def led(self) -> Components:
        assert self.ctx is not None
        return self.ctx

    def now(self) -> datetime:
        return self.led.clock.now(self.practice_id)

    def payments(self) -> list[Payment]:
        found = (
            self.led.find(Payment, keyed_id(self.practice_id, "payment", a.key))
            for a in self.collects
        )
        return [p for p in found if p is not None]

    def answering(
        self, answers: list[tuple[str, str]], reads: list[str], call: Callable[[], T]
    ) -> T | PaymentsError:
        """Run `call` with the gateway answering the next requests so; a refusal or a lost
        answer is the PaymentsError the use case raised (anything else is a bug)."""
        for target, fault in answers:
            self.fake.fail_next(target, fault)
        for fault in reads:
            self.fake.fail_next(self.gateway.read_prefix, fault, method="GET")
        try:
            answer = call()
        except PaymentsError as error:
            event(f"{getattr(call, '__name__', 'call')}: {type(error).__name__}")
            return error
        finally:
            self.fake.faults.clear()
        event(f"answered: {type(answer).__name__}")
        return answer

    def move(self, minutes: int) -> None:
        """Time passes; the requests still on their way arrive first (no call lasts as
        long as an intent's settling time)."""
        self.fake.deliver_late()
        self.clock.move(minutes=minutes)

    def minutes_to_cutoff(self) -> int:
        cutoff = parse_cutoff(CUTOFF)
        day = batch_date_for(self.now(), TIMEZONE, cutoff)
        closes = cutoff_instant(day, TIMEZONE, cutoff)
        return int((closes - self.now()).total_seconds() // 60) + 1

    # -- the office's steps (the rules call them) -------------------------------------

    def collect_step(
        self,
        amount: int,
        card: str,
        again: int | None,
        answers: list[tuple[str, str]],
        reads: list[str],
    ) -> None:
        if again is not None and self.collects:
            asked = self.collects[again % len(self.collects)]
        else:
            asked = Asked(f"collect-{len(self.collects)}", amount, card)
            self.collects.append(asked)
        answer = self.answering(
            answers,
            reads,
            lambda: collect_payment(
                self.led,
                practice_id=self.practice_id,
                amount=asked.amount or 0,
                method=Method.VIRTUAL_TERMINAL,
                payment_method=asked.card,
                actor=ACTOR,
                key=asked.key,
            ),
        )
        if isinstance(answer, Payment):
            assert answer.amount.cents == asked.amount
            self.collected(asked, answer)

    def refund_step(
        self,
        index: int,
        share: int | None,
        again: int | None,
        answers: list[tuple[str, str]],
        reads: list[str],
    ) -> None:
        payments = self.payments()
        if not payments:
            return
        settled = [p for p in payments if p.status == Status.SETTLED]
        if settled and index % 3:  # mostly a settled one: refunds are where money goes back
            payments = settled
        payment = payments[index % len(payments)]
        asked_before = self.refunds.setdefault(payment.id, [])
        if again is not None and asked_before:
            asked = asked_before[again % len(asked_before)]
        else:
            amount = None if share is None else max(1, payment.amount.cents * share // 100)
            asked = Asked(f"refund-{len(asked_before)}", amount)
            asked_before.append(asked)
        self.answering(
            answers,
            reads,
            lambda: refund_payment(
                self.led,
                practice_id=self.practice_id,
                payment_id=payment.id,
                amount=asked.amount,
                actor=ACTOR,
                key=asked.key,
            ),
        )

    def tick_step(
        self, minutes: int | None, answers: list[tuple[str, str]], reads: list[str]
    ) -> None:
        """The scheduler's tick after the clock moved: the batch close (it captures)."""
        self.move(self.minutes_to_cutoff() if minutes is None else minutes)
        self.answering(answers, reads, lambda: close_due_batches(self.led, self.practice_id))
        self.ticked(reads)

    def reconciler_step(self, answers: list[tuple[str, str]], reads: list[str]) -> None:
        """A pass of the reconciler, the clock first moved past the oldest intent's settling
        time when it is not over."""
        rows = self.led.reads(open_intents, self.practice_id)
        if rows:
            oldest = min(datetime.fromisoformat(r["requested_at"]) for r in rows)
            wait = oldest + SETTLE_AFTER - self.now()
            if wait > timedelta(0):
                self.move(int(wait.total_seconds() // 60) + 1)
        self.answering(answers, reads, lambda: reconcile_due(self.led, self.practice_id))

    @rule()
    def requests_on_their_way_arrive(self) -> None:
        self.fake.deliver_late()

    # -- after every step ------------------------------------------------------------

    @invariant()
    def money_moves_once_and_as_recorded(self) -> None:
        if self.ctx is None:
            return
        self.before_checks()
        self.check_money(final=False)

    def check_money(self, *, final: bool) -> None:
        """The fake's state against the ledger's (`final`: every outcome is recorded)."""
        self.led.catch_up()
        by_reference: dict[str, list[Authorisation]] = {}
        for auth in self.authorisations():
            assert auth.captures <= 1, f"{auth.id} captured twice"
            assert not (auth.captures and auth.voids), f"{auth.id} both voided and captured"
            if auth.reference:
                by_reference.setdefault(auth.reference, []).append(auth)
        assert all(len(v) == 1 for v in by_reference.values()), "a payment authorised twice"

        payments = {str(p.id): p for p in self.payments()}
        for reference, (auth,) in by_reference.items():
            payment = payments.get(reference)
            if payment is None:
                assert not auth.captured, f"{auth.id} captured, not in the ledger"
                if auth.held:  # an authorisation the ledger never recorded
                    attempt = self.led.find(ChargeAttempt, attempt_id_of(UUID(reference)))
                    assert attempt is not None, f"{auth.id} authorised, never asked"
                    assert not final and attempt.is_open, (
                        f"{auth.id} still held, its attempt {attempt.state}"
                    )
                continue
            if auth.captured:
                assert payment.status == Status.SETTLED or (
                    not final and payment.status == Status.APPROVED and payment.capture_requested
                ), f"{auth.id} captured, the payment {payment.status}"
                assert auth.captured_amount == payment.amount.cents

        for payment in payments.values():
            auth = self.authorisation(payment.transaction_id or "")
            if payment.status in (Status.SETTLED, Status.VOIDED):
                assert auth is not None
                assert auth.captured == (payment.status == Status.SETTLED), (
                    f"{payment.id} {payment.status}, its authorisation captured {auth.captured}"
                )
            if payment.status == Status.VOIDED and payment.capture_failure is None:
                assert auth is not None and auth.voided
            self.check_refunds(payment, auth, final=final)

    def check_refunds(self, payment: Payment, auth: Authorisation | None, *, final: bool) -> None:
        asked = {
            e.refund_id: e.amount
            for e in self.led.store.repository.event_store.get(payment.id)
            if isinstance(e, Payment.RefundRequested)
        }
        there = self.refunds_made(auth) if auth is not None else []
        references = Counter(r.reference for r in there)
        assert all(n == 1 for n in references.values()), f"{payment.id}: a refund made twice"
        moved = 0
        made: dict[UUID, RefundMade] = {}
        for refund in there:
            assert asked.get(refund.reference) == refund.amount, (
                f"{payment.id}: the processor refunded {refund.amount} under "
                f"{refund.reference}, the ledger asked {asked.get(refund.reference)}"
            )
            made[refund.reference] = refund
            if not refund.failed:
                moved += refund.amount
        if auth is not None:
            assert moved <= auth.captured_amount, f"{payment.id}: refunded beyond capture"
        for refund in payment.refunds:
            found = made.get(refund.id)
            assert found is not None, f"{payment.id}: refund {refund.id} recorded, not made"
            assert (found.id, found.amount) == (refund.processor_refund_id, refund.amount)
            if final:
                assert found.failed == (refund.failed is not None), refund.id
        for refund_id in payment.refused_refunds:
            found = made.get(refund_id)
            assert found is None or found.failed, (
                f"{payment.id}: refund {refund_id} recorded as refused, made at the processor"
            )
        if final:
            kept = {r.id for r in payment.refunds if r.failed is None}
            assert {i for i, r in made.items() if not r.failed} == kept, payment.id
        assert payment.refunded.cents <= payment.amount.cents

    # -- the end of each example ---------------------------------------------------

    def teardown(self) -> None:
        try:
            if self.ctx is not None and sys.exc_info()[0] is None:
                self.everything_ends()
        finally:
            if self.ctx is not None:
                self.ctx.store.close()
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.torn_down()

    def everything_ends(self) -> None:
        """The gateway answers again; the scheduler's ticks and the reconciler run until
        every intent has ended (a bounded number of passes) and the batches close: then
        the ledger and the processor agree."""
        self.fake.faults.clear()
        for minutes in [16, 16, 60, 60, 120, 120, self.minutes_to_cutoff(), 16, 60, 120]:
            self.move(minutes)
            close_due_batches(self.led, self.practice_id)
            reconcile_due(self.led, self.practice_id)
            self.each_final_pass()
        self.after_final_passes()
        self.led.catch_up()
        left = self.led.reads(open_intents, self.practice_id)
        assert left == [], f"intents still open: {left}"
        for payment in self.payments():
            assert payment.pending_refunds == {} and payment.pending_void is None, payment.id
        self.check_money(final=True)
        self.final_checks()


def outcome_machine(spec: Gateway) -> type[OutcomesAtAGateway]:
    """The machine's class for a processor: its rules, with that gateway's faults and cards."""
    answers = st.lists(
        st.tuples(st.sampled_from(spec.targets), st.sampled_from(spec.faults)), max_size=3
    )
    reads = st.lists(st.sampled_from(spec.read_faults), max_size=2)

    class Outcomes(OutcomesAtAGateway):
        gateway = spec

        @rule(
            amount=st.integers(50, 40_000),
            card=st.sampled_from(spec.cards),
            again=st.none() | st.integers(0, 20),
            answers=answers,
            reads=reads,
        )
        def collect(self, **step: Any) -> None:
            self.collect_step(**step)

        @precondition(lambda self: self.collects)
        @rule(
            index=st.integers(0, 20),
            share=st.sampled_from([None, 100, 60, 25, 1]),
            again=st.none() | st.integers(0, 5),
            answers=answers,
            reads=reads,
        )
        def refund_action(self, **step: Any) -> None:
            self.refund_step(**step)

        @rule(minutes=MOVES, answers=answers, reads=reads)
        def time_passes(self, **step: Any) -> None:
            self.tick_step(**step)

        @rule(answers=answers, reads=reads)
        def reconciler_pass(self, **step: Any) -> None:
            self.reconciler_step(**step)

    return Outcomes


def run_served(machine: type[OutcomesAtAGateway], fake: Any, examples: int, steps: int) -> None:
    """Run the machine against the fake, served on a loopback port for the whole run."""
    with Served(fake.app) as base:
        fake.base_url = base

        class Machine(machine):  # type: ignore[valid-type, misc]
            pass

        Machine.fake, Machine.base_url = fake, base
        run(Machine, examples=examples, steps=steps)
