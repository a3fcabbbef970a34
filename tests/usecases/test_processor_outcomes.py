"""A processor that refuses, does not answer or answers late, driven through the use cases:
every intent ends in one recorded outcome and money moves once
(tests/worked_examples/test_outcomes_at_the_processor.py shows the same on SQLite and
PostgreSQL, and through the API and the pages)."""

from __future__ import annotations

from datetime import date

import pytest

from adapters.effects import EffectInsideRetry
from adapters.processor.port import OutcomeUnknown, ProcessorRefused
from domain.charges import AuthorisationReleased
from domain.payments import AssociationSource, Method, Payment, ReversalKind, Status
from projections.intents import intent_totals, open_intents, open_intents_of_payment
from services.app.payments import Reversal, collect_payment
from services.app.reconcile import SETTLE_AFTER, reconcile_due
from services.app.reports import daily_close
from services.app.settlement import close_due_batches
from services.context import retry_on_conflict
from tests.faulty_processor import FaultyProcessor
from tests.usecases.conftest import ADMIN, Office, card

SETTLING = SETTLE_AFTER.total_seconds()


def refund(office: Office, payment: Payment, amount: int | None, key: str | None) -> Reversal:
    return office.refund(payment.id, amount, key)


def settled(office: Office, amount: int = 10_000) -> Payment:
    payment = office.pay(amount)
    office.clock.move(days=1)
    close_due_batches(office.ledger, office.id)
    assert office.payment(payment.id).status == Status.SETTLED
    return payment


def unanswered_refund(
    office: Office, faulty: FaultyProcessor, answer: str, key: str | None = None
) -> Payment:
    """A settled $100.00 payment whose $25.00 refund the processor meets with `answer`
    ("500-after", "drop-before", "late"): the admin is told its outcome is unknown."""
    payment = settled(office)
    faulty.answers["refund"].append(answer)
    with pytest.raises(OutcomeUnknown, match="reads it back"):
        refund(office, payment, 2500, key)
    return payment


def reconcile_later(office: Office) -> int:
    """The reconciler's run once an intent's settling time has passed."""
    office.clock.move(seconds=SETTLING)
    return reconcile_due(office.ledger, office.id)


def capture_unanswered(office: Office, faulty: FaultyProcessor) -> Payment:
    """A $100.00 payment whose capture at the cut-off was made, its answer lost."""
    payment = office.pay(10_000)
    faulty.answers["capture"].append("500-after")
    office.clock.move(days=1)
    assert close_due_batches(office.ledger, office.id) == []
    return payment


def collect(office: Office, key: str) -> Payment:
    return collect_payment(
        office.ledger,
        practice_id=office.id,
        amount=5000,
        method=Method.VIRTUAL_TERMINAL,
        card=card(),
        actor=ADMIN,
        key=key,
    )


def test_a_refused_refund_ends_refused_and_frees_its_amount(
    faulty_office: Office, faulty: FaultyProcessor
) -> None:
    payment = settled(faulty_office)
    faulty.answers["refund"].append("refuse")

    with pytest.raises(ProcessorRefused):
        refund(faulty_office, payment, 2500, "refund-1")
    after = faulty_office.payment(payment.id)
    assert (after.pending_refunds, after.remaining.cents) == ({}, 10_000)
    assert [*after.refused_refunds.values()] == ["the processor refused the refund (test)"]

    # the same request again answers the same refusal and sends nothing
    with pytest.raises(ProcessorRefused):
        refund(faulty_office, payment, 2500, "refund-1")
    assert faulty.calls["refund"] == 1

    # a new key is a new intent: it refunds once
    assert refund(faulty_office, payment, 4000, "refund-2").amount == 4000
    assert faulty.movements["refund"] == 1


def test_a_refund_whose_answer_was_lost_is_read_back_by_the_reconciler(
    faulty_office: Office, faulty: FaultyProcessor
) -> None:
    office = faulty_office
    payment = unanswered_refund(office, faulty, "500-after")
    [intent] = office.ledger.reads(open_intents_of_payment, payment.id)
    assert (intent["effect"], intent["amount"], intent["attempts"]) == ("refund", 2500, 1)
    assert office.ledger.reads(intent_totals, office.id)["unknown"] == 1
    close = daily_close(office.ledger, office.id, date(2026, 3, 5))
    assert [d["kind"] for d in close["differences"]] == ["intent_unknown"]

    assert reconcile_due(office.ledger, office.id) == 0  # within its settling time
    assert reconcile_later(office) == 1

    after = office.payment(payment.id)
    assert [(r.amount, r.actor) for r in after.refunds] == [(2500, ADMIN)]
    assert office.ledger.reads(open_intents_of_payment, payment.id) == []
    office.advance(days=1)
    assert office.payment(payment.id).refunds[0].batch_id is not None
    assert faulty.movements["refund"] == 1


def test_a_refund_never_received_and_asked_again_with_a_new_key_refunds_once(
    faulty_office: Office, faulty: FaultyProcessor
) -> None:
    payment = unanswered_refund(faulty_office, faulty, "drop-before", "first-click")

    refund(faulty_office, payment, 2500, "second-click")
    assert faulty_office.payment(payment.id).remaining.cents == 5000  # the first still holds

    reconcile_later(faulty_office)  # absent: refused, never sent
    after = faulty_office.payment(payment.id)
    assert ([r.amount for r in after.refunds], after.remaining.cents) == ([2500], 7500)
    assert faulty.movements["refund"] == 1


def test_a_refund_retried_with_its_key_reads_back_before_sending_again(
    faulty_office: Office, faulty: FaultyProcessor
) -> None:
    payment = unanswered_refund(faulty_office, faulty, "drop-before", "same-key")
    assert refund(faulty_office, payment, 2500, "same-key").amount == 2500
    assert faulty.movements["refund"] == 1


def test_a_late_refund_is_recorded_once_whoever_finds_it(
    faulty_office: Office, faulty: FaultyProcessor
) -> None:
    payment = unanswered_refund(faulty_office, faulty, "late", "late-key")
    faulty.deliver_late()

    refund(faulty_office, payment, 2500, "late-key")
    assert reconcile_later(faulty_office) == 0
    assert [r.amount for r in faulty_office.payment(payment.id).refunds] == [2500]
    assert (faulty.calls["refund"], faulty.movements["refund"]) == (1, 1)


def test_a_processor_that_cannot_be_read_is_read_again_after_a_pause(
    faulty_office: Office, faulty: FaultyProcessor
) -> None:
    payment = unanswered_refund(faulty_office, faulty, "500-after")
    faulty.reads_fail = 1
    assert reconcile_later(faulty_office) == 0
    [intent] = faulty_office.ledger.reads(open_intents_of_payment, payment.id)
    assert intent["attempts"] == 2
    assert reconcile_due(faulty_office.ledger, faulty_office.id) == 0  # its pause
    faulty_office.clock.move(hours=1)
    assert reconcile_due(faulty_office.ledger, faulty_office.id) == 1
    assert [r.amount for r in faulty_office.payment(payment.id).refunds] == [2500]


def test_a_void_decided_before_the_cut_off_stays_a_void_through_a_conflict(
    faulty_office: Office, faulty: FaultyProcessor
) -> None:
    office = faulty_office
    payment = office.pay(10_000)
    office.clock.move(hours=13, minutes=58, seconds=59)  # 23:58:59

    def writeback_associates_and_the_cut_off_passes() -> None:
        office.associate(payment.id, "PMS-9", AssociationSource.AUTOMATIC)
        office.clock.move(minutes=2)

    office.ledger.before_next_save_of(payment.id, writeback_associates_and_the_cut_off_passes)
    reversal = refund(office, payment, None, "refund-button")

    assert reversal.kind == ReversalKind.VOID  # judged when asked
    close_due_batches(office.ledger, office.id)
    after = office.payment(payment.id)
    assert (after.status, after.refunds, after.is_associated) == (Status.VOIDED, [], True)
    assert dict(faulty.movements) == {"charge": 1, "void": 1}


def test_a_void_whose_answer_was_lost_is_never_captured(
    faulty_office: Office, faulty: FaultyProcessor
) -> None:
    payment = faulty_office.pay(10_000)
    faulty.answers["void"].append("drop-before")
    with pytest.raises(OutcomeUnknown):
        refund(faulty_office, payment, None, None)

    faulty_office.clock.move(days=1)
    close_due_batches(faulty_office.ledger, faulty_office.id)
    assert faulty_office.payment(payment.id).status == Status.APPROVED  # not captured

    reconcile_due(faulty_office.ledger, faulty_office.id)  # absent: sent again
    close_due_batches(faulty_office.ledger, faulty_office.id)
    assert faulty_office.payment(payment.id).status == Status.VOIDED
    assert (faulty.movements["capture"], faulty.movements["void"]) == (0, 1)


def test_a_refused_void_leaves_the_payment_to_settle(
    faulty_office: Office, faulty: FaultyProcessor
) -> None:
    payment = faulty_office.pay(10_000)
    faulty.answers["void"].append("refuse")
    with pytest.raises(ProcessorRefused):
        refund(faulty_office, payment, None, None)
    assert faulty_office.payment(payment.id).pending_void is None
    faulty_office.advance(days=1)
    assert faulty_office.payment(payment.id).status == Status.SETTLED
    assert faulty.movements["capture"] == 1


def test_a_capture_whose_answer_was_lost_is_read_back_by_the_next_close(
    faulty_office: Office, faulty: FaultyProcessor
) -> None:
    payment = capture_unanswered(faulty_office, faulty)
    assert faulty_office.payment(payment.id).capture_requested

    assert len(close_due_batches(faulty_office.ledger, faulty_office.id)) == 1
    assert faulty_office.payment(payment.id).status == Status.SETTLED
    assert (faulty.calls["capture"], faulty.movements["capture"]) == (1, 1)


def test_the_refund_action_after_a_capture_was_asked_is_a_refund_never_a_void(
    faulty_office: Office, faulty: FaultyProcessor
) -> None:
    payment = capture_unanswered(faulty_office, faulty)
    assert refund(faulty_office, payment, None, None).kind == ReversalKind.REFUND
    assert dict(faulty.movements) == {"charge": 1, "capture": 1, "refund": 1}


def test_no_effect_is_made_inside_a_retry_on_conflict(
    faulty_office: Office, faulty: FaultyProcessor
) -> None:
    payment = faulty_office.pay(10_000)

    def decide_and_void() -> str:
        return faulty.void(transaction_id=payment.transaction_id or "", reference=payment.id)

    with pytest.raises(EffectInsideRetry):
        retry_on_conflict(decide_and_void)
    assert faulty.calls["void"] == 0


def test_a_collect_retried_with_its_key_after_a_lost_answer_authorises_once(
    faulty_office: Office, faulty: FaultyProcessor
) -> None:
    faulty.answers["charge"].append("500-after")
    with pytest.raises(OutcomeUnknown, match="same Idempotency-Key"):
        collect(faulty_office, "visit-41")
    [attempt] = faulty_office.ledger.reads(open_intents, faulty_office.id)
    assert (attempt["effect"], attempt["unknown_since"] is not None) == ("charge", True)

    assert collect(faulty_office, "visit-41").status == Status.APPROVED
    assert faulty.movements["charge"] == 1
    assert faulty_office.ledger.reads(open_intents, faulty_office.id) == []


def test_an_authorisation_nobody_finished_is_released_never_captured(
    faulty_office: Office, faulty: FaultyProcessor
) -> None:
    faulty.answers["charge"].append("500-after")
    with pytest.raises(OutcomeUnknown):
        collect(faulty_office, "visit-42")
    collect(faulty_office, "visit-42-again")  # the front desk took it again, a new key

    assert reconcile_later(faulty_office) == 1
    assert faulty_office.ledger.reads(open_intents, faulty_office.id) == []
    assert faulty.movements["void"] == 1
    with pytest.raises(AuthorisationReleased, match="released"):
        collect(faulty_office, "visit-42")
    faulty_office.advance(days=1)
    assert faulty.movements["capture"] == 1  # the payment taken again, only


def test_an_authorisation_that_never_arrived_ends_not_made_and_may_be_asked_again(
    faulty_office: Office, faulty: FaultyProcessor
) -> None:
    faulty.answers["charge"].append("drop-before")
    with pytest.raises(OutcomeUnknown):
        collect(faulty_office, "visit-43")
    assert reconcile_later(faulty_office) == 1
    assert faulty_office.ledger.reads(open_intents, faulty_office.id) == []
    assert collect(faulty_office, "visit-43").status == Status.APPROVED
    assert faulty.movements["charge"] == 1
