"""The Payment aggregate, one rule per test (docs/design.md, "Rules").

A payment is taken on Wednesday 4 March 2026 at 10:00 in New York; its batch closes
at 23:59 that evening (CLOSES_AT, 04:59 UTC on the 5th).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta

import pytest

from domain.base import event_data, event_type
from domain.errors import (
    AlreadyAssociated,
    AlreadySettled,
    Conflict,
    InvalidAmount,
    InvalidValue,
    NothingLeftToRefund,
    PaymentNotApproved,
    PaymentsError,
    RefundExceedsRemaining,
    RefundNotAllowed,
    RefundWindowClosed,
    VoidNotAllowed,
)
from domain.money import MAX_AMOUNT_CENTS, Money
from domain.payments import (
    AssociationSource,
    Method,
    Payment,
    ReversalKind,
    Status,
)
from tests.unit.builders import (
    CARD,
    CLOSES_AT,
    STAFF,
    TAKEN_AT,
    capture,
    decline,
    refund,
    replay,
    settle,
)

MINUTE = timedelta(minutes=1)
#: the next morning: the batch has closed and the payment has settled
NEXT_MORNING = datetime(2026, 3, 5, 14, 0, tzinfo=UTC)


@contextmanager
def refused(
    error: type[PaymentsError], payment: Payment
) -> Iterator[pytest.ExceptionInfo[PaymentsError]]:
    """Expect exactly `error` (not a subclass) and no change to the payment's events."""
    version, pending = payment.version, list(payment.pending_events)
    with pytest.raises(error) as raised:
        yield raised
    assert type(raised.value) is error, f"{type(raised.value).__name__} raised, not {error}"
    assert payment.version == version
    assert payment.pending_events == pending


def settled_payment(amount: int = 12_500) -> Payment:
    payment = capture(amount)
    settle(payment)
    return payment


def void(payment: Payment, at: datetime) -> None:
    payment.void(processor_void_id="void_1", at=at, actor=STAFF)


def associate(payment: Payment, reference: str | None = "PAY-1001") -> None:
    payment.associate(
        source=AssociationSource.AUTOMATIC, pms_reference=reference, at=NEXT_MORNING, actor="pms"
    )


def event_names(payment: Payment) -> list[str]:
    return [event_type(e) for e in payment.pending_events]


# -- capture and decline --------------------------------------------------------------


def test_a_captured_payment_is_approved_and_open_in_todays_batch() -> None:
    practice_id = uuid.uuid4()
    payment = capture(12_500, practice_id=practice_id, patient_id=None)
    assert payment.status == Status.APPROVED
    assert payment.practice_id == practice_id
    assert payment.amount == Money(12_500)
    assert payment.method == Method.VIRTUAL_TERMINAL
    assert payment.card == CARD
    assert payment.transaction_id is not None
    assert payment.batch_date == date(2026, 3, 4)
    assert payment.settles_at == CLOSES_AT
    assert payment.occurred_at == TAKEN_AT
    assert payment.actor == STAFF
    assert payment.refunds == []
    assert payment.refunded == Money(0)
    assert payment.remaining == Money(12_500)
    assert not payment.is_associated
    assert not payment.is_processed(TAKEN_AT)
    assert event_names(payment) == ["PaymentCaptured"]


def test_a_declined_payment_records_its_reason_and_moves_no_money() -> None:
    payment = decline(12_500, reason="card expired")
    assert payment.status == Status.DECLINED
    assert payment.decline_reason == "card expired"
    assert payment.transaction_id is None
    assert payment.batch_date is None
    assert payment.settles_at is None
    assert not payment.is_processed(TAKEN_AT + timedelta(days=30))
    assert event_names(payment) == ["PaymentDeclined"]


@pytest.mark.parametrize("cents", [0, -100, MAX_AMOUNT_CENTS + 1])
def test_a_payment_outside_one_cent_to_the_cap_is_not_captured(cents: int) -> None:
    with pytest.raises(InvalidAmount):
        capture(cents)


@pytest.mark.parametrize("cents", [0, MAX_AMOUNT_CENTS + 1])
def test_a_decline_outside_one_cent_to_the_cap_is_not_recorded(cents: int) -> None:
    with pytest.raises(InvalidAmount):
        decline(cents)


@pytest.mark.parametrize("make", [capture, decline])
@pytest.mark.parametrize("terminal_id", [None, ""])
def test_a_terminal_payment_needs_its_terminal_id(
    make: Callable[..., Payment], terminal_id: str | None
) -> None:
    with pytest.raises(InvalidValue) as error:
        make(method=Method.TERMINAL, terminal_id=terminal_id)
    assert error.value.field == "terminal_id"


def test_a_terminal_payment_with_its_terminal_id_is_captured() -> None:
    payment = capture(method=Method.TERMINAL, terminal_id="term-7")
    assert payment.method == Method.TERMINAL
    assert payment.terminal_id == "term-7"


def test_a_payment_describes_itself_by_card_brand_last4_and_amount() -> None:
    assert capture(12_550).describe() == "visa ****4242 $125.50"


# -- void ------------------------------------------------------------------------------


def test_a_payment_is_voided_in_full_before_its_batch_closes() -> None:
    payment = capture(12_500)
    void(payment, CLOSES_AT - MINUTE)
    assert payment.status == Status.VOIDED
    assert payment.voided_at == CLOSES_AT - MINUTE
    assert payment.refunds == []
    assert event_names(payment) == ["PaymentCaptured", "PaymentVoided"]
    assert payment.pending_events[-1].processor_void_id == "void_1"  # type: ignore[attr-defined]


def test_a_void_for_the_full_amount_passes_the_check() -> None:
    payment = capture(12_500)
    payment.check_void(TAKEN_AT, Money(12_500))
    payment.check_void(TAKEN_AT)


@pytest.mark.parametrize("at", [CLOSES_AT, CLOSES_AT + MINUTE, NEXT_MORNING])
def test_no_void_once_the_batch_cutoff_has_passed(at: datetime) -> None:
    payment = capture(12_500)
    with refused(VoidNotAllowed, payment):
        void(payment, at)
    assert payment.status == Status.APPROVED


def test_no_void_of_a_settled_payment() -> None:
    payment = capture(12_500)
    # Even if the batch close ran early, a settled payment is processed.
    settle(payment, at=TAKEN_AT + MINUTE)
    with refused(VoidNotAllowed, payment):
        void(payment, TAKEN_AT + 2 * MINUTE)


@pytest.mark.parametrize("cents", [5_000, 12_499, 12_501])
def test_a_void_is_never_for_a_partial_amount(cents: int) -> None:
    payment = capture(12_500)
    with refused(VoidNotAllowed, payment) as error:
        payment.check_void(TAKEN_AT, Money(cents))
    assert error.value.field == "amount"


def test_a_payment_is_voided_only_once() -> None:
    payment = capture(12_500)
    void(payment, TAKEN_AT + MINUTE)
    with refused(VoidNotAllowed, payment):
        void(payment, TAKEN_AT + 2 * MINUTE)


def test_a_declined_payment_cannot_be_voided() -> None:
    payment = decline(12_500)
    with refused(PaymentNotApproved, payment):
        void(payment, TAKEN_AT + MINUTE)


# -- refund ------------------------------------------------------------------------------


def test_no_refund_before_the_payment_settles() -> None:
    payment = capture(12_500)
    with refused(RefundNotAllowed, payment):
        refund(payment, 12_500, at=TAKEN_AT + MINUTE)


def test_no_refund_after_the_cutoff_until_the_batch_close_has_settled_it() -> None:
    payment = capture(12_500)
    assert payment.is_processed(NEXT_MORNING)
    with refused(RefundNotAllowed, payment):
        refund(payment, 12_500, at=NEXT_MORNING)


def test_a_settled_payment_is_refunded_in_part() -> None:
    payment = settled_payment(30_000)
    refund_id = refund(payment, 8_000, at=NEXT_MORNING)
    assert payment.status == Status.SETTLED
    assert [(r.id, r.amount, r.at, r.actor) for r in payment.refunds] == [
        (refund_id, 8_000, NEXT_MORNING, STAFF)
    ]
    assert payment.refunded == Money(8_000)
    assert payment.remaining == Money(22_000)


def test_partial_refunds_add_up_to_at_most_the_captured_amount() -> None:
    payment = settled_payment(12_500)
    refund(payment, 3_000, at=NEXT_MORNING)
    refund(payment, 2_000, at=NEXT_MORNING + MINUTE)
    refund(payment, 7_500, at=NEXT_MORNING + 2 * MINUTE)
    assert [r.amount for r in payment.refunds] == [3_000, 2_000, 7_500]
    assert payment.refunded == Money(12_500)
    assert payment.remaining == Money(0)
    with refused(NothingLeftToRefund, payment) as error:
        refund(payment, 1, at=NEXT_MORNING + 3 * MINUTE)
    assert (
        error.value.detail
        == "nothing is left to refund: all $125.00 of this payment was refunded already"
    )


def test_a_refund_exceeding_what_remains_is_refused() -> None:
    payment = settled_payment(5_000)
    refund(payment, 3_000, at=NEXT_MORNING)
    with refused(RefundExceedsRemaining, payment) as error:
        refund(payment, 2_500, at=NEXT_MORNING + MINUTE)
    assert "$25.00" in error.value.detail and "$20.00" in error.value.detail
    assert payment.refunded == Money(3_000)


def test_a_first_refund_larger_than_the_payment_is_refused() -> None:
    payment = settled_payment(5_000)
    with refused(RefundExceedsRemaining, payment):
        refund(payment, 5_001, at=NEXT_MORNING)


@pytest.mark.parametrize("cents", [0, -1, MAX_AMOUNT_CENTS + 1])
def test_a_refund_amount_must_be_one_cent_up_to_the_cap(cents: int) -> None:
    payment = settled_payment(5_000)
    with refused(InvalidAmount, payment):
        refund(payment, cents, at=NEXT_MORNING)


def test_a_refund_is_allowed_up_to_13_months_after_the_payment() -> None:
    payment = settled_payment(12_500)
    deadline = datetime(2027, 4, 4, 15, 0, tzinfo=UTC)
    refund(payment, 100, at=deadline)
    assert payment.refunded == Money(100)


def test_no_refund_after_13_months() -> None:
    payment = settled_payment(12_500)
    deadline = datetime(2027, 4, 4, 15, 0, tzinfo=UTC)
    with refused(RefundWindowClosed, payment) as error:
        refund(payment, 100, at=deadline + timedelta(seconds=1))
    assert "2026-03-04" in error.value.detail


def test_a_declined_payment_cannot_be_refunded() -> None:
    payment = decline(12_500)
    with refused(PaymentNotApproved, payment):
        refund(payment, 100, at=NEXT_MORNING)


def test_a_voided_payment_cannot_be_refunded() -> None:
    payment = capture(12_500)
    void(payment, TAKEN_AT + MINUTE)
    with refused(VoidNotAllowed, payment) as error:
        refund(payment, 100, at=NEXT_MORNING)
    assert isinstance(error.value, Conflict)


def test_a_refund_settles_in_a_later_batch_once() -> None:
    payment = settled_payment(12_500)
    refund_id = refund(payment, 2_000, at=NEXT_MORNING)
    batch_id = uuid.uuid4()
    payment.settle_refund(refund_id=refund_id, batch_id=batch_id, at=NEXT_MORNING, actor="sys")
    assert payment.refunds[0].batch_id == batch_id
    with refused(AlreadySettled, payment):
        payment.settle_refund(refund_id=refund_id, batch_id=batch_id, at=NEXT_MORNING, actor="s")


def test_settling_an_unknown_refund_is_refused() -> None:
    payment = settled_payment(12_500)
    with refused(InvalidValue, payment):
        payment.settle_refund(
            refund_id=uuid.uuid4(), batch_id=uuid.uuid4(), at=NEXT_MORNING, actor="s"
        )


# -- the refund action's choice ---------------------------------------------------------


def test_the_refund_action_voids_before_the_cutoff() -> None:
    assert capture().reversal_kind(CLOSES_AT - MINUTE) == ReversalKind.VOID


@pytest.mark.parametrize("now", [CLOSES_AT, NEXT_MORNING])
def test_the_refund_action_refunds_from_the_cutoff_on(now: datetime) -> None:
    assert capture().reversal_kind(now) == ReversalKind.REFUND


def test_the_refund_action_refunds_a_settled_payment() -> None:
    payment = capture()
    settle(payment, at=TAKEN_AT + MINUTE)
    assert payment.reversal_kind(TAKEN_AT + 2 * MINUTE) == ReversalKind.REFUND


def test_the_refund_action_refuses_a_declined_payment() -> None:
    with pytest.raises(PaymentNotApproved):
        decline().reversal_kind(TAKEN_AT)


def test_the_refund_action_refuses_a_voided_payment() -> None:
    payment = capture()
    void(payment, TAKEN_AT + MINUTE)
    with pytest.raises(VoidNotAllowed):
        payment.reversal_kind(TAKEN_AT + 2 * MINUTE)


# -- settlement ----------------------------------------------------------------------------


def test_settling_records_the_batch_and_the_time() -> None:
    payment = capture()
    batch_id = settle(payment, at=CLOSES_AT)
    assert payment.status == Status.SETTLED
    assert payment.batch_id == batch_id
    assert payment.settled_at == CLOSES_AT
    assert payment.is_processed(CLOSES_AT)


def test_a_payment_settles_only_once() -> None:
    payment = settled_payment()
    with refused(AlreadySettled, payment):
        settle(payment, at=NEXT_MORNING)


def test_a_voided_payment_does_not_settle() -> None:
    payment = capture()
    void(payment, TAKEN_AT + MINUTE)
    with refused(PaymentNotApproved, payment):
        settle(payment, at=CLOSES_AT)


def test_a_declined_payment_does_not_settle() -> None:
    payment = decline()
    with refused(PaymentNotApproved, payment):
        settle(payment, at=CLOSES_AT)


# -- association with the PMS ledger ----------------------------------------------------------


@pytest.mark.parametrize("settled", [False, True])
def test_an_approved_or_settled_payment_is_associated(settled: bool) -> None:
    payment = settled_payment() if settled else capture()
    associate(payment, "PAY-1001")
    assert payment.is_associated
    assert payment.association_source == AssociationSource.AUTOMATIC
    assert payment.pms_reference == "PAY-1001"
    assert payment.associated_at == NEXT_MORNING


def test_a_payment_is_associated_only_once() -> None:
    payment = capture()
    associate(payment)
    with refused(AlreadyAssociated, payment) as error:
        payment.associate(
            source=AssociationSource.MANUAL, pms_reference=None, at=NEXT_MORNING, actor=STAFF
        )
    assert "PAY-1001" in error.value.detail
    assert payment.association_source == AssociationSource.AUTOMATIC


def test_a_declined_payment_is_not_associated() -> None:
    payment = decline()
    with refused(PaymentNotApproved, payment):
        associate(payment)


def test_a_voided_payment_is_not_associated() -> None:
    payment = capture()
    void(payment, TAKEN_AT + MINUTE)
    with refused(PaymentNotApproved, payment):
        associate(payment)


def test_a_refund_is_associated_once() -> None:
    payment = settled_payment()
    refund_id = refund(payment, 1_000, at=NEXT_MORNING)
    payment.associate_refund(
        refund_id=refund_id,
        source=AssociationSource.INBOX,
        pms_reference="ADJ-9",
        at=NEXT_MORNING,
        actor=STAFF,
    )
    assert payment.associated_refunds == {refund_id: "ADJ-9"}
    with refused(AlreadyAssociated, payment):
        payment.associate_refund(
            refund_id=refund_id,
            source=AssociationSource.MANUAL,
            pms_reference=None,
            at=NEXT_MORNING,
            actor=STAFF,
        )


def test_an_unknown_refund_is_not_associated() -> None:
    payment = settled_payment()
    with refused(InvalidValue, payment):
        payment.associate_refund(
            refund_id=uuid.uuid4(),
            source=AssociationSource.MANUAL,
            pms_reference=None,
            at=NEXT_MORNING,
            actor=STAFF,
        )


# -- receipts ------------------------------------------------------------------------------------


def test_sending_a_payment_receipt_is_recorded() -> None:
    payment = capture()
    payment.record_receipt_sent(email="pat@example.com", refund_id=None, at=TAKEN_AT, actor=STAFF)
    assert payment.receipts_sent == 1
    assert event_names(payment)[-1] == "PaymentReceiptSent"


def test_sending_a_refund_receipt_is_recorded() -> None:
    payment = settled_payment()
    refund_id = refund(payment, 1_000, at=NEXT_MORNING)
    payment.check_receipt(refund_id)
    payment.record_receipt_sent(
        email="pat@example.com", refund_id=refund_id, at=NEXT_MORNING, actor=STAFF
    )
    assert payment.receipts_sent == 1


def test_a_receipt_for_an_unknown_refund_is_refused() -> None:
    payment = settled_payment()
    refund(payment, 1_000, at=NEXT_MORNING)
    with refused(InvalidValue, payment) as error:
        payment.check_receipt(uuid.uuid4())
    assert error.value.field == "refund_id"
    with refused(InvalidValue, payment):
        payment.record_receipt_sent(
            email="pat@example.com", refund_id=uuid.uuid4(), at=NEXT_MORNING, actor=STAFF
        )


def test_a_declined_payment_has_no_receipt() -> None:
    payment = decline()
    with refused(PaymentNotApproved, payment):
        payment.record_receipt_sent(
            email="pat@example.com", refund_id=None, at=TAKEN_AT, actor=STAFF
        )


# -- events and replay -----------------------------------------------------------------------------


def full_history() -> tuple[Payment, list[tuple[datetime, str]]]:
    """A payment through every kind of event; with the (at, actor) of each."""
    practice_id = uuid.uuid4()
    payment = capture(30_000, practice_id=practice_id, patient_id=uuid.uuid4())
    expected = [(TAKEN_AT, STAFF)]
    associate(payment)
    expected.append((NEXT_MORNING, "pms"))
    payment.settle(batch_id=uuid.uuid4(), at=CLOSES_AT, actor="system:batch-close")
    expected.append((CLOSES_AT, "system:batch-close"))
    refund_at = NEXT_MORNING + timedelta(hours=1)
    refund_id = refund(payment, 8_000, at=refund_at)
    expected.append((refund_at, STAFF))
    payment.associate_refund(
        refund_id=refund_id,
        source=AssociationSource.MANUAL,
        pms_reference=None,
        at=refund_at + MINUTE,
        actor="user:admin",
    )
    expected.append((refund_at + MINUTE, "user:admin"))
    payment.record_receipt_sent(
        email="pat@example.com", refund_id=refund_id, at=refund_at + 2 * MINUTE, actor=STAFF
    )
    expected.append((refund_at + 2 * MINUTE, STAFF))
    next_close = CLOSES_AT + timedelta(days=1)
    payment.settle_refund(
        refund_id=refund_id, batch_id=uuid.uuid4(), at=next_close, actor="system:batch-close"
    )
    expected.append((next_close, "system:batch-close"))
    return payment, expected


def test_every_event_carries_the_practice_the_time_and_the_actor() -> None:
    payment, expected = full_history()
    events = payment.pending_events
    assert [(e.at, e.actor) for e in events] == expected  # type: ignore[attr-defined]
    for event in events:
        data = event_data(event)
        assert data["practice_id"] == payment.practice_id
        assert data["at"].tzinfo is not None
        assert data["actor"]


def test_a_declined_and_a_voided_payments_events_carry_the_same_envelope() -> None:
    declined = decline()
    voided = capture()
    void(voided, TAKEN_AT + MINUTE)
    for payment in (declined, voided):
        for event in payment.pending_events:
            assert event.practice_id == payment.practice_id  # type: ignore[attr-defined]
            assert event.at in (TAKEN_AT, TAKEN_AT + MINUTE)  # type: ignore[attr-defined]
            assert event.actor == STAFF  # type: ignore[attr-defined]


def test_the_event_names_are_past_tense_and_prefixed_by_the_aggregate() -> None:
    payment, _ = full_history()
    assert event_names(payment) == [
        "PaymentCaptured",
        "PaymentAssociated",
        "PaymentSettled",
        "PaymentRefunded",
        "PaymentRefundAssociated",
        "PaymentReceiptSent",
        "PaymentRefundSettled",
    ]


def test_replaying_the_collected_events_rebuilds_the_same_payment() -> None:
    payment, _ = full_history()
    events = payment.collect_events()
    rebuilt = replay(events)
    assert isinstance(rebuilt, Payment)
    assert rebuilt == payment
    assert rebuilt.version == len(events)
    assert rebuilt.remaining == Money(22_000)
    assert rebuilt.refunds[0].batch_id is not None


def test_replaying_part_of_the_history_gives_the_state_at_that_point() -> None:
    payment, _ = full_history()
    events = payment.collect_events()
    after_settlement = replay(events[:3])
    assert isinstance(after_settlement, Payment)
    assert after_settlement.status == Status.SETTLED
    assert after_settlement.refunds == []
    assert after_settlement.is_associated


@pytest.mark.parametrize("history", ["declined", "voided"])
def test_replaying_a_declined_or_voided_payment(history: str) -> None:
    if history == "declined":
        payment = decline()
    else:
        payment = capture()
        void(payment, TAKEN_AT + MINUTE)
    rebuilt = replay(payment.collect_events())
    assert rebuilt == payment
    assert isinstance(rebuilt, Payment)
    assert rebuilt.status == Status(history)
