"""The protocol of every effect (intent, one call, an outcome always) on Clearent, under faults.

The Clearent equivalent of test_outcome_machine_stripe.py: a Hypothesis state machine
drives one practice processed on Clearent (the adapter talking to the strict fake of its
gateway, tests/fakes/clearent.py) through the use cases: payments collected (with the
Idempotency-Key of an earlier request, or a new one), the refund action (a void before
the cut-off, a refund after; the same key again or a new one; partial amounts), the
clock moving over the cut-off (the batch close captures), the reconciler, and Clearent's
side: an authorisation voided in Clearent's own virtual terminal, batches closed.

At every call Clearent may answer: OK, refused (400), 429, 500 before or after acting, a
dropped connection before or after acting, or late (the request acts only later, before
an intent's settling time is over). Clearent takes no idempotency key: exactly-once rests
on the order id and the read back alone.

After every step, from the fake's own state:
- at most one AUTH per ledger payment (by order id); each captured at most once, never
  both voided and captured;
- refunds never beyond what was captured; at most one REFUND per ledger refund intent
  (by order id), for the amount the ledger asked;
- what the ledger records as settled was captured at Clearent; as voided, was not.

At the end of each example the reconciler runs a bounded number of passes and the
batches close: every intent has ended, and the money moved at Clearent equals the
ledger's.

PAYLEDGER_OUTCOME_EXAMPLES sets the number of examples (25 by default).
"""

from __future__ import annotations

import contextlib
import os
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

from adapters.processor.clearent import ClearentProcessor
from domain.charges import ChargeAttempt, attempt_id_of
from domain.errors import PaymentsError
from domain.payments import Method, Payment, Status
from domain.practices import DepositAccount, PmsKind
from domain.schedule import batch_date_for, cutoff_instant, parse_cutoff
from projections.intents import open_intents
from services.app.payments import collect_payment, refund_payment
from services.app.practices import create_practice, keyed_id, set_clearent_key
from services.app.reconcile import SETTLE_AFTER, reconcile_due
from services.app.settlement import close_due_batches
from services.bootstrap import build_components
from services.context import Components
from services.settings import Settings
from tests.clearent_fixtures import TOKENS
from tests.conftest import PinnedClock
from tests.fakes.clearent import FAULTS, READ_FAULTS, FakeClearent, cents
from tests.fakes.opendental import Served
from tests.integration.test_product_rules_machine import run

ACTOR = "user:front-desk"
START = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)  # a Wednesday, 10:00 in New York
CUTOFF = "18:00"
EXAMPLES = int(os.environ.get("PAYLEDGER_OUTCOME_EXAMPLES", "25"))
STEPS = int(os.environ.get("PAYLEDGER_OUTCOME_STEPS", "30"))
ATTEMPTS = 2

#: which POSTs a fault is for: any, a refund, or an AUTH/CAPTURE/VOID
TARGETS = ("/rest/v2/", "/rest/v2/transactions/refund", "/rest/v2/transactions")
POST_FAULTS = tuple(f for f in FAULTS if f != "slow")
ANSWERS = st.lists(st.tuples(st.sampled_from(TARGETS), st.sampled_from(POST_FAULTS)), max_size=3)
READS = st.lists(st.sampled_from(READ_FAULTS), max_size=2)
CARDS = st.sampled_from(
    [TOKENS["pm_card_visa"], TOKENS["pm_card_visa"], TOKENS["pm_card_chargeDeclined"]]
)
MOVES = st.sampled_from([2, 16, 180, None, None, None, 24 * 60 + 30])

T = TypeVar("T")


@dataclass
class Asked:
    key: str
    amount: int | None
    card: str = ""


def event(value: str) -> None:
    with contextlib.suppress(InvalidArgument):
        hypothesis_event(value)


class OutcomesOnClearent(RuleBasedStateMachine):
    fake: ClassVar[FakeClearent]
    base_url: ClassVar[str]

    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="payledger-clearent-outcomes-"))
        self.ctx: Components | None = None
        self.collects: list[Asked] = []
        self.refunds: dict[UUID, list[Asked]] = {}
        self.fake.faults.clear()
        self.fake.late.clear()

    @initialize()
    def open_the_office(self) -> None:
        self.clock = PinnedClock(START)
        self.ctx = build_components(
            Settings(
                data_dir=self.tmp,
                run_scheduler=False,
                processor="clearent",
                clearent_url=self.base_url,
            ),
            real_clock=self.clock,
        )
        keys = self.ctx.processor_keys
        assert keys is not None
        self.ctx.processor = ClearentProcessor(
            keys.of, base_url=self.base_url, attempts=ATTEMPTS, backoff=0
        )
        practice = create_practice(
            self.ctx,
            name="Outcome Dental",
            timezone="America/New_York",
            pms=PmsKind.DENTRIX,
            auto_writeback=False,
            deposit_account=DepositAccount("Checking", "1234"),
            batch_cutoff=parse_cutoff(CUTOFF),
            actor="operator",
        )
        self.practice_id = practice.id
        self.key = self.fake.add_merchant()
        set_clearent_key(self.ctx, practice.id, self.key, "operator")

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
        for target, fault in answers:
            self.fake.fail_next(target, fault)
        for fault in reads:
            self.fake.fail_next("/rest/v2/", fault, method="GET")
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
        """Time passes; the requests still on their way reach Clearent first."""
        self.fake.deliver_late()
        self.clock.move(minutes=minutes)

    def minutes_to_cutoff(self) -> int:
        practice_tz, cutoff = "America/New_York", parse_cutoff(CUTOFF)
        day = batch_date_for(self.now(), practice_tz, cutoff)
        closes = cutoff_instant(day, practice_tz, cutoff)
        return int((closes - self.now()).total_seconds() // 60) + 1

    # -- the office ----------------------------------------------------------------

    @rule(
        amount=st.integers(50, 40_000),
        card=CARDS,
        again=st.none() | st.integers(0, 20),
        answers=ANSWERS,
        reads=READS,
    )
    def collect(
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
            good = asked.card == TOKENS["pm_card_visa"]
            assert (answer.status != Status.DECLINED) == good, (answer.status, asked.card)

    @precondition(lambda self: self.collects)
    @rule(
        index=st.integers(0, 20),
        share=st.sampled_from([None, 100, 60, 25, 1]),
        again=st.none() | st.integers(0, 5),
        answers=ANSWERS,
        reads=READS,
    )
    def refund_action(
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
        if settled and index % 3:
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

    @rule(minutes=MOVES, answers=ANSWERS, reads=READS)
    def time_passes(
        self, minutes: int | None, answers: list[tuple[str, str]], reads: list[str]
    ) -> None:
        self.move(self.minutes_to_cutoff() if minutes is None else minutes)
        self.answering(answers, reads, lambda: close_due_batches(self.led, self.practice_id))

    @rule(answers=ANSWERS, reads=READS)
    def reconciler_pass(self, answers: list[tuple[str, str]], reads: list[str]) -> None:
        rows = self.led.reads(open_intents, self.practice_id)
        if rows:
            oldest = min(datetime.fromisoformat(r["requested_at"]) for r in rows)
            wait = oldest + SETTLE_AFTER - self.now()
            if wait > timedelta(0):
                self.move(int(wait.total_seconds() // 60) + 1)
        self.answering(answers, reads, lambda: reconcile_due(self.led, self.practice_id))

    # -- Clearent's side -------------------------------------------------------------

    @rule()
    def requests_on_their_way_arrive(self) -> None:
        self.fake.deliver_late()

    @rule(index=st.integers(0, 20))
    def an_authorisation_is_voided_at_clearent(self, index: int) -> None:
        """Voided in Clearent's own virtual terminal."""
        held = [
            t
            for t in self.fake.transactions.values()
            if t["_key"] == self.key
            and t["type"] == "AUTH"
            and t["pending"] == "true"
            and t.get("voided-auth") == "false"
        ]
        if held:
            auth = held[index % len(held)]
            auth["voided-auth"] = "true"
            self.fake.voids[auth["id"]] += 1

    @rule()
    def clearent_closes_its_batch(self) -> None:
        self.fake.close_batches(self.key)

    # -- after every step ------------------------------------------------------------

    @invariant()
    def money_moves_once_and_as_recorded(self) -> None:
        if self.ctx is not None:
            self.check_money(final=False)

    def auths(self) -> list[dict[str, Any]]:
        return self.fake.of(self.key, "AUTH")

    def check_money(self, *, final: bool) -> None:
        self.led.catch_up()
        orders = Counter(a.get("order-id") for a in self.auths())
        assert all(n == 1 for n in orders.values()), f"a payment authorised twice: {orders}"
        by_reference = {str(a.get("order-id")): a for a in self.auths()}
        for auth in self.auths():
            captured = self.fake.captures[auth["id"]]
            assert captured <= 1, f"{auth['id']} captured twice"
            assert not (captured and self.fake.voids[auth["id"]]), (
                f"{auth['id']} both voided and captured"
            )

        payments = {str(p.id): p for p in self.payments()}
        for reference, auth in by_reference.items():
            payment = payments.get(reference)
            if payment is None:
                assert not self.fake.captures.get(auth["id"]), (
                    f"{auth['id']} captured, not in the ledger"
                )
                if auth["result"] == "APPROVED" and auth.get("voided-auth") != "true":
                    attempt = self.led.find(ChargeAttempt, attempt_id_of(UUID(reference)))
                    assert attempt is not None, f"{auth['id']} authorised, never asked"
                    assert not final and attempt.is_open, (
                        f"{auth['id']} still held, its attempt {attempt.state}"
                    )
                continue
            if self.fake.captures.get(auth["id"]):
                assert payment.status == Status.SETTLED or (
                    not final and payment.status == Status.APPROVED and payment.capture_requested
                ), f"{auth['id']} captured, the payment {payment.status}"

        for payment in payments.values():
            auth = self.fake.transactions.get(payment.transaction_id or "")
            if payment.status in (Status.SETTLED, Status.VOIDED):
                assert auth is not None
                captured = bool(self.fake.captures[auth["id"]])
                assert captured == (payment.status == Status.SETTLED), (
                    f"{payment.id} {payment.status}, its AUTH captured {captured}"
                )
            if payment.status == Status.VOIDED and payment.capture_failure is None:
                assert auth is not None and auth["voided-auth"] == "true"
            self.check_refunds(payment, auth, final=final)

    def check_refunds(self, payment: Payment, auth: dict[str, Any] | None, *, final: bool) -> None:
        asked = {
            e.refund_id: e.amount
            for e in self.led.store.repository.event_store.get(payment.id)
            if isinstance(e, Payment.RefundRequested)
        }
        there = [
            t
            for t in self.fake.of(self.key, "REFUND")
            if auth is not None and t.get("ref-id") == auth["id"]
        ]
        references = Counter(t.get("order-id") for t in there)
        assert all(n == 1 for n in references.values()), f"{payment.id}: a refund made twice"
        made: dict[UUID, dict[str, Any]] = {}
        for refund in there:
            refund_id = UUID(refund["order-id"])
            assert asked.get(refund_id) == cents(refund["amount"]), (
                f"{payment.id}: Clearent refunded {refund['amount']} under {refund_id}, the "
                f"ledger asked {asked.get(refund_id)}"
            )
            made[refund_id] = refund
        if auth is not None:
            captured = payment.amount.cents if self.fake.captures[auth["id"]] else 0
            assert sum(self.fake.refunded(auth["id"])) <= captured, "refunded beyond capture"
        for refund in payment.refunds:
            found = made.get(refund.id)
            assert found is not None, f"{payment.id}: refund {refund.id} recorded, not made"
            assert (found["id"], cents(found["amount"])) == (
                refund.processor_refund_id,
                refund.amount,
            )
        for refund_id in payment.refused_refunds:
            assert refund_id not in made, (
                f"{payment.id}: refund {refund_id} recorded as refused, made at Clearent"
            )
        if final:
            assert set(made) == {r.id for r in payment.refunds}, payment.id

    # -- the end of each example ---------------------------------------------------

    def teardown(self) -> None:
        try:
            if self.ctx is not None and sys.exc_info()[0] is None:
                self.everything_ends()
        finally:
            if self.ctx is not None:
                self.ctx.store.close()
            shutil.rmtree(self.tmp, ignore_errors=True)
            assert not self.fake.invalid, self.fake.invalid

    def everything_ends(self) -> None:
        self.fake.faults.clear()
        for minutes in [16, 16, 60, 60, 120, 120, self.minutes_to_cutoff(), 16, 60, 120]:
            self.move(minutes)
            close_due_batches(self.led, self.practice_id)
            reconcile_due(self.led, self.practice_id)
        self.led.catch_up()
        left = self.led.reads(open_intents, self.practice_id)
        assert left == [], f"intents still open: {left}"
        for payment in self.payments():
            assert payment.pending_refunds == {} and payment.pending_void is None, payment.id
        self.check_money(final=True)


def test_every_effect_on_clearent_ends_and_moves_money_as_recorded() -> None:
    fake = FakeClearent()
    with Served(fake.app) as base:
        fake.base_url = base

        class Machine(OutcomesOnClearent):
            pass

        Machine.fake, Machine.base_url = fake, base
        run(Machine, examples=EXAMPLES, steps=STEPS)
