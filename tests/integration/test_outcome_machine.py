"""Money moves once and every intent ends, whatever the processor answers.

A Hypothesis state machine drives one practice on the sandbox processor with the faults
of a real gateway (tests/faulty_processor.py): at every call the processor may answer
OK, refuse, act and lose its answer (a 500 after applying), lose the request (a dropped
connection before it arrived), or act late (the request reaches it only later). People
take payments and refund them with the same Idempotency-Key again and with new keys; the
clock moves over cut-offs (the batch close captures); the reconciler runs; reads back
fail now and then; late requests arrive.

After every step:
- nothing is captured twice, and no authorisation is both voided and captured at the
  processor;
- at the processor, refunds of a sale never exceed what was captured of it;
- the ledger never records more than moved: every refund it records moved, every
  captured (settled) payment was captured, every void it records was made;
- an amount held by an open intent is never refunded beyond the payment.

A late request reaches the processor before the reconciler reads it back: no call
lasts longer than the reconciler's settling time (services/app/reconcile.py).

At the end of each run, after a bounded number of reconciler passes and batch closes
(the clock moved past their pauses): every intent has ended in one outcome (no open
intent in the view, none on the payments), and what moved at the processor equals the
ledger: the same captures, the same refunds (by id and amount), the same voids; an
authorisation the ledger never recorded was released.

Bounded in `make test` (SQLite); `PAYLEDGER_OUTCOME_EXAMPLES` makes it long (`make
chaos`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from adapters.processor.port import Capture, CardInput, ChargeResult
from domain.errors import PaymentsError
from domain.payments import Method, Payment, Status
from domain.practices import DepositAccount, PmsKind
from domain.schedule import parse_cutoff
from projections.intents import open_intents
from services.app.payments import collect_payment, refund_payment
from services.app.practices import create_practice
from services.app.reconcile import LONGEST_PAUSE, reconcile_due
from services.app.settlement import close_due_batches
from services.bootstrap import build_components
from services.context import Components
from services.settings import Settings
from tests.conftest import PinnedClock
from tests.faulty_processor import ANSWERS, FaultyProcessor
from tests.integration.test_product_rules_machine import run

EXAMPLES = int(os.environ.get("PAYLEDGER_OUTCOME_EXAMPLES", "15"))
CARD = CardInput("4242424242424242", 12, 2030, "123")
ACTOR = "user:front-desk"
#: what the processor does with the next call (weighted towards OK)
FAULTS = st.sampled_from(["ok", "ok", "ok", *ANSWERS[1:]])
KEYS = st.sampled_from(["a", "b", "c", "d", None])


class OutcomesAtTheProcessor(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="payledger-outcomes-"))
        self.ctx: Components | None = None
        self.payment_ids: set[UUID] = set()

    @initialize()
    def open_the_office(self) -> None:
        self.clock = PinnedClock(datetime(2026, 3, 4, 15, 0, tzinfo=UTC))
        self.ctx = build_components(
            Settings(data_dir=self.tmp, run_scheduler=False), real_clock=self.clock
        )
        self.ctx.processor = FaultyProcessor()
        self.practice_id = create_practice(
            self.ctx,
            name="Outcome Dental",
            timezone="America/New_York",
            pms=PmsKind.DENTRIX,
            auto_writeback=False,
            deposit_account=DepositAccount("Checking", "4321"),
            batch_cutoff=parse_cutoff("23:59"),
            actor="operator",
        ).id

    def teardown(self) -> None:
        if self.ctx is not None:
            try:
                self.check_model()
            finally:
                self.ctx.store.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    @property
    def led(self) -> Components:
        assert self.ctx is not None
        return self.ctx

    @property
    def sandbox(self) -> FaultyProcessor:
        processor = self.led.processor
        assert isinstance(processor, FaultyProcessor)
        return processor

    def payments(self) -> list[Payment]:
        found = self.led.get_many(Payment, sorted(self.payment_ids), self.practice_id)
        return [found[i] for i in sorted(found)]

    # -- what people do ------------------------------------------------------------

    @rule(amount=st.integers(100, 50_000), key=KEYS, fault=FAULTS)
    def take_a_payment(self, amount: int, key: str | None, fault: str) -> None:
        self.sandbox.answers["charge"].append(fault)
        try:
            payment = collect_payment(
                self.led,
                practice_id=self.practice_id,
                amount=amount,
                method=Method.VIRTUAL_TERMINAL,
                card=CARD,
                actor=ACTOR,
                key=f"pay-{key}-{amount}" if key else None,
            )
        except PaymentsError:
            return
        finally:
            self.sandbox.answers["charge"].clear()
        self.payment_ids.add(payment.id)

    @precondition(lambda self: self.payment_ids)
    @rule(
        index=st.integers(0, 30),
        percent=st.sampled_from([None, 10, 40, 100]),
        key=KEYS,
        fault=FAULTS,
    )
    def press_refund(self, index: int, percent: int | None, key: str | None, fault: str) -> None:
        payment = self.payments()[index % len(self.payment_ids)]
        amount = None if percent is None else max(1, payment.amount.cents * percent // 100)
        self.sandbox.answers["refund"].append(fault)
        self.sandbox.answers["void"].append(fault)
        try:
            refund_payment(
                self.led,
                practice_id=self.practice_id,
                payment_id=payment.id,
                amount=amount,
                actor=ACTOR,
                key=f"refund-{key}" if key else None,
            )
        except PaymentsError:
            pass
        finally:
            self.sandbox.answers["refund"].clear()
            self.sandbox.answers["void"].clear()

    @rule(hours=st.sampled_from([1, 6, 14, 24]), fault=FAULTS)
    def time_passes(self, hours: int, fault: str) -> None:
        self.sandbox.deliver_late()  # no call lasts longer than the reconciler waits
        self.clock.move(hours=hours)
        self.sandbox.answers["capture"].append(fault)
        try:
            close_due_batches(self.led, self.practice_id)
        finally:
            self.sandbox.answers["capture"].clear()

    @rule(fault=FAULTS, reads_fail=st.booleans())
    def the_reconciler_runs(self, fault: str, reads_fail: bool) -> None:
        self.sandbox.deliver_late()  # no call lasts longer than the reconciler waits
        self.clock.move(minutes=20)
        self.sandbox.reads_fail = int(reads_fail)
        self.sandbox.answers["void"].append(fault)
        try:
            reconcile_due(self.led, self.practice_id)
        finally:
            self.sandbox.answers["void"].clear()
            self.sandbox.reads_fail = 0

    @rule()
    def late_requests_arrive(self) -> None:
        self.sandbox.deliver_late()

    # -- the rules, after every step -----------------------------------------------

    @invariant()
    def money_moves_once(self) -> None:
        if self.ctx is None:
            return
        moved = processor_state(self.sandbox)
        for txn, count in moved.captures.items():
            assert count == 1, f"{txn} captured {count} times"
            assert txn not in moved.voided, f"{txn} both voided and captured"
        for txn, refunded in moved.refunds_by_txn.items():
            assert refunded <= moved.authorised.get(txn, 0), f"{txn} refunded beyond its sale"
        for payment in self.payments():
            txn = payment.transaction_id or ""
            recorded = {r.processor_refund_id for r in payment.refunds}
            assert recorded <= moved.refund_ids, "a refund recorded that never moved"
            if payment.status == Status.SETTLED:
                assert moved.captures.get(txn) == 1, "settled without a capture"
            if payment.status == Status.VOIDED and not payment.capture_failure:
                assert txn in moved.voided, "voided in the ledger, not at the processor"
            held = sum(p.amount for p in payment.pending_refunds.values())
            assert payment.refunded.cents + held <= payment.amount.cents

    # -- the end of a run ----------------------------------------------------------

    def check_model(self) -> None:
        """Bounded reconciliation: every intent ends, and the ledger equals the money."""
        self.sandbox.deliver_late()
        self.clock.move(days=1)
        for _ in range(8):
            self.clock.move(seconds=LONGEST_PAUSE.total_seconds() + 60)
            close_due_batches(self.led, self.practice_id)
            reconcile_due(self.led, self.practice_id)
        self.led.catch_up()
        assert self.led.reads(open_intents, self.practice_id) == [], "an intent never ended"
        moved = processor_state(self.sandbox)
        recorded_refunds: Counter[str] = Counter()
        for payment in self.payments():
            assert payment.pending_refunds == {} and payment.pending_void is None
            for refund in payment.refunds:
                recorded_refunds[refund.processor_refund_id] += refund.amount
            txn = payment.transaction_id or ""
            if payment.status == Status.SETTLED:
                assert moved.captures.get(txn) == 1
            elif payment.status == Status.APPROVED:
                raise AssertionError(f"{payment.id} still approved after its cut-off")
            else:
                assert txn not in moved.captures, f"{payment.id} captured but {payment.status}"
        assert recorded_refunds == moved.refund_amounts, "refunds at the processor != ledger"
        recorded_txns = {p.transaction_id for p in self.payments()}
        for txn in moved.authorised:
            if txn not in recorded_txns:  # authorised, never recorded: released, not captured
                assert txn in moved.voided and txn not in moved.captures, txn

    @rule()
    def a_quiet_week(self) -> None:
        """Any time: the reconciler and the closes settle everything there is."""
        self.check_model()


class Moved:
    """What the sandbox did, by its own records (each reference's first answer)."""

    def __init__(self) -> None:
        self.authorised: dict[str, int] = {}
        self.captures: Counter[str] = Counter()
        self.voided: set[str] = set()
        self.refunds_by_txn: Counter[str] = Counter()
        self.refund_amounts: Counter[str] = Counter()
        self.refund_ids: set[str] = set()


def processor_state(sandbox: FaultyProcessor) -> Moved:
    moved = Moved()
    for (kind, _reference), (parameters, result) in list(sandbox._answers.items()):
        if kind == "charge" and isinstance(result, ChargeResult) and result.approved:
            moved.authorised[result.transaction_id or ""] = parameters[0]
        elif kind == "capture" and isinstance(result, Capture):
            moved.captures[parameters[0]] += 1
        elif kind == "void":
            moved.voided.add(parameters[0])
        elif kind == "refund":
            moved.refunds_by_txn[parameters[0]] += parameters[1]
            moved.refund_amounts[str(result)] += parameters[1]
            moved.refund_ids.add(str(result))
    return moved


def test_money_moves_once_and_every_intent_ends_on_the_sandbox() -> None:
    run(OutcomesAtTheProcessor, examples=EXAMPLES, steps=30)
