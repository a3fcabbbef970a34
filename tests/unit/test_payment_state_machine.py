"""The Payment aggregate under random sequences of commands (Hypothesis stateful testing).

A small model of the rules predicts, for every attempt, either success or the exact
domain error. A refused command must leave the aggregate exactly as it was: no new
pending event, the same version, the same state.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from domain.base import event_type
from domain.errors import (
    AlreadySettled,
    InvalidAmount,
    NothingLeftToRefund,
    PaymentNotApproved,
    PaymentsError,
    RefundExceedsRemaining,
    RefundNotAllowed,
    RefundWindowClosed,
    VoidNotAllowed,
)
from domain.money import MAX_AMOUNT_CENTS, Money
from domain.payments import Payment, ReversalKind, Status
from domain.schedule import refund_deadline
from tests.unit.builders import capture, decline, replay

ZONES = ["America/New_York", "America/Los_Angeles", "America/Phoenix", "Pacific/Honolulu"]
CUTOFFS = [time(23, 59), time(17, 0), time(21, 30), time(0, 30)]

time_steps = st.one_of(
    st.integers(1, 180).map(lambda n: timedelta(minutes=n)),
    st.integers(1, 48).map(lambda n: timedelta(hours=n)),
    st.integers(1, 120).map(lambda n: timedelta(days=n)),
)


def state_of(payment: Payment) -> dict[str, Any]:
    return {k: v for k, v in vars(payment).items() if k != "_pending_events"}


class PaymentLifecycle(RuleBasedStateMachine):
    payment: Payment
    now: datetime
    status: Status
    refunds: list[int]

    # -- the model ------------------------------------------------------------------

    @property
    def amount(self) -> int:
        return self.payment.amount.cents

    @property
    def remaining(self) -> int:
        return self.amount - sum(self.refunds)

    def past_cutoff(self) -> bool:
        settles_at = self.payment.settles_at
        return settles_at is not None and self.now >= settles_at

    def attempt(self, expected: type[PaymentsError] | None, action: Callable[[], None]) -> bool:
        """Run a command; True if it succeeded, as the model expected."""
        before = copy.deepcopy(self.payment)
        if expected is None:
            action()
            assert len(self.payment.pending_events) == len(before.pending_events) + 1
            assert self.payment.version == before.version + 1
            return True
        with pytest.raises(PaymentsError) as raised:
            action()
        assert type(raised.value) is expected, f"{raised.value!r}, expected {expected.__name__}"
        assert self.payment.pending_events == before.pending_events
        assert self.payment.version == before.version
        assert state_of(self.payment) == state_of(before)
        return False

    # -- rules ---------------------------------------------------------------------

    @initialize(
        amount=st.integers(1, MAX_AMOUNT_CENTS),
        taken_at=st.datetimes(
            min_value=datetime(2025, 1, 1),
            max_value=datetime(2028, 12, 31),
            timezones=st.just(UTC),
        ),
        tz=st.sampled_from(ZONES),
        cutoff=st.sampled_from(CUTOFFS),
        declined=st.sampled_from([False, False, False, True]),
    )
    def take_payment(
        self, amount: int, taken_at: datetime, tz: str, cutoff: time, declined: bool
    ) -> None:
        if declined:
            self.payment = decline(amount, at=taken_at)
            self.status = Status.DECLINED
        else:
            self.payment = capture(amount, at=taken_at, tz=tz, cutoff=cutoff)
            self.status = Status.APPROVED
            assert self.payment.settles_at is not None
            assert taken_at < self.payment.settles_at <= taken_at + timedelta(days=1, hours=1)
        self.now = taken_at
        self.refunds = []

    @rule(step=time_steps)
    def advance_time(self, step: timedelta) -> None:
        self.now += step

    @rule(offset=st.sampled_from([timedelta(0), timedelta(microseconds=-1), timedelta(seconds=1)]))
    def advance_to_the_cutoff(self, offset: timedelta) -> None:
        """Land on (or right by) the batch's cut-off instant, where the rules change."""
        if self.payment.settles_at is not None:
            self.now = max(self.now, self.payment.settles_at + offset)

    @rule(data=st.data())
    def attempt_void(self, data: st.DataObject) -> None:
        """The refund action's void: the requested amount is checked, then the void recorded."""
        requested = data.draw(
            st.one_of(st.just(self.amount), st.integers(1, MAX_AMOUNT_CENTS)), label="amount"
        )
        expected: type[PaymentsError] | None = None
        if self.status == Status.DECLINED:
            expected = PaymentNotApproved
        elif self.status in (Status.VOIDED, Status.SETTLED) or self.past_cutoff():
            expected = VoidNotAllowed  # processed: only a refund now
        elif requested != self.amount:
            expected = VoidNotAllowed  # a void is for the full amount only

        def void() -> None:
            self.payment.check_void(self.now, Money(requested))
            self.payment.void(processor_void_id="void", at=self.now, actor="user:admin")

        if self.attempt(expected, void):
            self.status = Status.VOIDED

    @rule()
    def close_batch(self) -> None:
        """The batch close runs at the cut-off (or now, if that has passed) and settles."""
        if self.payment.settles_at is not None:
            self.now = max(self.now, self.payment.settles_at)
        expected: type[PaymentsError] | None = None
        if self.status == Status.SETTLED:
            expected = AlreadySettled
        elif self.status != Status.APPROVED:
            expected = PaymentNotApproved

        def settle() -> None:
            self.payment.settle(batch_id=uuid.uuid4(), at=self.now, actor="system:batch-close")

        if self.attempt(expected, settle):
            self.status = Status.SETTLED

    @rule(data=st.data())
    def attempt_refund(self, data: st.DataObject) -> None:
        remaining = self.remaining
        cents = data.draw(
            st.one_of(
                st.integers(1, max(1, remaining)),
                st.just(remaining),
                st.integers(remaining + 1, remaining + 10_000),
                st.sampled_from([0, -1, -self.amount, MAX_AMOUNT_CENTS + 1]),
            ),
            label="refund",
        )
        expected: type[PaymentsError] | None = None
        if self.status == Status.DECLINED:
            expected = PaymentNotApproved
        elif self.status == Status.VOIDED:
            expected = VoidNotAllowed
        elif self.status == Status.SETTLED and remaining == 0:
            expected = NothingLeftToRefund  # whatever amount is asked for
        elif not 1 <= cents <= MAX_AMOUNT_CENTS:
            expected = InvalidAmount
        elif self.status != Status.SETTLED:
            expected = RefundNotAllowed
        elif self.now > refund_deadline(self.payment.occurred_at):
            expected = RefundWindowClosed
        elif cents > remaining:
            expected = RefundExceedsRemaining

        def refund() -> None:
            self.payment.refund(
                refund_id=uuid.uuid4(),
                amount=Money(cents),
                processor_refund_id="re",
                at=self.now,
                actor="user:admin",
            )

        if self.attempt(expected, refund):
            self.refunds.append(cents)

    # -- invariants -------------------------------------------------------------------

    @invariant()
    def captured_minus_refunded_is_never_negative(self) -> None:
        assert self.payment.refunded == Money(sum(self.refunds))
        assert self.payment.remaining == self.payment.amount - self.payment.refunded
        assert self.payment.remaining >= Money(0)

    @invariant()
    def a_voided_payment_has_no_refunds(self) -> None:
        if self.payment.status == Status.VOIDED:
            assert self.payment.refunds == []

    @invariant()
    def no_refund_exists_unless_the_payment_settled(self) -> None:
        if self.payment.refunds:
            assert self.payment.status == Status.SETTLED
            assert self.payment.settled_at is not None
            assert all(r.at >= self.payment.settled_at for r in self.payment.refunds)

    @invariant()
    def never_a_void_after_settlement(self) -> None:
        names = [event_type(e) for e in self.payment.pending_events]
        assert not ("PaymentVoided" in names and "PaymentSettled" in names)
        if self.payment.voided_at is not None:
            assert self.payment.settles_at is not None
            assert self.payment.voided_at < self.payment.settles_at

    @invariant()
    def the_status_is_the_models(self) -> None:
        assert self.payment.status == self.status

    @invariant()
    def the_refund_action_chooses_as_the_model_does(self) -> None:
        if self.status == Status.DECLINED:
            with pytest.raises(PaymentNotApproved):
                self.payment.reversal_kind(self.now)
        elif self.status == Status.VOIDED:
            with pytest.raises(VoidNotAllowed):
                self.payment.reversal_kind(self.now)
        else:
            processed = self.status == Status.SETTLED or self.past_cutoff()
            kind = ReversalKind.REFUND if processed else ReversalKind.VOID
            assert self.payment.reversal_kind(self.now) == kind

    @invariant()
    def replaying_the_events_rebuilds_the_same_payment(self) -> None:
        rebuilt = replay(self.payment.pending_events)
        assert isinstance(rebuilt, Payment)
        assert state_of(rebuilt) == state_of(self.payment)


PaymentLifecycle.TestCase.settings = settings(
    max_examples=200, stateful_step_count=30, deadline=None
)
TestPaymentLifecycle = PaymentLifecycle.TestCase
